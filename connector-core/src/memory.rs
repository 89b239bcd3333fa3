//! In-memory sources and sinks: a channel pair that chains pipelines inside
//! one process, a collecting sink for tests, and a discarding sink for
//! benchmarks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, mpsc};

use crate::error::{Error, Result};
use crate::record::{Batch, Record};
use crate::sink::{BatchLimits, Sink};
use crate::source::Source;

/// A sink/source pair joined by a bounded channel of `capacity` batches.
///
/// Batches keep their acks as they cross, so the downstream pipeline's sink
/// acknowledges to the upstream pipeline's source; a full channel makes the
/// upstream sink wait (backpressure). The source ends when the sink is
/// closed or dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use connector_core::{Batch, Record, Sink, Source, Value, memory};
///
/// let (mut tx, mut rx) = memory::channel(4);
/// tx.send(Batch::new(vec![Record::from_pairs([("n", Value::Int64(1))])])).await.unwrap();
/// tx.close().await.unwrap();
/// assert_eq!(rx.next_batch().await.unwrap().unwrap().len(), 1);
/// assert!(rx.next_batch().await.unwrap().is_none());
/// # }
/// ```
pub fn channel(capacity: usize) -> (ChannelSink, ChannelSource) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (ChannelSink { tx: Some(tx) }, ChannelSource { rx })
}

/// The sending half of [`channel`].
#[derive(Debug)]
pub struct ChannelSink {
    tx: Option<mpsc::Sender<Batch>>,
}

/// The receiving half of [`channel`].
#[derive(Debug)]
pub struct ChannelSource {
    rx: mpsc::Receiver<Batch>,
}

#[async_trait]
impl Sink for ChannelSink {
    fn name(&self) -> &str {
        "channel sink"
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Error::permanent("channel sink", "send", "sink is closed"))?;
        tx.send(batch).await.map_err(|returned| {
            // The batch comes back inside the error; dropping it fails its ack.
            drop(returned);
            Error::permanent("channel sink", "send", "the channel source was dropped")
        })
    }

    async fn close(&mut self) -> Result<()> {
        self.tx = None;
        Ok(())
    }
}

#[async_trait]
impl Source for ChannelSource {
    fn name(&self) -> &str {
        "channel source"
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        Ok(self.rx.recv().await)
    }
}

/// What a [`CollectSink`] does with a batch.
#[derive(Debug)]
pub enum Outcome {
    /// Keep the records and resolve the ack as delivered.
    Deliver,
    /// Drop the records and resolve the ack as failed.
    Fail(Error),
    /// Drop the records and resolve the ack as rejected.
    Reject(Error),
    /// Keep the records and hold the ack until the next flush.
    Hold,
}

type Decide = Box<dyn FnMut(&Batch) -> Outcome + Send>;

#[derive(Default)]
struct Collection {
    records: Mutex<Vec<Record>>,
    batches: Mutex<Vec<usize>>,
    changed: Notify,
}

/// Keeps every record it receives, for tests and examples.
///
/// The [`Collected`] handle reads them while the pipeline runs. A decision
/// function can make it fail, reject or hold batches, and a delay makes it
/// slow, to test backpressure and delivery policies.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use connector_core::{Batch, Record, Sink, Value, memory::CollectSink};
///
/// let (mut sink, collected) = CollectSink::new();
/// sink.send(Batch::new(vec![Record::from_pairs([("n", Value::Int64(1))])])).await.unwrap();
/// assert_eq!(collected.records()[0].get("n"), Some(&Value::Int64(1)));
/// # }
/// ```
pub struct CollectSink {
    collection: Arc<Collection>,
    decide: Option<Decide>,
    delay: Duration,
    limits: BatchLimits,
    held: Vec<Batch>,
}

/// Reads what a [`CollectSink`] has received.
#[derive(Clone)]
pub struct Collected {
    collection: Arc<Collection>,
}

impl CollectSink {
    /// A sink that delivers everything at once, and its reading handle.
    pub fn new() -> (CollectSink, Collected) {
        let collection = Arc::new(Collection::default());
        (
            CollectSink {
                collection: collection.clone(),
                decide: None,
                delay: Duration::ZERO,
                limits: BatchLimits::default(),
                held: Vec::new(),
            },
            Collected { collection },
        )
    }

    /// Decides per batch what to do (deliver, fail, reject, hold).
    pub fn with_outcome(mut self, decide: impl FnMut(&Batch) -> Outcome + Send + 'static) -> Self {
        self.decide = Some(Box::new(decide));
        self
    }

    /// Waits this long in every `send`, like a slow destination.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Asks the pipeline for these batch limits.
    pub fn with_batch_limits(mut self, limits: BatchLimits) -> Self {
        self.limits = limits;
        self
    }

