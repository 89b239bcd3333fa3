//! `binary`: the whole payload as one bytes column, `self` by default.
//!
//! ```
//! use connector_core::format::{Decoder, Encoder, MessageMeta, binary::{BinaryDecoder, BinaryEncoder}};
//! use connector_core::Value;
//!
//! let mut out = Vec::new();
//! let _ = BinaryDecoder::new().decode(&[0, 159, 146], &MessageMeta::default(), &mut out).unwrap();
//! assert_eq!(out[0].get("self"), Some(&Value::Bytes(vec![0, 159, 146])));
//!
//! let mut bytes = Vec::new();
//! let _ = BinaryEncoder::new().encode(&out[0], &mut bytes).unwrap();
//! assert_eq!(bytes, [0, 159, 146]);
//! ```

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{Decoder, Encoder, MessageMeta, Progress, record_position};
use crate::record::Record;
use crate::schema::{DataType, Field, Schema};
use crate::value::Value;

/// The column `binary` reads into by default.
pub const SELF: &str = "self";

/// Decodes each payload into one record with one bytes column.
#[derive(Debug, Clone)]
pub struct BinaryDecoder {
    schema: Arc<Schema>,
}

impl Default for BinaryDecoder {
    fn default() -> Self {
        BinaryDecoder::with_column(SELF)
    }
}

impl BinaryDecoder {
    /// A decoder writing the `self` column.
    pub fn new() -> Self {
        BinaryDecoder::default()
    }

    /// A decoder writing the column `name` (the declared schema's single
    /// bytes field).
    pub fn with_column(name: impl Into<String>) -> Self {
        BinaryDecoder {
            schema: Arc::new(Schema::new(vec![Field::new(name, DataType::Bytes)])),
        }
    }

    /// The one-column schema of the records.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }
}

impl Decoder for BinaryDecoder {
    fn format(&self) -> &'static str {
        "binary"
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        out.push(Record::new(
            self.schema.clone(),
            vec![Value::Bytes(payload.to_vec())],
        ));
        Ok(Progress::Done)
    }
}

/// Writes the record's bytes column: the named one (`self` by default), or
/// else the only column holding bytes. A string column is written as its
/// UTF-8 bytes.
#[derive(Debug, Clone)]
pub struct BinaryEncoder {
    column: String,
}

impl Default for BinaryEncoder {
    fn default() -> Self {
        BinaryEncoder {
            column: SELF.to_owned(),
        }
    }
}

impl BinaryEncoder {
    /// An encoder writing the `self` column (or the only bytes column).
    pub fn new() -> Self {
        BinaryEncoder::default()
    }

    /// Writes the column `name`.
    pub fn with_column(mut self, name: impl Into<String>) -> Self {
        self.column = name.into();
        self
    }
}

impl Encoder for BinaryEncoder {
    fn format(&self) -> &'static str {
        "binary"
    }

    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        let fail = |reason: String| Err(Error::encode("binary", record_position(record), reason));
        let (name, value) = match record.get(&self.column) {
            Some(v) => (self.column.as_str(), v),
            None => {
                let mut bytes = record.iter().filter(|(_, v)| matches!(v, Value::Bytes(_)));
                match (bytes.next(), bytes.next(), record.values.len()) {
                    (Some(only), None, _) => only,
                    (_, _, 1) => record.iter().next().map_or(("", &Value::Null), |p| p),
                    _ => {
                        let columns: Vec<&str> = record.schema.names().collect();
                        return fail(format!(
                            "the record has no `{}` column and not exactly one bytes column (columns: {})",
                            self.column,
                            columns.join(", ")
                        ));
                    }
                }
            }
        };
        match value {
            Value::Bytes(b) => out.extend_from_slice(b),
            Value::String(s) => out.extend_from_slice(s.as_bytes()),
            Value::Null => return fail(format!("column `{name}` is null")),
            other => {
                return fail(format!(
                    "column `{name}` holds {}, not bytes",
                    DataType::of(other)
                ));
            }
        }
        Ok(Progress::Done)
    }
}
