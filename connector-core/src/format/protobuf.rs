//! Protocol Buffers: a message type named at run time from a `.proto` file
//! compiled in process (`protox`, no `protoc`), read and written with
//! `prost-reflect`'s dynamic messages.
//!
//! Columns are the message's fields in declaration order. Types: integers
//! → `Int64` (`uint64`/`fixed64` → `decimal(20, 0)`, which holds every
//! value), `float`/`double` → `Float64`, `bool`, `string`, `bytes`; enums
//! → their value names (the number as text for values the schema does not
//! name); nested messages → structs; `repeated` → arrays; `map<K, V>` →
//! maps; `google.protobuf.Timestamp` → `Timestamp`; the wrapper types
//! (`google.protobuf.Int64Value`, `StringValue`, ...) → nullable scalars;
//! `google.protobuf.Struct`/`Value`/`ListValue` → `json`. Each member of a
//! `oneof` is its own nullable column, set for the member present. Fields
//! without presence (proto3 scalars) read as their default when absent;
//! fields with presence (messages, `optional`, oneof members, proto2) are
//! null when absent.
//!
//! ```no_run
//! use connector_core::format::{FormatConfig, DataFormat, ProtoConfig};
//!
//! let decoder = FormatConfig::new(DataFormat::PROTOBUF)
//!     .with_proto(ProtoConfig {
//!         file: "schemas/shop/order.proto".into(),
//!         message: "shop.v1.Order".into(),
//!         include_paths: vec!["schemas".into()],
//!     })
//!     .decoder()?;
//! # Ok::<_, connector_core::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value as Proto,
};

use crate::error::{Error, Result};
use crate::format::timestamp::TimestampField;
use crate::format::{Decoder, Encoder, MessageMeta, Progress, ProtoConfig, record_position};
use crate::record::Record;
use crate::schema::{DataType, Field, Schema};
use crate::value::{Decimal, StructValue, Value};

/// Compiles `config.file` (with its imports) and finds `config.message`.
pub fn compile(config: &ProtoConfig) -> std::result::Result<MessageDescriptor, String> {
    let file = &config.file;
    let absolute = std::fs::canonicalize(file)
        .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    let mut includes: Vec<std::path::PathBuf> = Vec::new();
    for p in &config.include_paths {
        includes.push(
            std::fs::canonicalize(p).map_err(|e| format!("include path `{}`: {e}", p.display()))?,
        );
    }
    if let Some(dir) = absolute.parent()
        && !includes.iter().any(|i| absolute.starts_with(i))
    {
        includes.push(dir.to_owned());
    }
    let mut compiler = protox::Compiler::new(&includes).map_err(|e| e.to_string())?;
    compiler.include_imports(true);
    compiler
        .open_file(&absolute)
        .map_err(|e| format!("cannot compile `{}`: {e}", file.display()))?;
    let pool: DescriptorPool = compiler.descriptor_pool();
    pool.get_message_by_name(&config.message).ok_or_else(|| {
        let known: Vec<String> = pool
            .all_messages()
            .map(|m| m.full_name().to_owned())
            .filter(|n| !n.starts_with("google.protobuf."))
            .collect();
        format!(
            "no message `{}` in `{}` (messages: {})",
            config.message,
            file.display(),
            known.join(", ")
        )
    })
}

/// How one field becomes a column.
#[derive(Debug, Clone)]
enum Conv {
    Int,
    Uint64,
    Float,
    Bool,
    Str,
    Bytes,
    Enum(prost_reflect::EnumDescriptor),
    Timestamp,
    Duration,
    Wrapper(Box<Conv>),
    Json,
    Message(Arc<MessagePlan>),
    /// A map field; the conversion of its values.
    MapOf(Box<Conv>),
}

#[derive(Debug, Clone)]
struct FieldPlan {
    field: FieldDescriptor,
    conv: Conv,
    presence: bool,
}

/// Columns and conversions of one message type.
#[derive(Debug)]
struct MessagePlan {
    schema: Arc<Schema>,
    fields: Vec<FieldPlan>,
    /// Field number to column.
    by_number: HashMap<u32, usize>,
    /// What a column holds when its field is absent.
    defaults: Vec<Value>,
}

