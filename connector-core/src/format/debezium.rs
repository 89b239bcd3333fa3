//! The Debezium change-event envelope, over any encoding.
//!
//! The envelope is separate from the encoding: [`DebeziumDecoder`] wraps
//! an inner decoder (JSON for `debezium-json`, Avro for `debezium-avro`)
//! that turns a payload into one envelope record (`before`, `after`, `op`,
//! `source`, `ts_ms`), and then maps it to change records:
//!
//! | `op` | `debezium-*` | `debezium-*-upsert` |
//! | --- | --- | --- |
//! | `c`, `r` | Insert(`after`) | Upsert(`after`) |
//! | `u` | UpdateBefore(`before`), UpdateAfter(`after`) | Upsert(`after`) |
//! | `d` | Delete(`before`) | Delete(key) |
//! | `t`, `m` | skipped | skipped |
//! | tombstone (empty or `null` payload) | skipped | Delete(key) |
//!
//! "key" is the message key decoded by the key decoder (its columns), or
//! `before` when the message has no key. A `u` or `d` without `before` in
//! the non-upsert mode is an error explaining that the table must emit full
//! row images. JSON events with the `{"schema": ..., "payload": ...}`
//! wrapper are detected; their schema gives the columns their types
//! (Debezium's `io.debezium.time.*` and Kafka Connect's logical types
//! become timestamps, dates and decimals; `bytes` are base64-decoded), so
//! every record of a table has the same schema. The event time is
//! `source.ts_ms` (the change in the database), else `ts_ms`.
//!
//! [`DebeziumEncoder`] writes the envelope (`before`, `after`, `op`,
//! `ts_ms`) through an inner encoder, as Flink's `debezium-json` does:
//! Insert, UpdateAfter and Upsert become `c` with `after`; Delete and
//! UpdateBefore become `d` with `before`.
//!
//! ```
//! use connector_core::format::{DataFormat, FormatConfig, MessageMeta, Decoder};
//! use connector_core::{ChangeKind, Value};
//!
//! let mut decoder = FormatConfig::new(DataFormat::DEBEZIUM_JSON).decoder().unwrap();
//! let event = br#"{"before": {"id": 1, "name": "old"}, "after": {"id": 1, "name": "new"},
//!                 "op": "u", "ts_ms": 1700000000000}"#;
//! let mut out = Vec::new();
//! let _ = decoder.decode(event, &MessageMeta::default(), &mut out).unwrap();
//! assert_eq!(out[0].kind, ChangeKind::UpdateBefore);
//! assert_eq!(out[1].kind, ChangeKind::UpdateAfter);
//! assert_eq!(out[1].get("name"), Some(&Value::from("new")));
//! ```

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::format::declared::decode_base64;
use crate::format::timestamp::parse_rfc3339;
use crate::format::{Decoder, Encoder, MessageMeta, Progress};
use crate::record::{ChangeKind, Record};
use crate::schema::{DataType, Field, Schema};
use crate::value::{Decimal, StructValue, Value};

/// Which inner decoder asked for `resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Value,
    Key,
}

/// Decodes Debezium change events (see the [module docs](self)).
pub struct DebeziumDecoder {
    format: &'static str,
    upsert: bool,
    value: Box<dyn Decoder>,
    key: Option<Box<dyn Decoder>>,
    /// The payload `null` is a tombstone (JSON).
    null_is_tombstone: bool,
    scratch: Vec<Record>,
    key_scratch: Vec<Record>,
    pending: Pending,
    /// The last wrapper schema and the row plan compiled from it.
    typed: Option<(Value, Arc<RowPlan>)>,
    /// The same, keyed by the schema's JSON text.
    typed_raw: Option<(String, Arc<RowPlan>)>,
}

impl std::fmt::Debug for DebeziumDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebeziumDecoder")
            .field("format", &self.format)
            .field("upsert", &self.upsert)
            .finish_non_exhaustive()
    }
}

impl DebeziumDecoder {
    /// Wraps `value`, which decodes a payload into the envelope record.
    /// `format` names it in errors (`debezium-json`, `debezium-avro-upsert`).
    pub fn new(format: &'static str, value: Box<dyn Decoder>, upsert: bool) -> Self {
        DebeziumDecoder {
            format,
            upsert,
            value,
            key: None,
            null_is_tombstone: false,
            scratch: Vec::new(),
            key_scratch: Vec::new(),
            pending: Pending::None,
            typed: None,
            typed_raw: None,
        }
    }

