//! JSON: one object per record, or a top-level array of objects.
//!
//! The decoder builds [`Value`]s straight from the parser (no intermediate
//! `serde_json::Value`) and remembers the shape of the last object it saw at
//! every nesting level: when the next object has the same keys in the same
//! order, its record reuses the same `Arc<Schema>`, so field names are not
//! allocated again. Types are inferred (`Int64`, `Float64`, `Boolean`,
//! `String`, nested objects as [`Value::Struct`], arrays as
//! [`Value::Array`]); a field seen only as `null` so far is typed `Json`
//! until a value pins it down, and a field whose type changes becomes `Json`.
//! Whole numbers above `i64::MAX` are kept exactly as [`Value::Decimal`].
//!
//! With a declared schema ([`JsonDecoder::with_schema`]) undeclared keys are
//! skipped without being built and values are converted by the rules of
//! [`declared`](super::declared).
//!
//! ```
//! use connector_core::format::{Decoder, MessageMeta, json::JsonDecoder};
//! use connector_core::Value;
//!
//! let mut decoder = JsonDecoder::new();
//! let mut out = Vec::new();
//! let payload = br#"[{"id": 1, "tags": ["a"], "user": {"name": "ada"}}, {"id": 2, "tags": [], "user": {"name": "bob"}}]"#;
//! let _ = decoder.decode(payload, &MessageMeta::default(), &mut out).unwrap();
//! assert_eq!(out.len(), 2);
//! assert_eq!(out[1].get_path("user.name"), Some(&Value::from("bob")));
//! assert!(std::sync::Arc::ptr_eq(&out[0].schema, &out[1].schema));
//!
//! let err = decoder.decode(br#"[{"id": 1}, 7]"#, &MessageMeta::default(), &mut out).unwrap_err();
//! assert!(err.to_string().ends_with(
//!     "cannot decode json at array index 1 (line 1 column 13): invalid type: integer `7`, expected a JSON object"
//! ), "{err}");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::format::declared::Converter;
use crate::format::timestamp::TimestampField;
use crate::format::{Decoder, Encoder, MessageMeta, Progress};
use crate::record::Record;
use crate::schema::{DataType, Field, Schema};
use crate::value::{Decimal, StructValue, Value};

/// Decodes JSON payloads into records (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct JsonDecoder {
    shape: Shape,
    declared: Option<Declared>,
    timestamp: Option<TimestampField>,
}

#[derive(Debug)]
struct Declared {
    schema: Arc<Schema>,
    converter: Converter,
    slots: Vec<Slot>,
}

impl JsonDecoder {
    /// A decoder that infers each record's schema.
    pub fn new() -> Self {
        JsonDecoder::default()
    }

    /// Decodes into `schema`: undeclared keys are dropped, values converted
    /// by `converter`'s rules.
    pub fn with_schema(mut self, schema: Arc<Schema>, converter: Converter) -> Self {
        let slots = (0..schema.len()).map(|_| Slot::default()).collect();
        self.declared = Some(Declared {
            schema,
            converter,
            slots,
        });
        self
    }

    /// Sets each record's event time from `field`.
    pub fn with_timestamp(mut self, field: TimestampField) -> Self {
        self.timestamp = Some(field);
        self
    }

    /// The declared schema, if any.
    pub fn schema(&self) -> Option<&Arc<Schema>> {
        self.declared.as_ref().map(|d| &d.schema)
    }
}

impl Decoder for JsonDecoder {
    fn format(&self) -> &'static str {
        "json"
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        let start = out.len();
        let mut index = None;
        let mut de = serde_json::Deserializer::from_slice(payload);
        let seed = TopSeed {
            decoder: self,
            out,
            index: &mut index,
        };
        let result = seed.deserialize(&mut de).and_then(|()| de.end());
        if let Err(e) = result {
            out.truncate(start);
            return Err(json_error("json", &e, index, payload));
        }
        Ok(Progress::Done)
    }
}