fn plan_for(
    desc: &MessageDescriptor,
    cache: &mut HashMap<String, Arc<MessagePlan>>,
    depth: usize,
) -> Arc<MessagePlan> {
    if let Some(p) = cache.get(desc.full_name()) {
        return p.clone();
    }
    let mut columns = Vec::new();
    let mut fields = Vec::new();
    for field in desc.fields() {
        let (data_type, conv) = field_type(&field, cache, depth);
        let presence = field.supports_presence() || field.containing_oneof().is_some();
        let nullable = presence
            || matches!(
                conv,
                Conv::Message(_) | Conv::Wrapper(_) | Conv::Timestamp | Conv::Duration | Conv::Json
            );
        columns.push(Field {
            name: field.name().to_owned(),
            data_type,
            nullable,
        });
        fields.push(FieldPlan {
            field,
            conv,
            presence,
        });
    }
    let by_number = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.field.number(), i))
        .collect();
    let defaults = fields.iter().map(default_value).collect();
    let plan = Arc::new(MessagePlan {
        schema: Arc::new(Schema::new(columns)),
        fields,
        by_number,
        defaults,
    });
    cache.insert(desc.full_name().to_owned(), plan.clone());
    plan
}

fn scalar(
    kind: &Kind,
    cache: &mut HashMap<String, Arc<MessagePlan>>,
    depth: usize,
) -> (DataType, Conv) {
    match kind {
        Kind::Double | Kind::Float => (DataType::Float64, Conv::Float),
        Kind::Int32
        | Kind::Int64
        | Kind::Sint32
        | Kind::Sint64
        | Kind::Sfixed32
        | Kind::Sfixed64
        | Kind::Uint32
        | Kind::Fixed32 => (DataType::Int64, Conv::Int),
        Kind::Uint64 | Kind::Fixed64 => (
            DataType::Decimal {
                precision: 20,
                scale: 0,
            },
            Conv::Uint64,
        ),
        Kind::Bool => (DataType::Boolean, Conv::Bool),
        Kind::String => (DataType::String, Conv::Str),
        Kind::Bytes => (DataType::Bytes, Conv::Bytes),
        Kind::Enum(e) => (DataType::String, Conv::Enum(e.clone())),
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => (DataType::Timestamp, Conv::Timestamp),
            "google.protobuf.Duration" => (DataType::Int64, Conv::Duration),
            "google.protobuf.Struct" | "google.protobuf.Value" | "google.protobuf.ListValue" => {
                (DataType::Json, Conv::Json)
            }
            name if name.starts_with("google.protobuf.") && name.ends_with("Value") => {
                let inner = m.get_field_by_name("value").map(|f| f.kind());
                match inner {
                    Some(k) => {
                        let (t, c) = scalar(&k, cache, depth + 1);
                        (t, Conv::Wrapper(Box::new(c)))
                    }
                    None => (DataType::Json, Conv::Json),
                }
            }
            // Recursive messages past a depth become dynamic.
            _ if depth > 32 => (DataType::Json, Conv::Json),
            _ => {
                let plan = plan_for(m, cache, depth + 1);
                (DataType::Struct(plan.schema.clone()), Conv::Message(plan))
            }
        },
    }
}

fn field_type(
    field: &FieldDescriptor,
    cache: &mut HashMap<String, Arc<MessagePlan>>,
    depth: usize,
) -> (DataType, Conv) {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let (kt, _) = scalar(&entry.map_entry_key_field().kind(), cache, depth);
        let (vt, vc) = scalar(&entry.map_entry_value_field().kind(), cache, depth);
        return (
            DataType::Map(Box::new(kt), Box::new(vt)),
            Conv::MapOf(Box::new(vc)),
        );
    }
    let (t, c) = scalar(&field.kind(), cache, depth);
    if field.is_list() {
        (DataType::Array(Box::new(t)), c)
    } else {
        (t, c)
    }
}