    /// Decodes message keys with `key` (for deletes by key).
    pub fn with_key_decoder(mut self, key: Box<dyn Decoder>) -> Self {
        self.key = Some(key);
        self
    }

    /// Treats the payload `null` as a tombstone (for JSON).
    pub fn json_tombstones(mut self) -> Self {
        self.null_is_tombstone = true;
        self
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::decode(self.format, "event", reason)
    }

    fn is_tombstone(&self, payload: &[u8]) -> bool {
        payload.is_empty() || (self.null_is_tombstone && payload.trim_ascii() == b"null")
    }

    /// The key's columns as a record: decoded by the key decoder, or a
    /// single `key` column when it is not a structured value.
    fn key_record(&mut self, meta: &MessageMeta<'_>) -> Result<Option<Result<Record>>> {
        let Some(raw) = meta.key else {
            return Ok(Some(Err(self.error("no message key to delete by"))));
        };
        let text_key = || {
            Record::from_pairs([(
                "key",
                match std::str::from_utf8(raw) {
                    Ok(s) => Value::from(s),
                    Err(_) => Value::Bytes(raw.to_vec()),
                },
            )])
        };
        let Some(decoder) = self.key.as_mut() else {
            return Ok(Some(Ok(text_key())));
        };
        self.key_scratch.clear();
        match decoder.decode(raw, &MessageMeta::default(), &mut self.key_scratch) {
            Ok(Progress::NeedsResolve) => {
                self.pending = Pending::Key;
                Ok(None)
            }
            Ok(Progress::Done) => Ok(Some(Ok(match self.key_scratch.pop() {
                Some(record) => unwrap_wrapper(record).0,
                None => text_key(),
            }))),
            // A key that is not structured (a bare number, text from a
            // string converter) still deletes, as one `key` column.
            Err(e) => {
                tracing::debug!(format = self.format, error = %e, "message key is not structured; deleting by its text");
                Ok(Some(Ok(text_key())))
            }
        }
    }

    fn delete_by_key(
        &mut self,
        meta: &MessageMeta<'_>,
        before: Option<Record>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        if meta.key.is_none()
            && let Some(before) = before
        {
            out.push(before.with_kind(ChangeKind::Delete));
            return Ok(Progress::Done);
        }
        match self.key_record(meta)? {
            None => Ok(Progress::NeedsResolve),
            Some(Ok(key)) => {
                out.push(key.with_kind(ChangeKind::Delete));
                Ok(Progress::Done)
            }
            Some(Err(e)) => Err(e),
        }
    }

