//! Records, their change kinds and metadata, and batches of records.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::ack::Ack;
use crate::error::Error;
use crate::schema::{DataType, Field, Schema};
use crate::value::Value;

/// What a record means for the table it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChangeKind {
    /// A new row (the default for append-only streams).
    #[default]
    Insert,
    /// The row as it was before an update.
    UpdateBefore,
    /// The row as it is after an update.
    UpdateAfter,
    /// A removed row (values hold the old row, or only the key columns).
    Delete,
    /// Insert-or-replace by key (keyed streams such as Debezium upsert).
    Upsert,
}

impl ChangeKind {
    /// A short name: `insert`, `update_before`, `update_after`, `delete`, `upsert`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::UpdateBefore => "update_before",
            ChangeKind::UpdateAfter => "update_after",
            ChangeKind::Delete => "delete",
            ChangeKind::Upsert => "upsert",
        }
    }

    /// Parses the names of [`ChangeKind::as_str`].
    pub fn parse(s: &str) -> Option<ChangeKind> {
        Some(match s {
            "insert" => ChangeKind::Insert,
            "update_before" => ChangeKind::UpdateBefore,
            "update_after" => ChangeKind::UpdateAfter,
            "delete" => ChangeKind::Delete,
            "upsert" => ChangeKind::Upsert,
            _ => return None,
        })
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message header (Kafka header, Pulsar property, HTTP header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value; Kafka allows a header without one.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// Where a record came from in its source, for logs, errors and dead letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Position {
    /// A partitioned log (Kafka).
    Offset {
        /// Topic name.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// Offset within the partition.
        offset: i64,
    },
    /// A message id (Pulsar, Ably).
    MessageId {
        /// Topic or channel.
        topic: Arc<str>,
        /// The message id as the service prints it.
        id: String,
    },
    /// A sequence number within the source (generator, HTTP push).
    Sequence(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Offset {
                topic,
                partition,
                offset,
            } => write!(f, "topic {topic} partition {partition} offset {offset}"),
            Position::MessageId { topic, id } => write!(f, "topic {topic} message {id}"),
            Position::Sequence(n) => write!(f, "record #{n}"),
        }
    }
}

/// One row with its change kind and metadata.
///
/// Values are stored in schema order; records of one shape share their
/// `Arc<Schema>`, so a record is a few pointers plus its values.
///
/// ```
/// use connector_core::{Record, Value};
///
/// let record = Record::from_pairs([("device", Value::from("device_1")), ("number", 42.5.into())]);
/// assert_eq!(record.get("device").and_then(Value::as_str), Some("device_1"));
/// assert_eq!(record.get("missing"), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// What the record means for its table.
    pub kind: ChangeKind,
    /// Names and types of the values.
    pub schema: Arc<Schema>,
    /// One value per schema field, in order.
    pub values: Vec<Value>,
    /// The message key (Kafka key, Pulsar partition key), if any.
    pub key: Option<Bytes>,
    /// Event time, microseconds since the Unix epoch.
    pub timestamp: Option<i64>,
    /// Message headers.
    pub headers: Vec<Header>,
    /// Where the record came from.
    pub position: Option<Position>,
}

impl Record {
    /// An insert record. Panics in debug builds when the value count does not
    /// match the schema.
    pub fn new(schema: Arc<Schema>, values: Vec<Value>) -> Self {
        debug_assert_eq!(
            schema.len(),
            values.len(),
            "record needs one value per schema field"
        );
        Record {
            kind: ChangeKind::Insert,
            schema,
            values,
            key: None,
            timestamp: None,
            headers: Vec::new(),
            position: None,
        }
    }