/// The value of an absent field: null with presence, else the proto3 default.
fn default_value(f: &FieldPlan) -> Value {
    if f.presence {
        return Value::Null;
    }
    if f.field.is_list() {
        return Value::Array(Vec::new());
    }
    match &f.conv {
        Conv::MapOf(_) => Value::Map(Vec::new()),
        Conv::Int => Value::Int64(0),
        Conv::Uint64 => Value::Decimal(Decimal::new(0, 0)),
        Conv::Float => Value::Float64(0.0),
        Conv::Bool => Value::Boolean(false),
        Conv::Str => Value::String(String::new()),
        Conv::Bytes => Value::Bytes(Vec::new()),
        Conv::Enum(e) => match e.get_value(0) {
            Some(v) => Value::String(v.name().to_owned()),
            None => Value::String("0".to_owned()),
        },
        _ => Value::Null,
    }
}

/// Reads and writes one message type.
#[derive(Debug, Clone)]
pub struct ProtoCodec {
    desc: MessageDescriptor,
    plan: Arc<MessagePlan>,
}

impl ProtoCodec {
    /// A codec for the message type `desc`.
    pub fn new(desc: MessageDescriptor) -> Self {
        let plan = plan_for(&desc, &mut HashMap::new(), 0);
        ProtoCodec { desc, plan }
    }

    /// The records' schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.plan.schema
    }

    /// The message type.
    pub fn descriptor(&self) -> &MessageDescriptor {
        &self.desc
    }
}

fn read_message(
    plan: &MessagePlan,
    mut msg: DynamicMessage,
) -> std::result::Result<Vec<Value>, String> {
    let mut values: Vec<Option<Value>> = vec![None; plan.fields.len()];
    for (field, v) in msg.take_fields() {
        // Fields the plan does not know (extensions) are left out.
        let Some(&i) = plan.by_number.get(&field.number()) else {
            continue;
        };
        let f = &plan.fields[i];
        values[i] = Some(read_field(f, v).map_err(|e| format!("field `{}`: {e}", f.field.name()))?);
    }
    Ok(values
        .into_iter()
        .zip(&plan.defaults)
        .map(|(v, d)| v.unwrap_or_else(|| d.clone()))
        .collect())
}

fn read_field(f: &FieldPlan, v: Proto) -> std::result::Result<Value, String> {
    match (&f.conv, v) {
        (Conv::MapOf(value), Proto::Map(map)) => {
            let mut entries: Vec<(Value, Value)> = map
                .into_iter()
                .map(|(k, v)| Ok((map_key(k), read_value(value, v)?)))
                .collect::<std::result::Result<_, String>>()?;
            // Map order on the wire is unspecified: sort for stable records.
            entries.sort_by_cached_key(|(k, _)| k.to_string());
            Ok(Value::Map(entries))
        }
        (conv, Proto::List(items)) => Ok(Value::Array(
            items
                .into_iter()
                .map(|i| read_value(conv, i))
                .collect::<std::result::Result<_, _>>()?,
        )),
        (conv, v) => read_value(conv, v),
    }
}

fn map_key(k: MapKey) -> Value {
    match k {
        MapKey::Bool(b) => Value::Boolean(b),
        MapKey::I32(n) => Value::Int64(i64::from(n)),
        MapKey::I64(n) => Value::Int64(n),
        MapKey::U32(n) => Value::Int64(i64::from(n)),
        MapKey::U64(n) => Value::Decimal(Decimal::new(i128::from(n), 0)),
        MapKey::String(s) => Value::String(s),
    }
}

/// Seconds and nanos of a Timestamp or Duration, as microseconds.
fn micros_of(mut m: DynamicMessage) -> i64 {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for (field, v) in m.take_fields() {
        match (field.number(), v) {
            (1, Proto::I64(s)) => seconds = s,
            (2, Proto::I32(n)) => nanos = n,
            _ => {}
        }
    }
    seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(nanos) / 1000)
}

