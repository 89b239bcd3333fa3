//! The last N records of an endpoint, kept for lookup (`retain_size`).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use connector_core::{Record, Value};

/// The last records an endpoint accepted, oldest first, for scan-table
/// style lookups. Cheap to clone; every clone reads the same records.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> connector_core::Result<()> {
/// use connector_core::Value;
/// use source_httppush::{HttpPushConfig, HttpPushTable};
///
/// let config = HttpPushConfig::new("/devices")
///     .with_address("127.0.0.1:0".parse().unwrap())
///     .with_retain_size(100);
/// let table = HttpPushTable::start(config).await?;
/// // Clients POST {"id": "d1", "room": "lab"} to /devices; then:
/// let found = table.records().lookup("id", &Value::from("d1"));
/// # assert!(found.is_empty());
/// if let Some(device) = found.first() {
///     println!("d1 is in {:?}", device.get("room"));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RetainedRecords {
    inner: Arc<Mutex<VecDeque<Record>>>,
    capacity: usize,
}

impl RetainedRecords {
    pub(crate) fn new(capacity: usize) -> Self {
        RetainedRecords {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(4096)))),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Record>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `records`, dropping the oldest beyond the capacity.
    pub(crate) fn extend<'a>(&self, records: impl IntoIterator<Item = &'a Record>) {
        let mut kept = self.lock();
        for record in records {
            if kept.len() == self.capacity {
                kept.pop_front();
            }
            kept.push_back(record.clone());
        }
    }

    /// How many records are kept at most (`retain_size`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many records are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A copy of the kept records, oldest first.
    pub fn snapshot(&self) -> Vec<Record> {
        self.lock().iter().cloned().collect()
    }

    /// The newest record.
    pub fn latest(&self) -> Option<Record> {
        self.lock().back().cloned()
    }

    /// The kept records whose `field` (a dotted path into structs works
    /// too) equals `value`, newest first.
    pub fn lookup(&self, field: &str, value: &Value) -> Vec<Record> {
        self.find(|r| r.get_path(field) == Some(value))
    }

    /// The kept records for which `predicate` holds, newest first.
    pub fn find(&self, mut predicate: impl FnMut(&Record) -> bool) -> Vec<Record> {
        self.lock()
            .iter()
            .rev()
            .filter(|r| predicate(r))
            .cloned()
            .collect()
    }
}

impl fmt::Debug for RetainedRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainedRecords")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}
