//! `delimited`: one record per line, fields split by a delimiter (`,` by
//! default), quoting as in CSV (RFC 4180: fields in double quotes may hold
//! the delimiter, newlines and doubled quotes).
//!
//! Columns are named by `fields`, else `col0`, `col1`, ...; values are
//! strings unless a schema is declared (then converted by the rules of
//! [`declared`](super::declared), an empty field being null). Blank lines
//! are skipped. A line with more values than named fields is an error.
//!
//! ```
//! use connector_core::format::{Decoder, Encoder, MessageMeta};
//! use connector_core::format::delimited::{DelimitedDecoder, DelimitedEncoder};
//! use connector_core::Value;
//!
//! let mut out = Vec::new();
//! let payload = b"1,\"Smith, J\",\"says \"\"hi\"\"\"\n2,Doe,\"two\nlines\"\n";
//! let mut decoder = DelimitedDecoder::new(b',').with_fields(["id", "name", "note"]);
//! let _ = decoder.decode(payload, &MessageMeta::default(), &mut out).unwrap();
//! assert_eq!(out[0].get("name"), Some(&Value::from("Smith, J")));
//! assert_eq!(out[0].get("note"), Some(&Value::from("says \"hi\"")));
//! assert_eq!(out[1].get("note"), Some(&Value::from("two\nlines")));
//!
//! let mut line = Vec::new();
//! let _ = DelimitedEncoder::new(b',').encode(&out[0], &mut line).unwrap();
//! assert_eq!(line, b"1,\"Smith, J\",\"says \"\"hi\"\"\"");
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::format::declared::Converter;
use crate::format::timestamp::TimestampField;
use crate::format::{Decoder, Encoder, MessageMeta, Progress};
use crate::record::Record;
use crate::schema::{DataType, Field, Schema};
use crate::value::Value;

/// Parses the `delimiter` property: one ASCII character, or `\t` / `tab`.
pub fn parse_delimiter(text: &str) -> std::result::Result<u8, String> {
    match text {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        s if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" && s != "\r" => {
            Ok(s.as_bytes()[0])
        }
        s => Err(format!(
            "expected one ASCII character other than a quote or a line break (or `\\t`), got `{s}`"
        )),
    }
}

/// Decodes delimited lines into records (see the [module docs](self)).
#[derive(Debug)]
pub struct DelimitedDecoder {
    builder: csv::ReaderBuilder,
    /// Named columns (from `fields`, else from the declared schema).
    names: Option<Arc<Schema>>,
    declared: Option<(Arc<Schema>, Converter)>,
    timestamp: Option<TimestampField>,
    /// `col0..colN` schema of the last width seen.
    generated: Arc<Schema>,
    row: csv::ByteRecord,
}

impl DelimitedDecoder {
    /// A decoder splitting on `delimiter`.
    pub fn new(delimiter: u8) -> Self {
        let mut builder = csv::ReaderBuilder::new();
        builder
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(4096);
        DelimitedDecoder {
            builder,
            names: None,
            declared: None,
            timestamp: None,
            generated: Arc::new(Schema::empty()),
            row: csv::ByteRecord::new(),
        }
    }

    /// Names the columns, in order (string columns).
    pub fn with_fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        let fields = names
            .into_iter()
            .map(|n| Field::new(n, DataType::String))
            .collect();
        self.names = Some(Arc::new(Schema::new(fields)));
        self
    }

    /// Converts values to `schema`. Without [`with_fields`](Self::with_fields)
    /// the columns are the schema's fields in order; with it, the named
    /// columns are matched to declared fields by name (others dropped).
    pub fn with_schema(mut self, schema: Arc<Schema>, converter: Converter) -> Self {
        self.declared = Some((schema, converter));
        self
    }

    /// Sets each record's event time from `field`.
    pub fn with_timestamp(mut self, field: TimestampField) -> Self {
        self.timestamp = Some(field);
        self
    }

    fn generated(&mut self, width: usize) -> Arc<Schema> {
        if self.generated.len() != width {
            let fields = (0..width)
                .map(|i| Field::new(format!("col{i}"), DataType::String))
                .collect();
            self.generated = Arc::new(Schema::new(fields));
        }
        self.generated.clone()
    }

    fn record(&mut self, line: u64) -> std::result::Result<Record, String> {
        let width = self.row.len();
        let generated = self.generated(width);
        let mut texts = Vec::with_capacity(width);
        for (i, field) in self.row.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(s) => texts.push(s),
                Err(e) => {
                    return Err(format!(
                        "field {} is not valid UTF-8 (at byte {} of the field)",
                        i + 1,
                        e.valid_up_to()
                    ));
                }
            }
        }
        let names = match (&self.names, &self.declared) {
            (Some(names), _) => Some(names.clone()),
            (None, Some((schema, _))) => Some(schema.clone()),
            (None, None) => None,
        };
        if let Some(names) = &names
            && width > names.len()
        {
            return Err(format!(
                "line {line} has {width} values but {} columns are named",
                names.len()
            ));
        }
        let mut record = match (&self.declared, names) {
            (Some((schema, converter)), Some(names)) => {
                let pairs = names.names().zip(&texts).map(|(name, text)| {
                    let declared = schema.field_named(name).map(|f| &f.data_type);
                    let value = match declared {
                        Some(t) if text.is_empty() && *t != DataType::String => Value::Null,
                        _ => Value::String((*text).to_owned()),
                    };
                    (name.to_owned(), value)
                });
                let values = converter.record(schema, pairs, "")?;
                Record::new(schema.clone(), values)
            }
            (_, Some(names)) => {
                let mut values: Vec<Value> = texts
                    .iter()
                    .map(|t| Value::String((*t).to_owned()))
                    .collect();
                values.resize(names.len(), Value::Null);
                Record::new(names, values)
            }
            (_, None) => {
                let schema = generated;
                let values = texts
                    .iter()
                    .map(|t| Value::String((*t).to_owned()))
                    .collect();
                Record::new(schema, values)
            }
        };
        if let Some(ts) = &self.timestamp {
            record.timestamp = ts.micros(&record)?;
        }
        Ok(record)
    }
}