fn read_value(conv: &Conv, v: Proto) -> std::result::Result<Value, String> {
    Ok(match (conv, v) {
        (Conv::Int, Proto::I32(n)) => Value::Int64(i64::from(n)),
        (Conv::Int, Proto::I64(n)) => Value::Int64(n),
        (Conv::Int, Proto::U32(n)) => Value::Int64(i64::from(n)),
        (Conv::Uint64, Proto::U64(n)) => Value::Decimal(Decimal::new(i128::from(n), 0)),
        (Conv::Float, Proto::F32(n)) => Value::Float64(f64::from(n)),
        (Conv::Float, Proto::F64(n)) => Value::Float64(n),
        (Conv::Bool, Proto::Bool(b)) => Value::Boolean(b),
        (Conv::Str, Proto::String(s)) => Value::String(s),
        (Conv::Bytes, Proto::Bytes(b)) => Value::Bytes(Vec::from(b)),
        (Conv::Enum(e), Proto::EnumNumber(n)) => match e.get_value(n) {
            Some(v) => Value::String(v.name().to_owned()),
            None => Value::String(n.to_string()),
        },
        (Conv::Timestamp, Proto::Message(m)) => Value::Timestamp(micros_of(m)),
        (Conv::Duration, Proto::Message(m)) => Value::Int64(micros_of(m)),
        (Conv::Wrapper(inner), Proto::Message(mut m)) => match m.take_fields().next() {
            Some((_, v)) => read_value(inner, v)?,
            // A wrapper holding its default value writes no field.
            None => match inner.as_ref() {
                Conv::Int => Value::Int64(0),
                Conv::Uint64 => Value::Decimal(Decimal::new(0, 0)),
                Conv::Float => Value::Float64(0.0),
                Conv::Bool => Value::Boolean(false),
                Conv::Str => Value::String(String::new()),
                Conv::Bytes => Value::Bytes(Vec::new()),
                _ => Value::Null,
            },
        },
        (Conv::Json, Proto::Message(m)) => well_known_json(&m),
        (Conv::Message(plan), Proto::Message(m)) => Value::Struct(StructValue::new(
            plan.schema.clone(),
            read_message(plan, m)?,
        )),
        (_, other) => return Err(format!("unexpected {other:?}")),
    })
}

/// `google.protobuf.Struct`/`Value`/`ListValue` as a JSON-like value.
fn well_known_json(m: &DynamicMessage) -> Value {
    match m.descriptor().full_name() {
        "google.protobuf.Struct" => match m.get_field_by_name("fields").as_deref() {
            Some(Proto::Map(map)) => {
                let mut pairs: Vec<(String, Value)> = map
                    .iter()
                    .filter_map(|(k, v)| match (k, v) {
                        (MapKey::String(k), Proto::Message(v)) => {
                            Some((k.clone(), well_known_json(v)))
                        }
                        _ => None,
                    })
                    .collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Struct(StructValue::from_pairs(pairs))
            }
            _ => Value::Null,
        },
        "google.protobuf.ListValue" => match m.get_field_by_name("values").as_deref() {
            Some(Proto::List(items)) => Value::Array(
                items
                    .iter()
                    .map(|v| {
                        if let Proto::Message(v) = v {
                            well_known_json(v)
                        } else {
                            Value::Null
                        }
                    })
                    .collect(),
            ),
            _ => Value::Array(Vec::new()),
        },
        _ => {
            // google.protobuf.Value: whichever kind is set.
            for field in m.descriptor().fields() {
                if !m.has_field(&field) {
                    continue;
                }
                return match (field.name(), m.get_field(&field).as_ref()) {
                    ("number_value", Proto::F64(n)) => Value::Float64(*n),
                    ("string_value", Proto::String(s)) => Value::String(s.clone()),
                    ("bool_value", Proto::Bool(b)) => Value::Boolean(*b),
                    ("struct_value" | "list_value", Proto::Message(inner)) => {
                        well_known_json(inner)
                    }
                    _ => Value::Null,
                };
            }
            Value::Null
        }
    }
}

/// Decodes protobuf payloads (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct ProtobufDecoder {
    codec: ProtoCodec,
    timestamp: Option<TimestampField>,
}