    /// An insert record from name/value pairs, inferring the schema.
    pub fn from_pairs<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        let (fields, values): (Vec<Field>, Vec<Value>) = pairs
            .into_iter()
            .map(|(k, v)| (Field::new(k, DataType::of(&v)), v))
            .unzip();
        Record::new(Arc::new(Schema::new(fields)), values)
    }

    /// Sets the change kind.
    pub fn with_kind(mut self, kind: ChangeKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the event time (microseconds since the epoch).
    pub fn with_timestamp(mut self, micros: i64) -> Self {
        self.timestamp = Some(micros);
        self
    }

    /// Sets the source position.
    pub fn with_position(mut self, position: Position) -> Self {
        self.position = Some(position);
        self
    }

    /// The value of the field called `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schema.index_of(name).map(|i| &self.values[i])
    }

    /// Follows a dotted path: the first part names a field, the rest walks
    /// into structs, maps and arrays (`payload.user.id`, `tags.0`). A field
    /// whose own name contains dots is found too.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        if let Some(v) = self.get(path) {
            return Some(v);
        }
        let (head, rest) = path.split_once('.')?;
        self.get(head)?.get_path(rest)
    }

    /// Field name / value pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.schema.names().zip(self.values.iter())
    }

    /// Rough in-memory size in bytes of the values and key.
    pub fn estimated_size(&self) -> usize {
        self.values.iter().map(Value::estimated_size).sum::<usize>()
            + self.key.as_ref().map_or(0, Bytes::len)
    }

    /// The values as one JSON object (keys in schema order).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl serde::Serialize for Record {
    /// A record serializes as an object of its fields (metadata is left out).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A payload that could not become a record, or a record that a step
/// refused. The pipeline's bad-data policy decides what happens to it.
#[derive(Debug)]
pub struct BadRecord {
    /// Why it is bad (names the format, the position and the reason).
    pub error: Error,
    /// The raw payload, when the problem was decoding.
    pub payload: Option<Bytes>,
    /// The record, when the problem came after decoding.
    pub record: Option<Record>,
    /// Where it came from.
    pub position: Option<Position>,
}

impl BadRecord {
    /// A payload that failed to decode.
    pub fn undecodable(
        error: Error,
        payload: impl Into<Bytes>,
        position: Option<Position>,
    ) -> Self {
        BadRecord {
            error,
            payload: Some(payload.into()),
            record: None,
            position,
        }
    }

    /// A decoded record refused by a later step.
    pub fn refused(error: Error, record: Record) -> Self {
        let position = record.position.clone();
        BadRecord {
            error,
            payload: None,
            record: Some(record),
            position,
        }
    }

    /// The bad record as a dead-letter record with the columns `error`
    /// (string), `component` (string), `position` (string or null),
    /// `payload` (bytes or null) and `record` (the refused record as a
    /// struct, or null).
    pub fn to_dead_letter(&self) -> Record {
        let record = self.record.as_ref().map(|r| {
            Value::Struct(crate::value::StructValue::new(
                r.schema.clone(),
                r.values.clone(),
            ))
        });
        let mut out = Record::new(
            dead_letter_schema(),
            vec![
                Value::String(self.error.to_string()),
                Value::String(self.error.component().to_owned()),
                self.position.as_ref().map(|p| p.to_string()).into(),
                self.payload.as_ref().map(|p| p.to_vec()).into(),
                record.unwrap_or(Value::Null),
            ],
        );
        if let Some(r) = &self.record {
            out.key = r.key.clone();
            out.timestamp = r.timestamp;
        }
        out.position = self.position.clone();
        out
    }
}

fn dead_letter_schema() -> Arc<Schema> {
    static SCHEMA: std::sync::OnceLock<Arc<Schema>> = std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::required("error", DataType::String),
                Field::required("component", DataType::String),
                Field::new("position", DataType::String),
                Field::new("payload", DataType::Bytes),
                Field::new("record", DataType::Json),
            ]))
        })
        .clone()
}

/// Records travelling together with one acknowledgement handle.
///
/// The batch's [`Ack`] covers every record in it and every bad record the
/// source put beside them: whoever makes the batch durable resolves it.
/// Records of a batch normally share one `Arc<Schema>` (a declared schema,
/// or the decoder's cached inferred one); schemaless sources may mix shapes,
/// and then [`Batch::schema`] returns `None`.
#[derive(Debug, Default)]
pub struct Batch {
    /// The records.
    pub records: Vec<Record>,
    /// Payloads the source could not decode, for the bad-data policy.
    pub bad: Vec<BadRecord>,
    /// Bytes the source read to produce this batch (0 when unknown).
    pub source_bytes: u64,
    ack: Ack,
}

impl Batch {
    /// A batch whose records need no acknowledgement.
    pub fn new(records: Vec<Record>) -> Self {
        Batch {
            records,
            ..Batch::default()
        }
    }

