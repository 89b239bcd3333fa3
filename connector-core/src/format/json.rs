//! JSON encoding of records (one object per record).

use crate::error::{Error, Result};
use crate::format::{Encoder, Progress};
use crate::record::Record;

/// Writes each record as one JSON object, keys in schema order.
///
/// Timestamps become RFC 3339 UTC strings, bytes base64, decimals exact
/// strings (see [`Value`](crate::Value)).
///
/// ```
/// use connector_core::{Record, Value, format::{Encoder, json::JsonEncoder}};
///
/// let mut out = Vec::new();
/// let record = Record::from_pairs([("a", Value::Int64(1)), ("b", "x".into())]);
/// let _ = JsonEncoder::new().encode(&record, &mut out).unwrap();
/// assert_eq!(out, br#"{"a":1,"b":"x"}"#);
/// ```
#[derive(Debug, Default, Clone)]
pub struct JsonEncoder {
    _private: (),
}

impl JsonEncoder {
    /// A JSON encoder.
    pub fn new() -> Self {
        JsonEncoder::default()
    }
}

impl Encoder for JsonEncoder {
    fn format(&self) -> &'static str {
        "json"
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        let start = out.len();
        serde_json::to_writer(&mut *out, record).map_err(|e| {
            out.truncate(start);
            Error::encode(
                "json",
                record
                    .position
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                e.to_string(),
            )
        })?;
        Ok(Progress::Done)
    }
}