    fn row(&self, envelope: &Record, name: &str, plan: Option<&RowPlan>) -> Result<Option<Record>> {
        match envelope.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Struct(s)) => match plan {
                Some(plan) => plan
                    .row(s)
                    .map(Some)
                    .map_err(|reason| self.error(format!("`{name}`: {reason}"))),
                None => Ok(Some(Record::new(s.schema().clone(), s.values().to_vec()))),
            },
            Some(other) => Err(self.error(format!(
                "`{name}` is {} , expected an object or null",
                DataType::of(other)
            ))),
        }
    }

    fn event(
        &mut self,
        envelope: Record,
        plan: Option<Arc<RowPlan>>,
        meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        let op = match envelope.get("op") {
            Some(Value::String(op)) => op.clone(),
            Some(other) => {
                return Err(
                    self.error(format!("`op` is {other}, expected one of c, r, u, d, t, m"))
                );
            }
            None => {
                let fields: Vec<&str> = envelope.schema.names().collect();
                return Err(self.error(format!(
                    "not a Debezium change event: no `op` field (fields: {})",
                    fields.join(", ")
                )));
            }
        };
        let time = ["source.ts_ms", "ts_ms"]
            .iter()
            .find_map(|p| envelope.get_path(p).and_then(Value::as_i64))
            .map(|ms| ms.saturating_mul(1000));
        let mut before = self.row(&envelope, "before", plan.as_deref())?;
        let after = self.row(&envelope, "after", plan.as_deref())?;
        // `before` and `after` of one table share one schema.
        if let (Some(b), Some(a)) = (&mut before, &after)
            && !Arc::ptr_eq(&b.schema, &a.schema)
            && b.schema == a.schema
        {
            b.schema = a.schema.clone();
        }
        let start = out.len();
        let need = |row: Option<Record>, name: &str, this: &Self| {
            row.ok_or_else(|| this.error(format!("`{op}` event without `{name}`")))
        };
        let progress = match (op.as_str(), self.upsert) {
            ("c" | "r", false) => {
                out.push(need(after, "after", self)?);
                Progress::Done
            }
            ("c" | "r" | "u", true) => {
                out.push(need(after, "after", self)?.with_kind(ChangeKind::Upsert));
                Progress::Done
            }
            ("u", false) => {
                let before = before.ok_or_else(|| self.missing_before("u"))?;
                let after = need(after, "after", self)?;
                out.push(before.with_kind(ChangeKind::UpdateBefore));
                out.push(after.with_kind(ChangeKind::UpdateAfter));
                Progress::Done
            }
            ("d", false) => {
                let before = before.ok_or_else(|| self.missing_before("d"))?;
                out.push(before.with_kind(ChangeKind::Delete));
                Progress::Done
            }
            ("d", true) => self.delete_by_key(meta, before, out)?,
            ("t" | "m", _) => Progress::Done,
            (other, _) => {
                return Err(self.error(format!(
                    "unknown `op` `{other}` (expected c, r, u, d, t or m)"
                )));
            }
        };
        if let Some(t) = time {
            for r in &mut out[start..] {
                r.timestamp = Some(t);
            }
        }
        Ok(progress)
    }

    fn missing_before(&self, op: &str) -> Error {
        self.error(format!(
            "`{op}` event without `before`: {} needs full row images. Make the source table emit them \
             (Postgres: `ALTER TABLE ... REPLICA IDENTITY FULL`; MySQL: `binlog_row_image=FULL`), \
             or read the topic as `{}-upsert` keyed by the message key",
            self.format,
            self.format.trim_end_matches("-upsert")
        ))
    }

    /// The row plan for a wrapper schema given as JSON text: compared as
    /// text with the last one, parsed only when it changes.
    fn plan_raw(&mut self, text: &str) -> Result<Arc<RowPlan>> {
        if let Some((cached, plan)) = &self.typed_raw
            && cached == text
        {
            return Ok(plan.clone());
        }
        let value = serde_json::from_str::<serde_json::Value>(text)
            .map(Value::from_json)
            .map_err(|e| self.error(format!("the event's `schema`: {e}")))?;
        let plan = self.plan(value)?;
        self.typed_raw = Some((text.to_owned(), plan.clone()));
        Ok(plan)
    }

    /// Events with the JSON wrapper, read without building the schema's
    /// values for every message. `None` when the payload is not a wrapper
    /// or the fast path cannot decode it (the general path then reports
    /// the error with positions in the whole message).
    fn decode_wrapped(
        &mut self,
        payload: &[u8],
        meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Option<Result<Progress>> {
        let (schema, body) = split_json_wrapper(payload)?;
        let start = out.len();
        if body.trim() == "null" {
            return Some(if self.upsert {
                self.delete_by_key(meta, None, out)
            } else {
                Ok(Progress::Done)
            });
        }
        self.scratch.clear();
        match self.value.decode(body.as_bytes(), meta, &mut self.scratch) {
            Ok(Progress::Done) => {}
            _ => return None,
        }
        let plan = match schema.trim() {
            "null" => None,
            text => match self.plan_raw(text) {
                Ok(plan) => Some(plan),
                Err(e) => return Some(Err(e)),
            },
        };
        for envelope in std::mem::take(&mut self.scratch) {
            match self.event(envelope, plan.clone(), meta, out) {
                Ok(Progress::Done) => {}
                other => {
                    out.truncate(start);
                    return Some(other);
                }
            }
        }
        Some(Ok(Progress::Done))
    }

    fn plan(&mut self, schema: Value) -> Result<Arc<RowPlan>> {
        if let Some((cached, plan)) = &self.typed
            && *cached == schema
        {
            return Ok(plan.clone());
        }
        let plan = Arc::new(
            RowPlan::from_envelope_schema(&schema)
                .map_err(|reason| self.error(format!("the event's `schema`: {reason}")))?,
        );
        self.typed = Some((schema, plan.clone()));
        Ok(plan)
    }
}

