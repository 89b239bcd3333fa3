//! `text`: the whole payload as one string column, `raw` by default.
//!
//! ```
//! use connector_core::format::{Decoder, Encoder, MessageMeta, text::{TextDecoder, TextEncoder}};
//! use connector_core::format::template::Template;
//! use connector_core::{Record, Value};
//!
//! let mut out = Vec::new();
//! let _ = TextDecoder::new().decode(b"hello", &MessageMeta::default(), &mut out).unwrap();
//! assert_eq!(out[0].get("raw"), Some(&Value::from("hello")));
//!
//! let mut bytes = Vec::new();
//! let mut encoder = TextEncoder::new().with_template(Template::parse("{{ .raw }}!").unwrap());
//! let _ = encoder.encode(&out[0], &mut bytes).unwrap();
//! assert_eq!(bytes, b"hello!");
//! ```

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::template::Template;
use crate::format::{Decoder, Encoder, MessageMeta, Progress, record_position};
use crate::record::Record;
use crate::schema::{DataType, Field, Schema};
use crate::value::Value;

/// The column `text` reads into and writes from by default.
pub const RAW: &str = "raw";

/// Decodes each payload into one record with one string column.
#[derive(Debug, Clone)]
pub struct TextDecoder {
    schema: Arc<Schema>,
}

impl Default for TextDecoder {
    fn default() -> Self {
        TextDecoder::with_column(RAW)
    }
}

impl TextDecoder {
    /// A decoder writing the `raw` column.
    pub fn new() -> Self {
        TextDecoder::default()
    }

    /// A decoder writing the column `name`.
    pub fn with_column(name: impl Into<String>) -> Self {
        TextDecoder {
            schema: Arc::new(Schema::new(vec![Field::new(name, DataType::String)])),
        }
    }

    /// The one-column schema of the records.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }
}

impl Decoder for TextDecoder {
    fn format(&self) -> &'static str {
        "text"
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        let text = std::str::from_utf8(payload).map_err(|e| {
            Error::decode("text", format!("byte {}", e.valid_up_to()), "invalid UTF-8")
        })?;
        out.push(Record::new(
            self.schema.clone(),
            vec![Value::String(text.to_owned())],
        ));
        Ok(Progress::Done)
    }
}

/// Writes the `raw` column (or another named one), or renders a template.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    column: String,
    template: Option<Template>,
    scratch: String,
}

impl Default for TextEncoder {
    fn default() -> Self {
        TextEncoder {
            column: RAW.to_owned(),
            template: None,
            scratch: String::new(),
        }
    }
}

impl TextEncoder {
    /// An encoder writing the `raw` column.
    pub fn new() -> Self {
        TextEncoder::default()
    }

    /// Writes the column `name` instead of `raw`.
    pub fn with_column(mut self, name: impl Into<String>) -> Self {
        self.column = name.into();
        self
    }

    /// Renders each record with `template` instead of writing a column.
    pub fn with_template(mut self, template: Template) -> Self {
        self.template = Some(template);
        self
    }
}

impl Encoder for TextEncoder {
    fn format(&self) -> &'static str {
        "text"
    }

    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }

    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        if let Some(template) = &self.template {
            self.scratch.clear();
            template.render_into(record, &mut self.scratch);
            out.extend_from_slice(self.scratch.as_bytes());
            return Ok(Progress::Done);
        }
        match record.get(&self.column) {
            Some(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
            Some(Value::Bytes(b)) => out.extend_from_slice(b),
            Some(Value::Null) => {
                return Err(Error::encode(
                    "text",
                    record_position(record),
                    format!("column `{}` is null", self.column),
                ));
            }
            Some(other) => out.extend_from_slice(other.to_string().as_bytes()),
            None => {
                let columns: Vec<&str> = record.schema.names().collect();
                return Err(Error::encode(
                    "text",
                    record_position(record),
                    format!(
                        "the record has no `{}` column (columns: {}); set `text_template` to render records as text",
                        self.column,
                        columns.join(", ")
                    ),
                ));
            }
        }
        Ok(Progress::Done)
    }
}
