//! Avro: plain binary with a fixed writer schema, or the Confluent wire
//! format (byte `0x00`, a 4-byte big-endian schema id, then the binary
//! datum) with writer schemas from a schema registry.
//!
//! Types: `null` unions become nullable columns of the other branch (a union
//! of several non-null types is a `json` column holding whichever branch was
//! written); `int`/`long` → `Int64`; `float`/`double` → `Float64`; enums →
//! strings; `fixed` → bytes; arrays, maps (string keys) and nested records
//! stay structured; logical types `date` → `Date`, `timestamp-millis`,
//! `-micros`, `-nanos` (and `local-` ones) → `Timestamp`, `decimal` (bytes or
//! fixed, up to 38 digits) → `Decimal`, `uuid` → string, `time-millis` /
//! `time-micros` → `Int64` as written. A top-level type that is not a record
//! gives one column, `value`.
//!
//! The decoder reads straight from the compiled writer schema into records
//! (see [`plan`]); schemas fetched from the registry are cached per id, and
//! the fetch happens in [`Decoder::resolve`] (the decoder answers
//! [`Progress::NeedsResolve`] on an id it has not seen). An id the registry
//! does not know is a decode error for that message (remembered for a
//! minute); a registry that cannot be reached after retries is a retryable
//! error.
//!
//! The encoder writes the wire format: with `avro_schema` it registers that
//! schema under the subject (registering an existing schema returns its
//! id); without, it uses the subject's latest schema when that has every
//! column of the record, else it derives a schema from the record's
//! columns and registers it (as Confluent serializers do with
//! `auto.register.schemas`). Without a registry it writes plain binary with
//! `avro_schema`.

pub mod plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::format::declared::Converter;
use crate::format::registry::RegistryClient;
use crate::format::timestamp::TimestampField;
use crate::format::{Decoder, Encoder, MessageMeta, Progress, record_position};
use crate::record::Record;
use crate::schema::{DataType, Schema};

pub use plan::{Plan, PlanError};

/// The first byte of the Confluent wire format.
pub const MAGIC: u8 = 0;

/// How long an id the registry did not know is answered from memory.
const UNKNOWN_ID_TTL: Duration = Duration::from_secs(60);

/// Splits a Confluent wire-format payload into schema id and datum.
pub fn split_wire_format(payload: &[u8]) -> std::result::Result<(u32, &[u8]), String> {
    match payload {
        [MAGIC, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [first, ..] if *first != MAGIC => Err(format!(
            "not in the Confluent wire format: the first byte is 0x{first:02x}, expected 0x00 followed by a 4-byte schema id"
        )),
        _ => Err(format!(
            "not in the Confluent wire format: {} bytes is shorter than the 5-byte header",
            payload.len()
        )),
    }
}

/// Appends the Confluent wire-format header.
pub fn write_wire_header(id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
}

enum Source {
    Fixed(Arc<Plan>),
    Registry {
        client: RegistryClient,
        plans: HashMap<u32, Arc<Plan>>,
        unknown: HashMap<u32, (Instant, String)>,
        pending: Option<u32>,
    },
}

/// Decodes Avro payloads (see the [module docs](self)).
pub struct AvroDecoder {
    format: &'static str,
    source: Source,
    declared: Option<(Arc<Schema>, Converter)>,
    timestamp: Option<TimestampField>,
}

impl std::fmt::Debug for AvroDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.source {
            Source::Fixed(_) => "fixed schema".to_owned(),
            Source::Registry { client, plans, .. } => {
                format!(
                    "registry {} ({} schemas cached)",
                    client.address(),
                    plans.len()
                )
            }
        };
        f.debug_struct("AvroDecoder")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

impl AvroDecoder {
    /// Plain Avro binary written with `plan`'s schema.
    pub fn fixed(plan: Plan) -> Self {
        AvroDecoder {
            format: "avro",
            source: Source::Fixed(Arc::new(plan)),
            declared: None,
            timestamp: None,
        }
    }

    /// The Confluent wire format, writer schemas from `client`.
    pub fn registry(client: RegistryClient) -> Self {
        AvroDecoder {
            format: "avro",
            source: Source::Registry {
                client,
                plans: HashMap::new(),
                unknown: HashMap::new(),
                pending: None,
            },
            declared: None,
            timestamp: None,
        }
    }

    /// Knows schema `id` without asking the registry (for tests and offline use).
    pub fn with_schema_id(mut self, id: u32, plan: Plan) -> Self {
        if let Source::Registry { plans, .. } = &mut self.source {
            plans.insert(id, Arc::new(plan));
        }
        self
    }

    /// Projects and converts records to a declared schema.
    pub fn with_declared(mut self, schema: Arc<Schema>, converter: Converter) -> Self {
        self.declared = Some((schema, converter));
        self
    }

    /// Sets each record's event time from `field`.
    pub fn with_timestamp(mut self, field: TimestampField) -> Self {
        self.timestamp = Some(field);
        self
    }

    /// Names the format in errors (`debezium-avro` when wrapped).
    pub(crate) fn named(mut self, format: &'static str) -> Self {
        self.format = format;
        self
    }

    /// The schema of the records when it is fixed.
    pub fn schema(&self) -> Option<&Arc<Schema>> {
        match (&self.declared, &self.source) {
            (Some((s, _)), _) => Some(s),
            (None, Source::Fixed(plan)) => Some(plan.schema()),
            _ => None,
        }
    }

    fn record(&self, plan: &Plan, datum: &[u8], header: usize) -> Result<Record> {
        let values = plan.read(datum).map_err(|e| {
            Error::decode(
                self.format,
                format!("byte {}", e.offset + header),
                e.message(),
            )
        })?;
        let mut record = match &self.declared {
            Some((schema, converter)) => {
                let pairs = plan
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name.clone())
                    .zip(values);
                let values = converter
                    .record(schema, pairs, "")
                    .map_err(|reason| Error::decode(self.format, "record", reason))?;
                Record::new(schema.clone(), values)
            }
            None => Record::new(plan.schema().clone(), values),
        };
        if let Some(ts) = &self.timestamp {
            record.timestamp = ts
                .micros(&record)
                .map_err(|reason| Error::decode(self.format, "record", reason))?;
        }
        Ok(record)
    }
}