/// A decode error from a `serde_json` error: position as `line L column C`
/// (prefixed with the array index when inside a top-level array), reason
/// without serde's position suffix, invalid UTF-8 named as such.
pub(crate) fn json_error(
    format: &'static str,
    e: &serde_json::Error,
    index: Option<usize>,
    payload: &[u8],
) -> Error {
    let line_col = (e.line() > 0).then(|| format!("line {} column {}", e.line(), e.column()));
    let position = match (index, line_col) {
        (Some(i), Some(lc)) => format!("array index {i} ({lc})"),
        (Some(i), None) => format!("array index {i}"),
        (None, Some(lc)) => lc,
        (None, None) => "payload".to_owned(),
    };
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let mut reason = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    if let Err(bad) = std::str::from_utf8(payload) {
        let at = bad.valid_up_to();
        let line = payload[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - payload[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        if (line, column) <= (e.line(), e.column()) || e.line() == 0 {
            reason = format!("invalid UTF-8 at byte {at} ({reason})");
        }
    } else if e.is_eof() {
        reason = format!("truncated input: {reason}");
    }
    Error::decode(format, position, reason)
}

struct TopSeed<'a> {
    decoder: &'a mut JsonDecoder,
    out: &'a mut Vec<Record>,
    index: &'a mut Option<usize>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or an array of objects")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let record = record_from_map(self.decoder, map)?;
        self.out.push(record);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.out.reserve(n);
        }
        let mut i = 0;
        loop {
            *self.index = Some(i);
            match seq.next_element_seed(RecordSeed {
                decoder: &mut *self.decoder,
            })? {
                Some(record) => self.out.push(record),
                None => break,
            }
            i += 1;
        }
        *self.index = None;
        Ok(())
    }
}

struct RecordSeed<'a> {
    decoder: &'a mut JsonDecoder,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Record, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Record, A::Error> {
        record_from_map(self.decoder, map)
    }
}

fn record_from_map<'de, A: MapAccess<'de>>(
    decoder: &mut JsonDecoder,
    map: A,
) -> Result<Record, A::Error> {
    let mut record = match &mut decoder.declared {
        Some(declared) => {
            let values = declared_object(declared, map)?;
            Record::new(declared.schema.clone(), values)
        }
        None => {
            let (schema, values) = infer_object(&mut decoder.shape, map)?;
            Record::new(schema, values)
        }
    };
    if let Some(ts) = &decoder.timestamp {
        record.timestamp = ts.micros(&record).map_err(de::Error::custom)?;
    }
    Ok(record)
}

fn declared_object<'de, A: MapAccess<'de>>(
    declared: &mut Declared,
    mut map: A,
) -> Result<Vec<Value>, A::Error> {
    let schema = &declared.schema;
    let mut values: Vec<Option<Value>> = vec![None; schema.len()];
    while let Some(key) = map.next_key_seed(KeySeed)? {
        match schema.index_of(&key) {
            Some(j) => {
                let raw = map.next_value_seed(ValueSeed {
                    slot: &mut declared.slots[j],
                })?;
                let field = schema.field(j);
                let value = declared
                    .converter
                    .field(&field.name, raw, &field.data_type)
                    .map_err(de::Error::custom)?;
                values[j] = Some(value);
            }
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    declared
        .converter
        .finish(schema, values, "")
        .map_err(de::Error::custom)
}

/// The remembered shape of the objects at one place in the document.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    schema: Arc<Schema>,
    /// Fields seen only as null so far (typed `Json` until pinned down).
    unknown: Vec<bool>,
    /// Caches for the values of each field.
    children: Vec<Slot>,
}

/// Caches for one value position: the shape of objects found there, and the
/// slot of array elements found there.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    object: Option<Box<Shape>>,
    items: Option<Box<Slot>>,
}

impl Shape {
    /// The cached schema, refined where this record pins down or changes a
    /// field's type.
    fn schema_for(&mut self, values: &[Value]) -> Arc<Schema> {
        let mut changed: Option<Vec<Field>> = None;
        for (j, value) in values.iter().enumerate() {
            if value.is_null() {
                continue;
            }
            let field = &self.schema.fields()[j];
            if !self.unknown[j] && fits(&field.data_type, value) {
                continue;
            }
            let fields = changed.get_or_insert_with(|| self.schema.fields().to_vec());
            fields[j].data_type = if self.unknown[j] {
                DataType::of(value)
            } else {
                widen(&field.data_type, value)
            };
            self.unknown[j] = false;
        }
        if let Some(fields) = changed {
            self.schema = Arc::new(Schema::new(fields));
        }
        self.schema.clone()
    }
}