impl ProtobufDecoder {
    /// A decoder for `codec`'s message type.
    pub fn new(codec: ProtoCodec) -> Self {
        ProtobufDecoder {
            codec,
            timestamp: None,
        }
    }

    /// Sets each record's event time from `field`.
    pub fn with_timestamp(mut self, field: TimestampField) -> Self {
        self.timestamp = Some(field);
        self
    }

    /// The records' schema.
    pub fn schema(&self) -> &Arc<Schema> {
        self.codec.schema()
    }
}

impl Decoder for ProtobufDecoder {
    fn format(&self) -> &'static str {
        "protobuf"
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        let msg = DynamicMessage::decode(self.codec.desc.clone(), payload).map_err(|e| {
            Error::decode(
                "protobuf",
                format!("message {}", self.codec.desc.full_name()),
                e.to_string(),
            )
        })?;
        let position = || format!("message {}", self.codec.desc.full_name());
        let values = read_message(&self.codec.plan, msg)
            .map_err(|reason| Error::decode("protobuf", position(), reason))?;
        let mut record = Record::new(self.codec.plan.schema.clone(), values);
        if let Some(ts) = &self.timestamp {
            record.timestamp = ts
                .micros(&record)
                .map_err(|reason| Error::decode("protobuf", position(), reason))?;
        }
        out.push(record);
        Ok(Progress::Done)
    }
}

/// Encodes records as protobuf messages (see the [module docs](self)).
/// Columns are matched to fields by name; other columns are ignored, and a
/// null leaves the field unset.
#[derive(Debug, Clone)]
pub struct ProtobufEncoder {
    codec: ProtoCodec,
}

impl ProtobufEncoder {
    /// An encoder for `codec`'s message type.
    pub fn new(codec: ProtoCodec) -> Self {
        ProtobufEncoder { codec }
    }
}

fn write_message<'v>(
    desc: &MessageDescriptor,
    lookup: impl Fn(&str) -> Option<&'v Value>,
) -> std::result::Result<DynamicMessage, String> {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        let Some(value) = lookup(field.name()) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let proto =
            write_field(&field, value).map_err(|e| format!("field `{}`: {e}", field.name()))?;
        msg.try_set_field(&field, proto)
            .map_err(|e| format!("field `{}`: {e}", field.name()))?;
    }
    Ok(msg)
}

fn write_field(field: &FieldDescriptor, value: &Value) -> std::result::Result<Proto, String> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err("a map without an entry type".into());
        };
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let pairs: Vec<(Value, &Value)> = match value {
            Value::Map(entries) => entries.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Struct(s) => s.iter().map(|(k, v)| (Value::from(k), v)).collect(),
            other => return Err(format!("expected a map, got {}", DataType::of(other))),
        };
        let mut map = HashMap::new();
        for (k, v) in pairs {
            let key = match (write_scalar(&kf.kind(), &k)?, kf.kind()) {
                (Proto::Bool(b), _) => MapKey::Bool(b),
                (Proto::I32(n), _) => MapKey::I32(n),
                (Proto::I64(n), _) => MapKey::I64(n),
                (Proto::U32(n), _) => MapKey::U32(n),
                (Proto::U64(n), _) => MapKey::U64(n),
                (Proto::String(s), _) => MapKey::String(s),
                (other, _) => return Err(format!("invalid map key {other:?}")),
            };
            map.insert(key, write_scalar(&vf.kind(), v)?);
        }
        return Ok(Proto::Map(map));
    }
    if field.is_list() {
        let Value::Array(items) = value else {
            return Err(format!("expected an array, got {}", DataType::of(value)));
        };
        return Ok(Proto::List(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| write_scalar(&field.kind(), v))
                .collect::<std::result::Result<_, _>>()?,
        ));
    }
    write_scalar(&field.kind(), value)
}