/// The raw `schema` and `payload` of `{"schema": .., "payload": ..}`, when
/// the message starts like one (a cheap check first, so unwrapped events
/// pay nothing).
fn split_json_wrapper(payload: &[u8]) -> Option<(&str, &str)> {
    let text = payload
        .trim_ascii_start()
        .strip_prefix(b"{")?
        .trim_ascii_start();
    if !(text.starts_with(b"\"schema\"") || text.starts_with(b"\"payload\"")) {
        return None;
    }
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<(&'de str, &'de str)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a Debezium JSON wrapper")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let (mut schema, mut payload, mut other) = (None, None, false);
            while let Some(key) = map.next_key::<&'de str>()? {
                let raw: &'de serde_json::value::RawValue = map.next_value()?;
                match key {
                    "schema" if schema.is_none() => schema = Some(raw.get()),
                    "payload" if payload.is_none() => payload = Some(raw.get()),
                    _ => other = true,
                }
            }
            Ok(match (schema, payload, other) {
                (Some(s), Some(p), false) => Some((s, p)),
                _ => None,
            })
        }
    }
    let mut de = serde_json::Deserializer::from_slice(payload);
    let found = serde::Deserializer::deserialize_map(&mut de, V).ok()?;
    de.end().ok()?;
    found
}

/// Splits `{"schema": .., "payload": ..}` into payload record and schema.
fn unwrap_wrapper(record: Record) -> (Record, Option<Value>) {
    let is_wrapper = record.schema.len() == 2
        && record.schema.index_of("payload").is_some()
        && record.schema.index_of("schema").is_some();
    if !is_wrapper {
        return (record, None);
    }
    let Record {
        schema,
        mut values,
        kind,
        key,
        timestamp,
        headers,
        position,
    } = record;
    let p = schema.index_of("payload").unwrap_or(0);
    let s = schema.index_of("schema").unwrap_or(1);
    let schema_value = std::mem::take(&mut values[s]);
    let mut out = match std::mem::take(&mut values[p]) {
        Value::Struct(inner) => {
            let (schema, values) = inner.into_parts();
            Record::new(schema, values)
        }
        // A null payload: the caller treats it as a tombstone.
        _ => Record::new(Arc::new(Schema::empty()), Vec::new()),
    };
    out.kind = kind;
    out.key = key;
    out.timestamp = timestamp;
    out.headers = headers;
    out.position = position;
    (out, (!schema_value.is_null()).then_some(schema_value))
}

impl Decoder for DebeziumDecoder {
    fn format(&self) -> &'static str {
        self.format
    }

    fn decode(
        &mut self,
        payload: &[u8],
        meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        let start = out.len();
        if self.is_tombstone(payload) {
            if !self.upsert {
                return Ok(Progress::Done);
            }
            return self
                .delete_by_key(meta, None, out)
                .inspect_err(|_| out.truncate(start));
        }
        if self.null_is_tombstone
            && let Some(result) = self.decode_wrapped(payload, meta, out)
        {
            return result.inspect_err(|_| out.truncate(start));
        }
        self.scratch.clear();
        match self.value.decode(payload, meta, &mut self.scratch) {
            Ok(Progress::NeedsResolve) => {
                self.pending = Pending::Value;
                return Ok(Progress::NeedsResolve);
            }
            Ok(Progress::Done) => {}
            Err(e) => return Err(rename(e, self.format)),
        }
        let events = std::mem::take(&mut self.scratch);
        for record in events {
            let (envelope, schema) = unwrap_wrapper(record);
            let result = if envelope.schema.is_empty() {
                // `{"schema": .., "payload": null}`: a tombstone.
                if self.upsert {
                    self.delete_by_key(meta, None, out)
                } else {
                    Ok(Progress::Done)
                }
            } else {
                match schema.map(|s| self.plan(s)).transpose() {
                    Ok(plan) => self.event(envelope, plan, meta, out),
                    Err(e) => Err(e),
                }
            };
            match result {
                Ok(Progress::Done) => {}
                other => {
                    out.truncate(start);
                    return other;
                }
            }
        }
        Ok(Progress::Done)
    }

    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        match (pending, self.key.as_mut()) {
            (Pending::Key, Some(key)) => key.resolve(),
            _ => self.value.resolve(),
        }
    }
}