impl Decoder for AvroDecoder {
    fn format(&self) -> &'static str {
        self.format
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        let record = match &mut self.source {
            Source::Fixed(plan) => {
                let plan = plan.clone();
                self.record(&plan, payload, 0)?
            }
            Source::Registry {
                plans,
                unknown,
                pending,
                client,
            } => {
                let (id, datum) = split_wire_format(payload)
                    .map_err(|reason| Error::decode(self.format, "byte 0", reason))?;
                match plans.get(&id) {
                    Some(plan) => {
                        let plan = plan.clone();
                        self.record(&plan, datum, 5)?
                    }
                    None => {
                        if let Some((since, reason)) = unknown.get(&id)
                            && since.elapsed() < UNKNOWN_ID_TTL
                        {
                            return Err(Error::decode(
                                self.format,
                                format!("schema id {id}"),
                                reason.clone(),
                            ));
                        }
                        let _ = client;
                        *pending = Some(id);
                        return Ok(Progress::NeedsResolve);
                    }
                }
            }
        };
        out.push(record);
        Ok(Progress::Done)
    }

    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Source::Registry {
                client,
                plans,
                unknown,
                pending,
            } = &mut self.source
            else {
                return Ok(());
            };
            let Some(id) = pending.take() else {
                return Ok(());
            };
            match client.schema_by_id(id).await {
                Ok(found) => {
                    let compiled = apache_avro::Schema::parse_str_with_list(
                        &found.schema,
                        found.references.iter(),
                    )
                    .map_err(|e| format!("invalid Avro schema: {e}"))
                    .and_then(|(schema, refs)| Plan::new(&schema, &refs));
                    match compiled {
                        Ok(plan) => {
                            tracing::debug!(id, registry = client.address(), "fetched Avro schema");
                            plans.insert(id, Arc::new(plan));
                        }
                        Err(reason) => {
                            unknown.insert(
                                id,
                                (
                                    Instant::now(),
                                    format!(
                                        "schema id {id} from the registry cannot be used: {reason}"
                                    ),
                                ),
                            );
                        }
                    }
                    Ok(())
                }
                Err(e) if !e.is_retryable() && e.to_string().contains("status 404") => {
                    unknown.insert(
                        id,
                        (
                            Instant::now(),
                            format!(
                                "schema id {id} is not in the schema registry at {} ({e})",
                                client.address()
                            ),
                        ),
                    );
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
    }
}

enum Target {
    Plain(Arc<Plan>),
    Registry {
        client: RegistryClient,
        subject: String,
        fixed: Option<String>,
        /// Schema id and plan per record schema (one entry with a fixed schema).
        resolved: HashMap<Arc<Schema>, (u32, Arc<Plan>)>,
        last: Option<(Arc<Schema>, u32, Arc<Plan>)>,
        pending: Option<Arc<Schema>>,
    },
}

/// Encodes records as Avro (see the [module docs](self)).
pub struct AvroEncoder {
    target: Target,
}

impl std::fmt::Debug for AvroEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.target {
            Target::Plain(_) => "plain".to_owned(),
            Target::Registry {
                client, subject, ..
            } => format!("registry {} subject {subject}", client.address()),
        };
        f.debug_struct("AvroEncoder")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

impl AvroEncoder {
    /// Plain Avro binary with `plan`'s schema (no header).
    pub fn plain(plan: Plan) -> Self {
        AvroEncoder {
            target: Target::Plain(Arc::new(plan)),
        }
    }

    /// The Confluent wire format, registering under `subject`: `schema`
    /// (Avro JSON) when given, else the subject's latest or a derived one.
    pub fn registry(
        client: RegistryClient,
        subject: impl Into<String>,
        schema: Option<String>,
    ) -> Self {
        AvroEncoder {
            target: Target::Registry {
                client,
                subject: subject.into(),
                fixed: schema,
                resolved: HashMap::new(),
                last: None,
                pending: None,
            },
        }
    }
}