impl Decoder for DelimitedDecoder {
    fn format(&self) -> &'static str {
        "delimited"
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        let start = out.len();
        let mut reader = self.builder.from_reader(payload);
        let mut row = std::mem::take(&mut self.row);
        let result = loop {
            match reader.read_byte_record(&mut row) {
                Ok(false) => break Ok(()),
                Ok(true) => {
                    let line = row.position().map_or(0, csv::Position::line);
                    std::mem::swap(&mut self.row, &mut row);
                    let record = self.record(line);
                    std::mem::swap(&mut self.row, &mut row);
                    match record {
                        Ok(r) => out.push(r),
                        Err(reason) => {
                            break Err(Error::decode("delimited", format!("line {line}"), reason));
                        }
                    }
                }
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    break Err(Error::decode(
                        "delimited",
                        format!("line {line}"),
                        e.to_string(),
                    ));
                }
            }
        };
        self.row = row;
        if let Err(e) = result {
            out.truncate(start);
            return Err(e);
        }
        Ok(Progress::Done)
    }
}

/// Writes each record as one delimited line (no line terminator), quoting
/// fields that hold the delimiter, a quote or a line break. Nulls are empty
/// fields, bytes base64, timestamps RFC 3339, nested values JSON.
#[derive(Debug)]
pub struct DelimitedEncoder {
    builder: csv_core::WriterBuilder,
    fields: Option<Vec<String>>,
}

impl DelimitedEncoder {
    /// An encoder joining fields with `delimiter`, columns in schema order.
    pub fn new(delimiter: u8) -> Self {
        let mut builder = csv_core::WriterBuilder::new();
        builder
            .delimiter(delimiter)
            .quote_style(csv_core::QuoteStyle::Necessary);
        DelimitedEncoder {
            builder,
            fields: None,
        }
    }

    /// Writes these columns in this order (a missing column is an empty field).
    pub fn with_fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.fields = Some(names.into_iter().map(Into::into).collect());
        self
    }
}

fn text_of(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed(""),
        Value::String(s) => Cow::Borrowed(s),
        Value::Bytes(b) => Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)),
        other => Cow::Owned(other.to_string()),
    }
}

/// Writes one line with `csv_core` (no allocation besides `out`).
struct LineWriter<'a> {
    writer: csv_core::Writer,
    out: &'a mut Vec<u8>,
    count: usize,
    buf: [u8; 256],
}

impl LineWriter<'_> {
    fn field(&mut self, mut input: &[u8]) {
        if self.count > 0 {
            loop {
                let (res, n) = self.writer.delimiter(&mut self.buf);
                self.out.extend_from_slice(&self.buf[..n]);
                if res == csv_core::WriteResult::InputEmpty {
                    break;
                }
            }
        }
        self.count += 1;
        loop {
            let (res, nin, nout) = self.writer.field(input, &mut self.buf);
            self.out.extend_from_slice(&self.buf[..nout]);
            input = &input[nin..];
            if res == csv_core::WriteResult::InputEmpty {
                break;
            }
        }
    }

    fn finish(mut self) {
        loop {
            let (res, n) = self.writer.finish(&mut self.buf);
            self.out.extend_from_slice(&self.buf[..n]);
            if res == csv_core::WriteResult::InputEmpty {
                break;
            }
        }
    }
}

impl Encoder for DelimitedEncoder {
    fn format(&self) -> &'static str {
        "delimited"
    }

    fn content_type(&self) -> &'static str {
        "text/csv; charset=utf-8"
    }

    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        let mut line = LineWriter {
            writer: self.builder.build(),
            out,
            count: 0,
            buf: [0; 256],
        };
        match &self.fields {
            Some(fields) => {
                for name in fields {
                    line.field(text_of(record.get(name).unwrap_or(&Value::Null)).as_bytes());
                }
            }
            None => {
                for value in &record.values {
                    line.field(text_of(value).as_bytes());
                }
            }
        }
        // csv_core quotes a lone empty field, so it does not read back as a
        // blank line.
        line.finish();
        Ok(Progress::Done)
    }
}