/// Errors of the inner decoder, named for the envelope format.
fn rename(e: Error, format: &'static str) -> Error {
    match e {
        Error::Decode {
            component,
            position,
            reason,
            ..
        } => Error::Decode {
            component,
            format,
            position,
            reason,
        },
        other => other,
    }
}

/// How one column of a Debezium row is converted (from the Kafka Connect
/// schema in the JSON wrapper).
#[derive(Debug, Clone, PartialEq)]
enum Conv {
    Any,
    Int,
    Float,
    Bool,
    Str,
    Bytes,
    Date,
    Millis,
    Micros,
    Nanos,
    Zoned,
    Decimal(u8),
    VariableDecimal,
    Struct(Arc<Schema>, Vec<Conv>),
    Array(Box<Conv>),
    Map(Box<Conv>),
}

impl Conv {
    fn expected(&self) -> &'static str {
        match self {
            Conv::Any => "any value",
            Conv::Int => "an integer",
            Conv::Float => "a number",
            Conv::Bool => "a boolean",
            Conv::Str => "a string",
            Conv::Bytes => "base64 bytes",
            Conv::Date => "a date (days since 1970-01-01)",
            Conv::Millis | Conv::Micros | Conv::Nanos => "a timestamp number",
            Conv::Zoned => "a timestamp string",
            Conv::Decimal(_) => "a base64 decimal",
            Conv::VariableDecimal => "a variable-scale decimal",
            Conv::Struct(..) => "an object",
            Conv::Array(_) => "an array",
            Conv::Map(_) => "an object (map)",
        }
    }
}

/// Row schema and column conversions from a wrapper schema.
#[derive(Debug)]
struct RowPlan {
    schema: Arc<Schema>,
    columns: Vec<Conv>,
}

impl RowPlan {
    fn from_envelope_schema(schema: &Value) -> std::result::Result<RowPlan, String> {
        let fields = match schema.get_path("fields") {
            Some(Value::Array(fields)) => fields,
            _ => return Err("no `fields` list".into()),
        };
        let row = fields
            .iter()
            .find(|f| {
                matches!(
                    f.get_path("field").and_then(Value::as_str),
                    Some("after" | "before")
                )
            })
            .ok_or("no `before` or `after` field")?;
        match connect_type(row)? {
            (DataType::Struct(schema), Conv::Struct(_, columns)) => Ok(RowPlan { schema, columns }),
            _ => Err("`after` is not a struct".into()),
        }
    }

    fn row(&self, value: &StructValue) -> std::result::Result<Record, String> {
        let values = convert_struct(&self.schema, &self.columns, value)?;
        Ok(Record::new(self.schema.clone(), values))
    }
}