fn write_scalar(kind: &Kind, value: &Value) -> std::result::Result<Proto, String> {
    let mismatch = || {
        format!(
            "cannot write {} as protobuf {}",
            DataType::of(value),
            kind_name(kind)
        )
    };
    let int = || -> std::result::Result<i128, String> {
        match value {
            Value::Int64(n) => Ok(i128::from(*n)),
            Value::Decimal(d) => d.rescale(0).map(|d| d.unscaled).ok_or_else(mismatch),
            Value::String(s) => s.trim().parse().map_err(|_| mismatch()),
            _ => Err(mismatch()),
        }
    };
    let range = |n: i128| format!("{n} is out of range for protobuf {}", kind_name(kind));
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let n = int()?;
            Proto::I32(i32::try_from(n).map_err(|_| range(n))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            let n = int()?;
            Proto::I64(i64::try_from(n).map_err(|_| range(n))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            let n = int()?;
            Proto::U32(u32::try_from(n).map_err(|_| range(n))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let n = int()?;
            Proto::U64(u64::try_from(n).map_err(|_| range(n))?)
        }
        Kind::Float => Proto::F32(value.as_f64().ok_or_else(mismatch)? as f32),
        Kind::Double => Proto::F64(value.as_f64().ok_or_else(mismatch)?),
        Kind::Bool => Proto::Bool(value.as_bool().ok_or_else(mismatch)?),
        Kind::String => match value {
            Value::String(s) => Proto::String(s.clone()),
            Value::Struct(_) | Value::Array(_) | Value::Map(_) | Value::Bytes(_) => {
                return Err(mismatch());
            }
            other => Proto::String(other.to_string()),
        },
        Kind::Bytes => match value {
            Value::Bytes(b) => Proto::Bytes(b.clone().into()),
            Value::String(s) => Proto::Bytes(s.clone().into_bytes().into()),
            _ => return Err(mismatch()),
        },
        Kind::Enum(e) => match value {
            Value::String(s) => match e.get_value_by_name(s) {
                Some(v) => Proto::EnumNumber(v.number()),
                None => Proto::EnumNumber(s.parse().map_err(|_| {
                    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                    format!(
                        "`{s}` is not a value of enum {} ({})",
                        e.full_name(),
                        names.join(", ")
                    )
                })?),
            },
            Value::Int64(n) => {
                Proto::EnumNumber(i32::try_from(*n).map_err(|_| range(i128::from(*n)))?)
            }
            _ => return Err(mismatch()),
        },
        Kind::Message(m) => match (m.full_name(), value) {
            (
                "google.protobuf.Timestamp" | "google.protobuf.Duration",
                Value::Timestamp(t) | Value::Int64(t),
            ) => {
                let mut msg = DynamicMessage::new(m.clone());
                msg.set_field_by_name("seconds", Proto::I64(t.div_euclid(1_000_000)));
                msg.set_field_by_name("nanos", Proto::I32((t.rem_euclid(1_000_000) * 1000) as i32));
                Proto::Message(msg)
            }
            (name, v)
                if name.starts_with("google.protobuf.")
                    && name.ends_with("Value")
                    && m.get_field_by_name("value").is_some()
                    && !matches!(v, Value::Struct(_)) =>
            {
                let inner = m
                    .get_field_by_name("value")
                    .map(|f| f.kind())
                    .ok_or_else(mismatch)?;
                let mut msg = DynamicMessage::new(m.clone());
                msg.set_field_by_name("value", write_scalar(&inner, v)?);
                Proto::Message(msg)
            }
            (_, Value::Struct(s)) => Proto::Message(write_message(m, |name| s.get(name))?),
            (_, Value::Map(entries)) => Proto::Message(write_message(m, |name| {
                entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(name))
                    .map(|(_, v)| v)
            })?),
            _ => return Err(mismatch()),
        },
    })
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
    }
}

impl Encoder for ProtobufEncoder {
    fn format(&self) -> &'static str {
        "protobuf"
    }

    fn content_type(&self) -> &'static str {
        "application/x-protobuf"
    }

    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        let msg = write_message(&self.codec.desc, |name| record.get(name))
            .map_err(|reason| Error::encode("protobuf", record_position(record), reason))?;
        msg.encode(out)
            .map_err(|e| Error::encode("protobuf", record_position(record), e.to_string()))?;
        Ok(Progress::Done)
    }
}