    /// A batch acknowledged through `ack`.
    pub fn with_ack(records: Vec<Record>, ack: Ack) -> Self {
        Batch {
            records,
            ack,
            ..Batch::default()
        }
    }

    /// Number of records (not counting bad ones).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records and no bad records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.bad.is_empty()
    }

    /// The schema every record shares, if they share one.
    pub fn schema(&self) -> Option<&Arc<Schema>> {
        let first = &self.records.first()?.schema;
        self.records[1..]
            .iter()
            .all(|r| Arc::ptr_eq(&r.schema, first) || r.schema == *first)
            .then_some(first)
    }

    /// The acknowledgement handle.
    pub fn ack(&self) -> &Ack {
        &self.ack
    }

    /// Replaces the acknowledgement handle, returning the old one.
    pub fn replace_ack(&mut self, ack: Ack) -> Ack {
        std::mem::replace(&mut self.ack, ack)
    }

    /// Takes the batch apart into its records and its acknowledgement.
    pub fn into_parts(self) -> (Vec<Record>, Ack) {
        (self.records, self.ack)
    }

    /// Resolves the batch as delivered (see [`Ack::delivered`]).
    pub fn delivered(self) {
        self.ack.delivered();
    }

    /// Resolves the batch as failed: the source should deliver it again.
    pub fn failed(self, error: Error) {
        self.ack.failed(error);
    }

    /// Resolves the batch as rejected: bad data that no retry can fix.
    pub fn rejected(self, error: Error) {
        self.ack.rejected(error);
    }

    /// Estimated size of the records, in bytes.
    pub fn estimated_size(&self) -> usize {
        self.records.iter().map(Record::estimated_size).sum()
    }

    /// Splits off the records from `at` onwards into a new batch that shares
    /// this batch's acknowledgement (both halves must be resolved).
    pub fn split_off(&mut self, at: usize) -> Batch {
        Batch {
            records: self.records.split_off(at),
            bad: Vec::new(),
            source_bytes: 0,
            ack: self.ack.clone(),
        }
    }

    /// Appends another batch; the result's acknowledgement resolves both.
    pub fn append(&mut self, other: Batch) {
        let Batch {
            mut records,
            mut bad,
            source_bytes,
            ack,
        } = other;
        self.records.append(&mut records);
        self.bad.append(&mut bad);
        self.source_bytes += source_bytes;
        let mine = std::mem::take(&mut self.ack);
        self.ack = Ack::merge([mine, ack]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths() {
        let r = Record::from_pairs([(
            "payload",
            Value::from_json(serde_json::json!({"user": {"id": 7}})),
        )]);
        assert_eq!(r.get_path("payload.user.id"), Some(&Value::Int64(7)));
        let dotted = Record::from_pairs([("a.b", Value::Int64(1))]);
        assert_eq!(dotted.get_path("a.b"), Some(&Value::Int64(1)));
    }

    #[test]
    fn dead_letter_record_has_error_and_payload() {
        let bad = BadRecord::undecodable(
            Error::decode("json", "line 1", "expected value").in_component("kafka source"),
            &b"{oops"[..],
            Some(Position::Offset {
                topic: "t".into(),
                partition: 0,
                offset: 5,
            }),
        );
        let dl = bad.to_dead_letter();
        assert_eq!(
            dl.get("component").and_then(Value::as_str),
            Some("kafka source")
        );
        assert_eq!(
            dl.get("position").and_then(Value::as_str),
            Some("topic t partition 0 offset 5")
        );
        assert_eq!(
            dl.get("payload").and_then(Value::as_bytes),
            Some(&b"{oops"[..])
        );
        assert!(
            dl.get("error")
                .and_then(Value::as_str)
                .unwrap()
                .contains("expected value")
        );
    }

    #[test]
    fn batch_schema_is_shared_or_none() {
        let a = Record::from_pairs([("x", Value::Int64(1))]);
        let b = Record::new(a.schema.clone(), vec![Value::Int64(2)]);
        let c = Record::from_pairs([("y", Value::Int64(3))]);
        assert!(Batch::new(vec![a.clone(), b]).schema().is_some());
        assert!(Batch::new(vec![a, c]).schema().is_none());
    }
}