fn connect_type(field: &Value) -> std::result::Result<(DataType, Conv), String> {
    let text = |p: &str| field.get_path(p).and_then(Value::as_str);
    let name = text("name").unwrap_or("");
    let kind = text("type").ok_or("a field without `type`")?;
    Ok(match (kind, name) {
        ("int32", "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date") => {
            (DataType::Date, Conv::Date)
        }
        ("int64", "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp") => {
            (DataType::Timestamp, Conv::Millis)
        }
        ("int64", "io.debezium.time.MicroTimestamp") => (DataType::Timestamp, Conv::Micros),
        ("int64", "io.debezium.time.NanoTimestamp") => (DataType::Timestamp, Conv::Nanos),
        ("string", "io.debezium.time.ZonedTimestamp") => (DataType::Timestamp, Conv::Zoned),
        ("bytes", "org.apache.kafka.connect.data.Decimal") => {
            let scale = field
                .get_path("parameters.scale")
                .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_i64()))
                .unwrap_or(0);
            let scale = u8::try_from(scale)
                .map_err(|_| format!("decimal scale {scale} is out of range"))?;
            let precision = field
                .get_path("parameters")
                .and_then(Value::as_struct)
                .and_then(|p| p.get("connect.decimal.precision"))
                .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|p| (1..=38).contains(p))
                .unwrap_or(38);
            (DataType::Decimal { precision, scale }, Conv::Decimal(scale))
        }
        ("struct", "io.debezium.data.VariableScaleDecimal") => {
            (DataType::Json, Conv::VariableDecimal)
        }
        ("int8" | "int16" | "int32" | "int64", _) => (DataType::Int64, Conv::Int),
        ("float32" | "float64" | "float" | "double", _) => (DataType::Float64, Conv::Float),
        ("boolean", _) => (DataType::Boolean, Conv::Bool),
        ("string", _) => (DataType::String, Conv::Str),
        ("bytes", _) => (DataType::Bytes, Conv::Bytes),
        ("array", _) => {
            let items = field.get_path("items").ok_or("an array without `items`")?;
            let (t, c) = connect_type(items)?;
            (DataType::Array(Box::new(t)), Conv::Array(Box::new(c)))
        }
        ("map", _) => {
            let values = field.get_path("values").ok_or("a map without `values`")?;
            let (t, c) = connect_type(values)?;
            (
                DataType::Map(Box::new(DataType::String), Box::new(t)),
                Conv::Map(Box::new(c)),
            )
        }
        ("struct", _) => {
            let Some(Value::Array(fields)) = field.get_path("fields") else {
                return Err("a struct without `fields`".into());
            };
            let mut columns = Vec::with_capacity(fields.len());
            let mut convs = Vec::with_capacity(fields.len());
            for f in fields {
                let name = f
                    .get_path("field")
                    .and_then(Value::as_str)
                    .ok_or("a struct field without `field`")?;
                let (t, c) = connect_type(f).map_err(|e| format!("field `{name}`: {e}"))?;
                let optional = f
                    .get_path("optional")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                columns.push(Field {
                    name: name.to_owned(),
                    data_type: t,
                    nullable: optional,
                });
                convs.push(c);
            }
            let schema = Arc::new(Schema::new(columns));
            (
                DataType::Struct(schema.clone()),
                Conv::Struct(schema, convs),
            )
        }
        _ => (DataType::Json, Conv::Any),
    })
}

fn convert_struct(
    schema: &Schema,
    convs: &[Conv],
    value: &StructValue,
) -> std::result::Result<Vec<Value>, String> {
    schema
        .fields()
        .iter()
        .zip(convs)
        .map(|(field, conv)| {
            let v = value.get(&field.name).cloned().unwrap_or(Value::Null);
            convert(conv, v).map_err(|e| format!("column `{}`: {e}", field.name))
        })
        .collect()
}