/// Whether a value matches an inferred type exactly (nested schemas too).
fn fits(t: &DataType, v: &Value) -> bool {
    match (t, v) {
        (_, Value::Null) | (DataType::Json, _) => true,
        (DataType::Struct(s), Value::Struct(sv)) => {
            Arc::ptr_eq(s, sv.schema()) || **s == **sv.schema()
        }
        (DataType::Array(e), Value::Array(items)) => items.iter().all(|item| fits(e, item)),
        _ => t.accepts(v),
    }
}

/// The type of a field after a value that does not fit it.
fn widen(old: &DataType, v: &Value) -> DataType {
    match (old, v) {
        (DataType::Struct(_), Value::Struct(_)) | (DataType::Array(_), Value::Array(_)) => {
            DataType::of(v)
        }
        _ => DataType::Json,
    }
}

/// Decodes one object, reusing `shape`'s schema when the keys match it.
pub(crate) fn infer_object<'de, A: MapAccess<'de>>(
    shape: &mut Shape,
    mut map: A,
) -> Result<(Arc<Schema>, Vec<Value>), A::Error> {
    let cached = shape.schema.len();
    let mut values: Vec<Value> = Vec::with_capacity(cached.max(map.size_hint().unwrap_or(0)));
    let mut i = 0;
    // Fast path: the keys arrive in the cached order.
    let mut pending = loop {
        match map.next_key_seed(KeySeed)? {
            None => break None,
            Some(key) if i < cached && shape.schema.fields()[i].name == *key => {
                let value = map.next_value_seed(ValueSeed {
                    slot: &mut shape.children[i],
                })?;
                values.push(value);
                i += 1;
            }
            Some(key) => break Some(key),
        }
    };
    if pending.is_none() && i == cached {
        return Ok((shape.schema_for(&values), values));
    }
    // Another shape: collect names (keeping caches of known keys), then
    // remember this shape for the next object.
    let mut names: Vec<String> = shape.schema.names().take(i).map(str::to_owned).collect();
    let mut children: Vec<Slot> = shape.children[..i].iter_mut().map(std::mem::take).collect();
    while let Some(key) = pending {
        match names.iter().position(|n| *n == *key) {
            // A repeated key: the last value wins, as in serde_json.
            Some(p) => {
                values[p] = map.next_value_seed(ValueSeed {
                    slot: &mut children[p],
                })?;
            }
            None => {
                let mut slot = match shape.schema.index_of(&key) {
                    Some(j) => std::mem::take(&mut shape.children[j]),
                    None => Slot::default(),
                };
                values.push(map.next_value_seed(ValueSeed { slot: &mut slot })?);
                names.push(key.into_owned());
                children.push(slot);
            }
        }
        pending = map.next_key_seed(KeySeed)?;
    }
    let fields = names
        .into_iter()
        .zip(&values)
        .map(|(name, v)| Field::new(name, DataType::of(v)))
        .collect();
    *shape = Shape {
        schema: Arc::new(Schema::new(fields)),
        unknown: values.iter().map(Value::is_null).collect(),
        children,
    };
    Ok((shape.schema.clone(), values))
}

/// Object keys, borrowed from the payload when they hold no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// One JSON value, with the caches of its position.
pub(crate) struct ValueSeed<'a> {
    pub(crate) slot: &'a mut Slot,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int64(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Value::Int64(v),
            Err(_) => Value::Decimal(Decimal::new(i128::from(v), 0)),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float64(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let slot = self.slot.items.get_or_insert_with(Box::default);
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(ValueSeed { slot: &mut *slot })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let shape = self.slot.object.get_or_insert_with(Box::default);
        let (schema, values) = infer_object(shape, map)?;
        Ok(Value::Struct(StructValue::new(schema, values)))
    }
}

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