    fn keep(&self, batch: &mut Batch) {
        let records = std::mem::take(&mut batch.records);
        self.collection
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(records.len());
        self.collection
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(records);
        self.collection.changed.notify_waiters();
    }
}

#[async_trait]
impl Sink for CollectSink {
    fn name(&self) -> &str {
        "collect sink"
    }

    fn batch_limits(&self) -> BatchLimits {
        self.limits
    }

    async fn send(&mut self, mut batch: Batch) -> Result<()> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let outcome = match &mut self.decide {
            Some(decide) => decide(&batch),
            None => Outcome::Deliver,
        };
        match outcome {
            Outcome::Deliver => {
                self.keep(&mut batch);
                batch.delivered();
            }
            Outcome::Fail(e) => batch.failed(e),
            Outcome::Reject(e) => batch.rejected(e),
            Outcome::Hold => {
                self.keep(&mut batch);
                self.held.push(batch);
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        for batch in self.held.drain(..) {
            batch.delivered();
        }
        Ok(())
    }
}

impl Collected {
    /// Every record received so far.
    pub fn records(&self) -> Vec<Record> {
        self.collection
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Number of records received.
    pub fn len(&self) -> usize {
        self.collection
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sizes of the batches received, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.collection
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until at least `n` records arrived, or `timeout` passed;
    /// returns whether they did.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.collection.changed.notified();
            if self.len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.len() >= n;
            }
        }
    }
}

impl std::fmt::Debug for CollectSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectSink")
            .field("delay", &self.delay)
            .finish()
    }
}

impl std::fmt::Debug for Collected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collected")
            .field("records", &self.len())
            .finish()
    }
}

/// Acknowledges and drops everything: the baseline sink of benchmarks.
#[derive(Debug, Default)]
pub struct DiscardSink {
    records: u64,
}

impl DiscardSink {
    /// A discarding sink.
    pub fn new() -> Self {
        DiscardSink::default()
    }

    /// Records discarded so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

#[async_trait]
impl Sink for DiscardSink {
    fn name(&self) -> &str {
        "discard sink"
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        self.records += batch.len() as u64;
        batch.delivered();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{Ack, AckStatus};
    use crate::value::Value;

    fn one(n: i64) -> Vec<Record> {
        vec![Record::from_pairs([("n", Value::Int64(n))])]
    }

    #[tokio::test]
    async fn channel_carries_acks_across() {
        let (mut tx, mut rx) = channel(2);
        let (ack, outcome) = Ack::channel();
        tx.send(Batch::with_ack(one(1), ack)).await.unwrap();
        let batch = rx.next_batch().await.unwrap().unwrap();
        batch.delivered();
        assert!(outcome.await.is_delivered());
    }

    #[tokio::test]
    async fn channel_applies_backpressure() {
        let (mut tx, mut rx) = channel(1);
        tx.send(Batch::new(one(1))).await.unwrap();
        let blocked =
            tokio::time::timeout(Duration::from_millis(50), tx.send(Batch::new(one(2)))).await;
        assert!(blocked.is_err(), "second send must wait for room");
        assert!(rx.next_batch().await.unwrap().is_some());
    }

    #[tokio::test]
    async fn dropped_channel_source_fails_acks() {
        let (mut tx, rx) = channel(1);
        drop(rx);
        let (ack, outcome) = Ack::channel();
        assert!(tx.send(Batch::with_ack(one(1), ack)).await.is_err());
        assert!(matches!(outcome.await, AckStatus::Failed(_)));
    }

    #[tokio::test]
    async fn collect_sink_outcomes() {
        let mut n = 0;
        let (sink, collected) = CollectSink::new();
        let mut sink = sink.with_outcome(move |_| {
            n += 1;
            match n {
                1 => Outcome::Deliver,
                2 => Outcome::Fail(Error::transient("t", "w", "x")),
                3 => Outcome::Reject(Error::rejected("t", "r", "bad")),
                _ => Outcome::Hold,
            }
        });
        let mut outcomes = Vec::new();
        for i in 0..4 {
            let (ack, rx) = Ack::channel();
            sink.send(Batch::with_ack(one(i), ack)).await.unwrap();
            outcomes.push(rx);
        }
        let mut held = outcomes.pop().unwrap();
        assert!(futures::poll!(&mut held).is_pending());
        sink.flush().await.unwrap();
        assert!(held.await.is_delivered());
        let statuses: Vec<AckStatus> = futures::future::join_all(outcomes).await;
        assert!(statuses[0].is_delivered());
        assert!(matches!(statuses[1], AckStatus::Failed(_)));
        assert!(matches!(statuses[2], AckStatus::Rejected(_)));
        assert_eq!(collected.len(), 2, "delivered and held records are kept");
    }
}