fn convert(conv: &Conv, v: Value) -> std::result::Result<Value, String> {
    let bad = |v: &Value, want: &str| format!("expected {want}, got {}", DataType::of(v));
    Ok(match (conv, v) {
        (_, Value::Null) => Value::Null,
        (Conv::Any, v) => v,
        (Conv::Int, v @ Value::Int64(_)) => v,
        (Conv::Float, Value::Int64(n)) => Value::Float64(n as f64),
        (Conv::Float, v @ Value::Float64(_)) => v,
        (Conv::Bool, v @ Value::Boolean(_)) => v,
        (Conv::Str, v @ Value::String(_)) => v,
        (Conv::Bytes, Value::String(s)) => {
            Value::Bytes(decode_base64(&s).ok_or("bytes that are not base64")?)
        }
        (Conv::Date, Value::Int64(n)) => {
            Value::Date(i32::try_from(n).map_err(|_| format!("date {n} is out of range"))?)
        }
        (Conv::Millis, Value::Int64(n)) => Value::Timestamp(n.saturating_mul(1000)),
        (Conv::Micros, Value::Int64(n)) => Value::Timestamp(n),
        (Conv::Nanos, Value::Int64(n)) => Value::Timestamp(n.div_euclid(1000)),
        (Conv::Zoned, Value::String(s)) => Value::Timestamp(
            parse_rfc3339(&s).ok_or_else(|| format!("`{s}` is not an RFC 3339 timestamp"))?,
        ),
        (Conv::Decimal(scale), Value::String(s)) => {
            let raw = decode_base64(&s).ok_or("a decimal that is not base64")?;
            Value::Decimal(Decimal::new(be_integer(&raw)?, *scale))
        }
        (Conv::Decimal(scale), Value::Float64(f)) => {
            let d: Decimal = f.to_string().parse()?;
            Value::Decimal(d.rescale(*scale).unwrap_or(d))
        }
        (Conv::VariableDecimal, Value::Struct(s)) => {
            let scale = s
                .get("scale")
                .and_then(Value::as_i64)
                .ok_or("a variable-scale decimal without `scale`")?;
            let raw = s
                .get("value")
                .and_then(Value::as_str)
                .and_then(decode_base64)
                .ok_or("a variable-scale decimal without base64 `value`")?;
            let scale = u8::try_from(scale)
                .map_err(|_| format!("decimal scale {scale} is out of range"))?;
            Value::Decimal(Decimal::new(be_integer(&raw)?, scale))
        }
        (Conv::Struct(schema, convs), Value::Struct(s)) => Value::Struct(StructValue::new(
            schema.clone(),
            convert_struct(schema, convs, &s)?,
        )),
        (Conv::Array(item), Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|v| convert(item, v))
                .collect::<std::result::Result<_, _>>()?,
        ),
        (Conv::Map(value), Value::Struct(s)) => Value::Map(
            s.iter()
                .map(|(k, v)| Ok((Value::from(k), convert(value, v.clone())?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
        (Conv::Map(value), Value::Map(entries)) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((k, convert(value, v)?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
        (conv, v) => return Err(bad(&v, conv.expected())),
    })
}

fn be_integer(raw: &[u8]) -> std::result::Result<i128, String> {
    if raw.len() > 16 {
        return Err(format!(
            "a decimal of {} bytes does not fit 128 bits",
            raw.len()
        ));
    }
    if raw.is_empty() {
        return Ok(0);
    }
    let mut buf = if raw[0] & 0x80 != 0 {
        [0xff; 16]
    } else {
        [0; 16]
    };
    buf[16 - raw.len()..].copy_from_slice(raw);
    Ok(i128::from_be_bytes(buf))
}

/// Writes records as Debezium envelopes through an inner encoder (see the
/// [module docs](self)).
pub struct DebeziumEncoder {
    format: &'static str,
    inner: Box<dyn Encoder>,
    /// The envelope schema for the last row schema.
    envelope: Option<(Arc<Schema>, Arc<Schema>)>,
}

impl std::fmt::Debug for DebeziumEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebeziumEncoder")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl DebeziumEncoder {
    /// Writes envelopes with `inner` (a JSON or Avro encoder).
    pub fn new(format: &'static str, inner: Box<dyn Encoder>) -> Self {
        DebeziumEncoder {
            format,
            inner,
            envelope: None,
        }
    }

    fn envelope_schema(&mut self, row: &Arc<Schema>) -> Arc<Schema> {
        match &self.envelope {
            Some((r, e)) if Arc::ptr_eq(r, row) || **r == **row => e.clone(),
            _ => {
                let e = Arc::new(Schema::new(vec![
                    Field::new("before", DataType::Struct(row.clone())),
                    Field::new("after", DataType::Struct(row.clone())),
                    Field::required("op", DataType::String),
                    Field::required("ts_ms", DataType::Int64),
                ]));
                self.envelope = Some((row.clone(), e.clone()));
                e
            }
        }
    }
}

impl Encoder for DebeziumEncoder {
    fn format(&self) -> &'static str {
        self.format
    }

    fn content_type(&self) -> &'static str {
        self.inner.content_type()
    }

    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        let schema = self.envelope_schema(&record.schema);
        let row = Value::Struct(StructValue::new(
            record.schema.clone(),
            record.values.clone(),
        ));
        let (before, after, op) = match record.kind {
            ChangeKind::Insert | ChangeKind::UpdateAfter | ChangeKind::Upsert => {
                (Value::Null, row, "c")
            }
            ChangeKind::Delete | ChangeKind::UpdateBefore => (row, Value::Null, "d"),
        };
        let ts_ms = record
            .timestamp
            .unwrap_or_else(crate::value::now_micros)
            .div_euclid(1000);
        let mut envelope = Record::new(
            schema,
            vec![before, after, Value::from(op), Value::Int64(ts_ms)],
        );
        envelope.position = record.position.clone();
        envelope.key = record.key.clone();
        self.inner.encode(&envelope, out).map_err(|e| match e {
            Error::Encode {
                component,
                position,
                reason,
                ..
            } => Error::Encode {
                component,
                format: self.format,
                position,
                reason,
            },
            other => other,
        })
    }

    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        self.inner.resolve()
    }
}