impl Encoder for AvroEncoder {
    fn format(&self) -> &'static str {
        "avro"
    }

    fn content_type(&self) -> &'static str {
        "application/vnd.apache.avro+binary"
    }

    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        let start = out.len();
        let (plan, id) = match &mut self.target {
            Target::Plain(plan) => (plan.clone(), None),
            Target::Registry {
                resolved,
                last,
                pending,
                fixed,
                ..
            } => {
                let key = if fixed.is_some() {
                    None
                } else {
                    Some(&record.schema)
                };
                let hit = match (last.as_ref(), key) {
                    (Some((_, id, plan)), None) => Some((*id, plan.clone())),
                    (Some((s, id, plan)), Some(k)) if Arc::ptr_eq(s, k) => {
                        Some((*id, plan.clone()))
                    }
                    _ => key
                        .map_or_else(|| resolved.values().next(), |k| resolved.get(k))
                        .map(|(id, plan)| (*id, plan.clone())),
                };
                match hit {
                    Some((id, plan)) => {
                        *last = Some((record.schema.clone(), id, plan.clone()));
                        (plan, Some(id))
                    }
                    None => {
                        *pending = Some(record.schema.clone());
                        return Ok(Progress::NeedsResolve);
                    }
                }
            }
        };
        if let Some(id) = id {
            write_wire_header(id, out);
        }
        plan.write_record(&record.schema, &record.values, out)
            .map_err(|e| {
                out.truncate(start);
                Error::encode("avro", record_position(record), e.message())
            })?;
        Ok(Progress::Done)
    }

    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Target::Registry {
                client,
                subject,
                fixed,
                resolved,
                pending,
                ..
            } = &mut self.target
            else {
                return Ok(());
            };
            let Some(record_schema) = pending.take() else {
                return Ok(());
            };
            let invalid = |e: String| Error::config("avro encoder", "avro_schema", e);
            let (id, plan) = match fixed {
                Some(text) => {
                    let plan = Plan::parse(text).map_err(invalid)?;
                    let id = client.register(subject, text).await?;
                    (id, plan)
                }
                None => {
                    let latest = client.latest(subject).await?;
                    let usable = latest.and_then(|found| {
                        let (schema, refs) = apache_avro::Schema::parse_str_with_list(
                            &found.schema,
                            found.references.iter(),
                        )
                        .ok()?;
                        let plan = Plan::new(&schema, &refs).ok()?;
                        let covers = record_schema
                            .names()
                            .all(|n| plan.schema().index_of(n).is_some());
                        covers.then_some((found.id, plan))
                    });
                    match usable {
                        Some(found) => found,
                        None => {
                            let text = derive_schema(&record_schema, subject);
                            let plan = Plan::parse(&text).map_err(|e| {
                                Error::encode(
                                    "avro",
                                    "(schema)",
                                    format!("cannot derive an Avro schema: {e}"),
                                )
                            })?;
                            let id = client.register(subject, &text).await?;
                            tracing::info!(subject = %subject, id, "registered a derived Avro schema");
                            (id, plan)
                        }
                    }
                }
            };
            resolved.insert(record_schema, (id, Arc::new(plan)));
            Ok(())
        })
    }
}

/// An Avro record schema (JSON text) for records of `schema`: every column
/// nullable with default null; timestamps as `timestamp-micros`, dates as
/// `date`, decimals as `decimal` bytes, `json` columns as JSON text.
pub fn derive_schema(schema: &Schema, subject: &str) -> String {
    let name = avro_name(subject);
    record_json(schema, &name).to_string()
}

fn avro_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn record_json(schema: &Schema, name: &str) -> serde_json::Value {
    let fields: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            let t = type_json(&f.data_type, &format!("{name}_{}", avro_name(&f.name)));
            serde_json::json!({"name": avro_name(&f.name), "type": ["null", t], "default": null})
        })
        .collect();
    serde_json::json!({"type": "record", "name": name, "fields": fields})
}

fn type_json(t: &DataType, name: &str) -> serde_json::Value {
    use serde_json::json;
    match t {
        DataType::Boolean => json!("boolean"),
        DataType::Int64 => json!("long"),
        DataType::Float64 => json!("double"),
        DataType::String | DataType::Json => json!("string"),
        DataType::Bytes => json!("bytes"),
        DataType::Timestamp => json!({"type": "long", "logicalType": "timestamp-micros"}),
        DataType::Date => json!({"type": "int", "logicalType": "date"}),
        DataType::Decimal { precision, scale } => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale})
        }
        DataType::Array(item) => {
            json!({"type": "array", "items": ["null", type_json(item, &format!("{name}_item"))]})
        }
        DataType::Map(_, v) => {
            json!({"type": "map", "values": ["null", type_json(v, &format!("{name}_value"))]})
        }
        DataType::Struct(s) => record_json(s, name),
    }
}
