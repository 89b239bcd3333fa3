//! An Avro schema compiled for reading and writing records directly.
//!
//! `apache_avro::from_avro_datum` builds avro's own `Value` tree, whose
//! records carry a `String` name per field per datum; converting that tree
//! again into records would cost twice. The plan walks the writer schema
//! once (named types resolved, logical types mapped, one `Arc<Schema>` per
//! record type) and then reads the binary encoding straight into
//! [`Value`]s. Parsing, name resolution and canonical forms stay with
//! `apache-avro`.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::{InnerDecimalSchema, Schema as Avro, UuidSchema};

use crate::schema::{DataType, Field, Schema};
use crate::value::{Decimal, StructValue, Value};

/// Deepest nesting a datum may have (recursive schemas could otherwise
/// exhaust the stack on hostile input).
const MAX_DEPTH: usize = 128;

/// Most items a block of zero-byte items (nulls, empty records) may declare.
const MAX_EMPTY_ITEMS: i64 = 1 << 16;

#[derive(Debug, Clone)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Date,
    TimeMillis,
    TimeMicros,
    TimestampMillis,
    TimestampMicros,
    TimestampNanos,
    Decimal {
        scale: u8,
        fixed: Option<usize>,
    },
    Uuid {
        fixed: bool,
    },
    Fixed(usize),
    Enum(Arc<[String]>),
    Array(usize),
    Map(usize),
    Union {
        branches: Vec<usize>,
        null: Option<usize>,
    },
    Record(Box<RecordNode>),
    /// A named type used before its definition is complete (recursion).
    Ref(String),
}

#[derive(Debug, Clone)]
struct RecordNode {
    name: String,
    schema: Arc<Schema>,
    fields: Vec<RecordFieldNode>,
}

#[derive(Debug, Clone)]
struct RecordFieldNode {
    node: usize,
    default: Option<serde_json::Value>,
}

/// A compiled Avro schema.
#[derive(Debug, Clone)]
pub struct Plan {
    nodes: Vec<Node>,
    names: HashMap<String, usize>,
    min_size: Vec<bool>,
    root: usize,
    /// The records' schema (a single `value` column when the top-level
    /// type is not a record).
    schema: Arc<Schema>,
    avro: Avro,
}

/// Why a datum could not be read or written: the byte offset (reading) and
/// the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// Byte offset in the datum where reading failed.
    pub offset: usize,
    /// Dotted field path, innermost last.
    pub path: Vec<String>,
    /// What went wrong.
    pub reason: String,
}

impl PlanError {
    fn new(offset: usize, reason: impl Into<String>) -> Self {
        PlanError {
            offset,
            path: Vec::new(),
            reason: reason.into(),
        }
    }

    fn in_field(mut self, name: &str) -> Self {
        self.path.push(name.to_owned());
        self
    }

    /// `field `a.b`: reason`, or the reason alone at the top.
    pub fn message(&self) -> String {
        if self.path.is_empty() {
            self.reason.clone()
        } else {
            let path: Vec<&str> = self.path.iter().rev().map(String::as_str).collect();
            format!("field `{}`: {}", path.join("."), self.reason)
        }
    }
}

impl Plan {
    /// Compiles a parsed schema (named types defined in `references` may be used).
    pub fn new(avro: &Avro, references: &[Avro]) -> Result<Plan, String> {
        let mut compiler = Compiler {
            nodes: Vec::new(),
            names: HashMap::new(),
            building: Vec::new(),
            defined: HashMap::new(),
        };
        for r in references {
            compiler.collect_definitions(r, None);
        }
        compiler.collect_definitions(avro, None);
        let root = compiler.compile(avro, None)?;
        let schema = match &compiler.nodes[root] {
            Node::Record(r) => r.schema.clone(),
            _ => Arc::new(Schema::new(vec![Field::new(
                "value",
                compiler.data_type(root, &mut Vec::new()),
            )])),
        };
        let min_size = (0..compiler.nodes.len())
            .map(|i| compiler.always_empty(i, &mut Vec::new()))
            .collect();
        Ok(Plan {
            nodes: compiler.nodes,
            names: compiler.names,
            min_size,
            root,
            schema,
            avro: avro.clone(),
        })
    }

    /// Parses and compiles schema JSON.
    pub fn parse(text: &str) -> Result<Plan, String> {
        let avro = Avro::parse_str(text).map_err(|e| format!("invalid Avro schema: {e}"))?;
        Plan::new(&avro, &[])
    }

    /// The records' schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The Avro schema the plan was compiled from.
    pub fn avro(&self) -> &Avro {
        &self.avro
    }

    /// Whether the top-level type is a record (else records have one `value` column).
    pub fn is_record(&self) -> bool {
        matches!(self.nodes[self.root], Node::Record(_))
    }

    /// Reads one datum into the values of one record; all bytes must be used.
    pub fn read(&self, data: &[u8]) -> Result<Vec<Value>, PlanError> {
        let mut reader = Reader { data, pos: 0 };
        let values = match &self.nodes[self.root] {
            Node::Record(r) => self.read_fields(r, &mut reader, 0)?,
            _ => vec![self.read_node(self.root, &mut reader, 0)?],
        };
        if reader.pos != data.len() {
            return Err(PlanError::new(
                reader.pos,
                format!("{} bytes left after the datum", data.len() - reader.pos),
            ));
        }
        Ok(values)
    }

    /// Reads one datum as a single value (a record becomes a struct).
    pub fn read_value(&self, data: &[u8]) -> Result<Value, PlanError> {
        let values = self.read(data)?;
        Ok(if self.is_record() {
            Value::Struct(StructValue::new(self.schema.clone(), values))
        } else {
            values.into_iter().next().unwrap_or(Value::Null)
        })
    }

    fn read_fields(
        &self,
        record: &RecordNode,
        r: &mut Reader<'_>,
        depth: usize,
    ) -> Result<Vec<Value>, PlanError> {
        let mut values = Vec::with_capacity(record.fields.len());
        for (i, field) in record.fields.iter().enumerate() {
            let v = self
                .read_node(field.node, r, depth + 1)
                .map_err(|e| e.in_field(&record.schema.field(i).name))?;
            values.push(v);
        }
        Ok(values)
    }

    fn resolve(&self, index: usize) -> usize {
        match &self.nodes[index] {
            Node::Ref(name) => self.names.get(name).copied().unwrap_or(index),
            _ => index,
        }
    }

    fn read_node(
        &self,
        index: usize,
        r: &mut Reader<'_>,
        depth: usize,
    ) -> Result<Value, PlanError> {
        if depth > MAX_DEPTH {
            return Err(PlanError::new(
                r.pos,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(match &self.nodes[index] {
            Node::Null => Value::Null,
            Node::Boolean => match r.byte()? {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                b => {
                    return Err(PlanError::new(
                        r.pos - 1,
                        format!("invalid boolean byte {b}"),
                    ));
                }
            },
            Node::Int | Node::TimeMillis => Value::Int64(i64::from(r.int()?)),
            Node::Long | Node::TimeMicros => Value::Int64(r.long()?),
            Node::Float => Value::Float64(f64::from(f32::from_le_bytes(r.array::<4>()?))),
            Node::Double => Value::Float64(f64::from_le_bytes(r.array::<8>()?)),
            Node::Bytes => Value::Bytes(r.bytes()?.to_vec()),
            Node::String => Value::String(r.string()?.to_owned()),
            Node::Date => Value::Date(r.int()?),
            Node::TimestampMillis => Value::Timestamp(r.long()?.saturating_mul(1000)),
            Node::TimestampMicros => Value::Timestamp(r.long()?),
            Node::TimestampNanos => Value::Timestamp(r.long()?.div_euclid(1000)),
            Node::Decimal { scale, fixed } => {
                let start = r.pos;
                let raw = match fixed {
                    Some(n) => r.take(*n)?,
                    None => r.bytes()?,
                };
                Value::Decimal(Decimal::new(
                    twos_complement(raw).ok_or_else(|| {
                        PlanError::new(
                            start,
                            format!("decimal of {} bytes does not fit 128 bits", raw.len()),
                        )
                    })?,
                    *scale,
                ))
            }
            Node::Uuid { fixed: true } => {
                let bytes = r.array::<16>()?;
                Value::String(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
            }
            Node::Uuid { fixed: false } => {
                let start = r.pos;
                let text = r.string()?;
                // Canonical lower-case form, as for `fixed` UUIDs.
                let id = uuid::Uuid::parse_str(text)
                    .map_err(|e| PlanError::new(start, format!("`{text}` is not a UUID: {e}")))?;
                Value::String(id.hyphenated().to_string())
            }
            Node::Fixed(n) => Value::Bytes(r.take(*n)?.to_vec()),
            Node::Enum(symbols) => {
                let start = r.pos;
                let i = r.int()?;
                let symbol = usize::try_from(i)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| {
                        PlanError::new(
                            start,
                            format!("enum index {i} is out of range (0..{})", symbols.len()),
                        )
                    })?;
                Value::String(symbol.clone())
            }
            Node::Array(item) => {
                let item = *item;
                let mut items = Vec::new();
                self.read_blocks(r, item, |plan, r| {
                    items.push(plan.read_node(item, r, depth + 1)?);
                    Ok(())
                })?;
                Value::Array(items)
            }
            Node::Map(value) => {
                let value = *value;
                let mut entries = Vec::new();
                self.read_blocks(r, value, |plan, r| {
                    let key = r.string()?.to_owned();
                    let v = plan
                        .read_node(value, r, depth + 1)
                        .map_err(|e| e.in_field(&key))?;
                    entries.push((Value::String(key), v));
                    Ok(())
                })?;
                Value::Map(entries)
            }
            Node::Union { branches, .. } => {
                let start = r.pos;
                let i = r.long()?;
                let branch = usize::try_from(i)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| {
                        PlanError::new(
                            start,
                            format!("union branch {i} is out of range (0..{})", branches.len()),
                        )
                    })?;
                self.read_node(*branch, r, depth + 1)?
            }
            Node::Record(record) => Value::Struct(StructValue::new(
                record.schema.clone(),
                self.read_fields(record, r, depth)?,
            )),
            Node::Ref(_) => {
                let target = self.resolve(index);
                if target == index {
                    return Err(PlanError::new(r.pos, "reference to an undefined Avro type"));
                }
                self.read_node(target, r, depth + 1)?
            }
        })
    }

    /// Array and map blocks: a count (negative: followed by a byte size),
    /// then items, until a zero count.
    fn read_blocks(
        &self,
        r: &mut Reader<'_>,
        item: usize,
        mut each: impl FnMut(&Plan, &mut Reader<'_>) -> Result<(), PlanError>,
    ) -> Result<(), PlanError> {
        loop {
            let start = r.pos;
            let mut count = r.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                count = count
                    .checked_neg()
                    .ok_or_else(|| PlanError::new(start, "invalid block count"))?;
                let _size = r.long()?;
            }
            let remaining = (r.data.len() - r.pos) as i64;
            let empty = self.min_size[self.resolve(item)];
            if (!empty && count > remaining) || (empty && count > MAX_EMPTY_ITEMS) {
                return Err(PlanError::new(
                    start,
                    format!("block of {count} items is longer than the {remaining} bytes left"),
                ));
            }
            for _ in 0..count {
                each(self, r)?;
            }
        }
    }

    /// Writes the record's values (by name, in the plan's field order) as one datum.
    pub fn write_record(
        &self,
        names: &Schema,
        values: &[Value],
        out: &mut Vec<u8>,
    ) -> Result<(), PlanError> {
        match &self.nodes[self.root] {
            Node::Record(record) => {
                self.write_fields(record, |name| names.index_of(name).map(|i| &values[i]), out)
            }
            _ => {
                let v = names
                    .index_of("value")
                    .map(|i| &values[i])
                    .or(values.first())
                    .unwrap_or(&Value::Null);
                self.write_node(self.root, v, out, 0)
            }
        }
    }

    fn write_fields<'v>(
        &self,
        record: &RecordNode,
        lookup: impl Fn(&str) -> Option<&'v Value>,
        out: &mut Vec<u8>,
    ) -> Result<(), PlanError> {
        for (i, field) in record.fields.iter().enumerate() {
            let name = &record.schema.field(i).name;
            let owned;
            let value = match lookup(name) {
                Some(v) => v,
                None => match &field.default {
                    Some(default) => {
                        owned = Value::from_json(default.clone());
                        &owned
                    }
                    None => &Value::Null,
                },
            };
            self.write_node(field.node, value, out, 0).map_err(|e| {
                if lookup(name).is_none() && value.is_null() {
                    PlanError::new(
                        0,
                        "missing, and the Avro schema gives it no default and no null",
                    )
                    .in_field(name)
                } else {
                    e.in_field(name)
                }
            })?;
        }
        Ok(())
    }

    fn write_node(
        &self,
        index: usize,
        value: &Value,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), PlanError> {
        if depth > MAX_DEPTH {
            return Err(PlanError::new(
                0,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let mismatch = |want: &str| {
            PlanError::new(
                0,
                format!("cannot write {} as Avro {want}", DataType::of(value)),
            )
        };
        match (&self.nodes[index], value) {
            (Node::Null, Value::Null) => {}
            (Node::Boolean, Value::Boolean(b)) => out.push(u8::from(*b)),
            (Node::Int | Node::TimeMillis | Node::Date, Value::Int64(n)) => {
                let n = i32::try_from(*n)
                    .map_err(|_| PlanError::new(0, format!("{n} does not fit an Avro int")))?;
                write_long(out, i64::from(n));
            }
            (Node::Date, Value::Date(d)) => write_long(out, i64::from(*d)),
            (Node::Date, Value::Timestamp(t)) => write_long(out, t.div_euclid(86_400_000_000)),
            (Node::Long | Node::TimeMicros, Value::Int64(n)) => write_long(out, *n),
            (Node::Long | Node::TimestampMicros, Value::Timestamp(t)) => write_long(out, *t),
            (Node::TimestampMillis, Value::Timestamp(t)) => write_long(out, t.div_euclid(1000)),
            (Node::TimestampNanos, Value::Timestamp(t)) => write_long(out, t.saturating_mul(1000)),
            (
                Node::TimestampMillis | Node::TimestampMicros | Node::TimestampNanos,
                Value::Int64(n),
            ) => write_long(out, *n),
            (Node::Float, v @ (Value::Float64(_) | Value::Int64(_) | Value::Decimal(_))) => {
                out.extend_from_slice(&(v.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
            }
            (Node::Double, v @ (Value::Float64(_) | Value::Int64(_) | Value::Decimal(_))) => {
                out.extend_from_slice(&v.as_f64().unwrap_or(0.0).to_le_bytes())
            }
            (Node::Bytes, Value::Bytes(b)) => write_bytes(out, b),
            (Node::Bytes, Value::String(s)) => write_bytes(out, s.as_bytes()),
            (Node::String, Value::String(s)) => write_bytes(out, s.as_bytes()),
            (Node::String, v @ (Value::Array(_) | Value::Struct(_) | Value::Map(_))) => {
                write_bytes(out, v.to_string().as_bytes())
            }
            (Node::String, v) if !v.is_null() => write_bytes(out, v.to_string().as_bytes()),
            (
                Node::Decimal { scale, fixed },
                v @ (Value::Decimal(_) | Value::Int64(_) | Value::String(_)),
            ) => {
                let d = match v {
                    Value::Decimal(d) => *d,
                    Value::Int64(n) => Decimal::new(i128::from(*n), 0),
                    other => other
                        .to_string()
                        .parse()
                        .map_err(|e: String| PlanError::new(0, e))?,
                };
                let d = d
                    .rescale(*scale)
                    .ok_or_else(|| PlanError::new(0, format!("{d} does not fit scale {scale}")))?;
                let bytes = d.unscaled.to_be_bytes();
                match fixed {
                    Some(n) => {
                        let n = *n;
                        if n > 16 {
                            let pad = if d.unscaled < 0 { 0xff } else { 0 };
                            out.extend(std::iter::repeat_n(pad, n - 16));
                            out.extend_from_slice(&bytes);
                        } else {
                            let trimmed = &bytes[16 - n..];
                            if twos_complement(trimmed) != Some(d.unscaled) {
                                return Err(PlanError::new(
                                    0,
                                    format!("{d} does not fit fixed({n})"),
                                ));
                            }
                            out.extend_from_slice(trimmed);
                        }
                    }
                    None => write_bytes(out, minimal_twos_complement(&bytes)),
                }
            }
            (Node::Uuid { fixed }, Value::String(s)) => {
                let id = uuid::Uuid::parse_str(s)
                    .map_err(|e| PlanError::new(0, format!("`{s}` is not a UUID: {e}")))?;
                if *fixed {
                    out.extend_from_slice(id.as_bytes());
                } else {
                    write_bytes(out, id.hyphenated().to_string().as_bytes());
                }
            }
            (Node::Fixed(n), Value::Bytes(b)) => {
                if b.len() != *n {
                    return Err(PlanError::new(
                        0,
                        format!("{} bytes for a fixed({n})", b.len()),
                    ));
                }
                out.extend_from_slice(b);
            }
            (Node::Enum(symbols), Value::String(s)) => {
                let i = symbols.iter().position(|x| x == s).ok_or_else(|| {
                    PlanError::new(
                        0,
                        format!(
                            "`{s}` is not one of the enum symbols {}",
                            symbols.join(", ")
                        ),
                    )
                })?;
                write_long(out, i as i64);
            }
            (Node::Array(item), Value::Array(items)) => {
                if !items.is_empty() {
                    write_long(out, items.len() as i64);
                    for (i, v) in items.iter().enumerate() {
                        self.write_node(*item, v, out, depth + 1)
                            .map_err(|e| e.in_field(&i.to_string()))?;
                    }
                }
                write_long(out, 0);
            }
            (Node::Map(value_node), Value::Map(entries)) => {
                if !entries.is_empty() {
                    write_long(out, entries.len() as i64);
                    for (k, v) in entries {
                        let key = match k {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        write_bytes(out, key.as_bytes());
                        self.write_node(*value_node, v, out, depth + 1)
                            .map_err(|e| e.in_field(&key))?;
                    }
                }
                write_long(out, 0);
            }
            (Node::Map(value_node), Value::Struct(s)) => {
                if !s.values().is_empty() {
                    write_long(out, s.values().len() as i64);
                    for (k, v) in s.iter() {
                        write_bytes(out, k.as_bytes());
                        self.write_node(*value_node, v, out, depth + 1)
                            .map_err(|e| e.in_field(k))?;
                    }
                }
                write_long(out, 0);
            }
            (Node::Record(record), Value::Struct(s)) => {
                self.write_fields(record, |name| s.get(name), out)?;
            }
            (Node::Record(record), Value::Map(entries)) => {
                self.write_fields(
                    record,
                    |name| {
                        entries
                            .iter()
                            .find(|(k, _)| k.as_str() == Some(name))
                            .map(|(_, v)| v)
                    },
                    out,
                )?;
            }
            (Node::Union { branches, null }, v) => {
                let branch = match (v, null) {
                    (Value::Null, Some(n)) => Some(*n),
                    (Value::Null, None) => None,
                    _ => branches
                        .iter()
                        .position(|b| self.accepts(*b, v))
                        .or_else(|| {
                            branches
                                .iter()
                                .position(|b| !matches!(self.nodes[self.resolve(*b)], Node::Null))
                        }),
                };
                let branch = branch.ok_or_else(|| mismatch("union without null"))?;
                write_long(out, branch as i64);
                self.write_node(branches[branch], v, out, depth + 1)?;
            }
            (Node::Ref(_), v) => {
                let target = self.resolve(index);
                if target == index {
                    return Err(PlanError::new(0, "reference to an undefined Avro type"));
                }
                self.write_node(target, v, out, depth + 1)?;
            }
            (node, Value::Null) => {
                return Err(PlanError::new(
                    0,
                    format!("null for the non-nullable Avro {}", node_name(node)),
                ));
            }
            (node, _) => return Err(mismatch(node_name(node))),
        }
        Ok(())
    }

    /// Whether a union branch is the natural home of a value.
    fn accepts(&self, index: usize, v: &Value) -> bool {
        matches!(
            (&self.nodes[self.resolve(index)], v),
            (Node::Boolean, Value::Boolean(_))
                | (
                    Node::Int | Node::Long | Node::TimeMillis | Node::TimeMicros,
                    Value::Int64(_)
                )
                | (Node::Float | Node::Double, Value::Float64(_))
                | (Node::Bytes | Node::Fixed(_), Value::Bytes(_))
                | (
                    Node::String | Node::Enum(_) | Node::Uuid { .. },
                    Value::String(_)
                )
                | (Node::Date, Value::Date(_))
                | (
                    Node::TimestampMillis | Node::TimestampMicros | Node::TimestampNanos,
                    Value::Timestamp(_)
                )
                | (Node::Decimal { .. }, Value::Decimal(_))
                | (Node::Array(_), Value::Array(_))
                | (Node::Map(_), Value::Map(_))
                | (Node::Record(_), Value::Struct(_))
        )
    }
}

fn node_name(node: &Node) -> &'static str {
    match node {
        Node::Null => "null",
        Node::Boolean => "boolean",
        Node::Int => "int",
        Node::Long => "long",
        Node::Float => "float",
        Node::Double => "double",
        Node::Bytes => "bytes",
        Node::String => "string",
        Node::Date => "date",
        Node::TimeMillis => "time-millis",
        Node::TimeMicros => "time-micros",
        Node::TimestampMillis => "timestamp-millis",
        Node::TimestampMicros => "timestamp-micros",
        Node::TimestampNanos => "timestamp-nanos",
        Node::Decimal { .. } => "decimal",
        Node::Uuid { .. } => "uuid",
        Node::Fixed(_) => "fixed",
        Node::Enum(_) => "enum",
        Node::Array(_) => "array",
        Node::Map(_) => "map",
        Node::Union { .. } => "union",
        Node::Record(_) => "record",
        Node::Ref(_) => "named type",
    }
}

/// A big-endian two's-complement integer of up to 16 bytes.
fn twos_complement(raw: &[u8]) -> Option<i128> {
    if raw.is_empty() {
        return Some(0);
    }
    let negative = raw[0] & 0x80 != 0;
    let skip = raw.len().saturating_sub(16);
    if raw[..skip]
        .iter()
        .any(|&b| b != if negative { 0xff } else { 0 })
    {
        return None;
    }
    let mut buf = if negative { [0xff; 16] } else { [0; 16] };
    let tail = &raw[skip..];
    buf[16 - tail.len()..].copy_from_slice(tail);
    let v = i128::from_be_bytes(buf);
    // A long run of sign bytes must keep the sign it claims.
    (skip == 0 || (v < 0) == negative).then_some(v)
}

fn minimal_twos_complement(bytes: &[u8; 16]) -> &[u8] {
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    &bytes[start..]
}

/// Appends an Avro `long` (zigzag varint).
pub fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn truncated(&self, want: &str) -> PlanError {
        PlanError::new(self.pos, format!("truncated datum: expected {want}"))
    }

    fn byte(&mut self) -> Result<u8, PlanError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.truncated("a byte"))?;
        self.pos += 1;
        Ok(b)
    }

    fn long(&mut self) -> Result<i64, PlanError> {
        let start = self.pos;
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self
                .data
                .get(self.pos)
                .ok_or_else(|| self.truncated("a varint"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(PlanError::new(start, "varint is longer than 64 bits"));
            }
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    fn int(&mut self) -> Result<i32, PlanError> {
        let start = self.pos;
        let n = self.long()?;
        i32::try_from(n).map_err(|_| PlanError::new(start, format!("{n} does not fit an Avro int")))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PlanError> {
        if self.data.len() - self.pos < n {
            return Err(self.truncated(&format!("{n} bytes")));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PlanError> {
        let s = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn bytes(&mut self) -> Result<&'a [u8], PlanError> {
        let start = self.pos;
        let len = self.long()?;
        let len = usize::try_from(len)
            .map_err(|_| PlanError::new(start, format!("negative length {len}")))?;
        self.take(len)
    }

    fn string(&mut self) -> Result<&'a str, PlanError> {
        let start = self.pos;
        let raw = self.bytes()?;
        std::str::from_utf8(raw)
            .map_err(|e| PlanError::new(start, format!("string is not valid UTF-8: {e}")))
    }
}

struct Compiler<'s> {
    nodes: Vec<Node>,
    names: HashMap<String, usize>,
    /// Named types being compiled (for recursion).
    building: Vec<String>,
    defined: HashMap<String, &'s Avro>,
}

impl<'s> Compiler<'s> {
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Named types anywhere in the schema, so references resolve whatever the order.
    fn collect_definitions(&mut self, avro: &'s Avro, _ns: Option<&str>) {
        match avro {
            Avro::Record(r) => {
                self.defined.insert(r.name.fullname(None), avro);
                for f in &r.fields {
                    self.collect_definitions(&f.schema, None);
                }
            }
            Avro::Enum(e) => {
                self.defined.insert(e.name.fullname(None), avro);
            }
            Avro::Fixed(f) | Avro::Duration(f) => {
                self.defined.insert(f.name.fullname(None), avro);
            }
            Avro::Decimal(d) => {
                if let InnerDecimalSchema::Fixed(f) = &d.inner {
                    self.defined.insert(f.name.fullname(None), avro);
                }
            }
            Avro::Uuid(UuidSchema::Fixed(f)) => {
                self.defined.insert(f.name.fullname(None), avro);
            }
            Avro::Array(a) => self.collect_definitions(&a.items, None),
            Avro::Map(m) => self.collect_definitions(&m.types, None),
            Avro::Union(u) => {
                for v in u.variants() {
                    self.collect_definitions(v, None);
                }
            }
            _ => {}
        }
    }

    fn compile(&mut self, avro: &'s Avro, _ns: Option<&str>) -> Result<usize, String> {
        Ok(match avro {
            Avro::Null => self.push(Node::Null),
            Avro::Boolean => self.push(Node::Boolean),
            Avro::Int => self.push(Node::Int),
            Avro::Long => self.push(Node::Long),
            Avro::Float => self.push(Node::Float),
            Avro::Double => self.push(Node::Double),
            Avro::Bytes => self.push(Node::Bytes),
            Avro::String => self.push(Node::String),
            Avro::Date => self.push(Node::Date),
            Avro::TimeMillis => self.push(Node::TimeMillis),
            Avro::TimeMicros => self.push(Node::TimeMicros),
            Avro::TimestampMillis | Avro::LocalTimestampMillis => self.push(Node::TimestampMillis),
            Avro::TimestampMicros | Avro::LocalTimestampMicros => self.push(Node::TimestampMicros),
            Avro::TimestampNanos | Avro::LocalTimestampNanos => self.push(Node::TimestampNanos),
            Avro::Decimal(d) => {
                if d.precision > 38 {
                    return Err(format!(
                        "decimal precision {} is above the supported 38 digits",
                        d.precision
                    ));
                }
                let scale = u8::try_from(d.scale)
                    .map_err(|_| format!("decimal scale {} is too large", d.scale))?;
                let fixed = match &d.inner {
                    InnerDecimalSchema::Bytes => None,
                    InnerDecimalSchema::Fixed(f) => Some(f.size),
                };
                self.push(Node::Decimal { scale, fixed })
            }
            Avro::BigDecimal => return Err("logical type big-decimal is not supported".into()),
            Avro::Uuid(UuidSchema::String) => self.push(Node::Uuid { fixed: false }),
            Avro::Uuid(UuidSchema::Fixed(_) | UuidSchema::Bytes) => {
                self.push(Node::Uuid { fixed: true })
            }
            Avro::Fixed(f) | Avro::Duration(f) => self.push(Node::Fixed(f.size)),
            Avro::Enum(e) => self.push(Node::Enum(e.symbols.clone().into())),
            Avro::Array(a) => {
                let item = self.compile(&a.items, None)?;
                self.push(Node::Array(item))
            }
            Avro::Map(m) => {
                let value = self.compile(&m.types, None)?;
                self.push(Node::Map(value))
            }
            Avro::Union(u) => {
                let mut branches = Vec::new();
                let mut null = None;
                for (i, v) in u.variants().iter().enumerate() {
                    if matches!(v, Avro::Null) {
                        null = Some(i);
                    }
                    branches.push(self.compile(v, None)?);
                }
                self.push(Node::Union { branches, null })
            }
            Avro::Record(r) => {
                let name = r.name.fullname(None);
                if let Some(&done) = self.names.get(&name) {
                    return Ok(done);
                }
                self.building.push(name.clone());
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let node = self
                        .compile(&f.schema, None)
                        .map_err(|e| format!("field `{}`: {e}", f.name))?;
                    fields.push(RecordFieldNode {
                        node,
                        default: f.default.clone(),
                    });
                }
                self.building.pop();
                // The record's column types; a field that refers back to a
                // record being built is dynamic (`json`).
                let mut stack = vec![name.clone()];
                let columns = r
                    .fields
                    .iter()
                    .zip(&fields)
                    .map(|(f, n)| {
                        let data_type = self.data_type(n.node, &mut stack);
                        let nullable = matches!(
                            self.nodes[n.node],
                            Node::Union { null: Some(_), .. } | Node::Null
                        );
                        Field {
                            name: f.name.clone(),
                            data_type,
                            nullable,
                        }
                    })
                    .collect();
                let index = self.push(Node::Record(Box::new(RecordNode {
                    name: name.clone(),
                    schema: Arc::new(Schema::new(columns)),
                    fields,
                })));
                self.names.insert(name, index);
                index
            }
            Avro::Ref { name } => {
                let full = name.fullname(None);
                if let Some(&done) = self.names.get(&full) {
                    return Ok(done);
                }
                if self.building.contains(&full) {
                    return Ok(self.push(Node::Ref(full)));
                }
                let target = *self
                    .defined
                    .get(&full)
                    .ok_or_else(|| format!("reference to undefined type `{full}`"))?;
                let index = self.compile(target, None)?;
                self.names.entry(full).or_insert(index);
                index
            }
        })
    }

    fn data_type(&self, index: usize, stack: &mut Vec<String>) -> DataType {
        match &self.nodes[index] {
            Node::Null => DataType::Json,
            Node::Boolean => DataType::Boolean,
            Node::Int | Node::Long | Node::TimeMillis | Node::TimeMicros => DataType::Int64,
            Node::Float | Node::Double => DataType::Float64,
            Node::Bytes | Node::Fixed(_) => DataType::Bytes,
            Node::String | Node::Enum(_) | Node::Uuid { .. } => DataType::String,
            Node::Date => DataType::Date,
            Node::TimestampMillis | Node::TimestampMicros | Node::TimestampNanos => {
                DataType::Timestamp
            }
            Node::Decimal { scale, .. } => DataType::Decimal {
                precision: 38,
                scale: *scale,
            },
            Node::Array(item) => DataType::Array(Box::new(self.data_type(*item, stack))),
            Node::Map(value) => DataType::Map(
                Box::new(DataType::String),
                Box::new(self.data_type(*value, stack)),
            ),
            Node::Union { branches, .. } => {
                let non_null: Vec<usize> = branches
                    .iter()
                    .copied()
                    .filter(|b| !matches!(self.nodes[*b], Node::Null))
                    .collect();
                match non_null.as_slice() {
                    [one] => self.data_type(*one, stack),
                    _ => DataType::Json,
                }
            }
            Node::Record(r) => {
                if stack.contains(&r.name) {
                    DataType::Json
                } else {
                    DataType::Struct(r.schema.clone())
                }
            }
            Node::Ref(_) => DataType::Json,
        }
    }

    /// Whether values of a node may take no bytes at all.
    fn always_empty(&self, index: usize, seen: &mut Vec<usize>) -> bool {
        if seen.contains(&index) {
            return false;
        }
        seen.push(index);
        let empty = match &self.nodes[index] {
            Node::Null => true,
            Node::Fixed(n) => *n == 0,
            Node::Decimal { fixed: Some(n), .. } => *n == 0,
            Node::Record(r) => r.fields.iter().all(|f| self.always_empty(f.node, seen)),
            Node::Ref(name) => self
                .names
                .get(name)
                .is_some_and(|&i| self.always_empty(i, seen)),
            _ => false,
        };
        seen.pop();
        empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_avro() {
        for n in [0i64, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_long(&mut out, n);
            let mut r = Reader { data: &out, pos: 0 };
            assert_eq!(r.long().unwrap(), n);
            assert_eq!(r.pos, out.len());
        }
        let mut r = Reader {
            data: &[0xff; 11],
            pos: 0,
        };
        assert!(r.long().is_err());
    }

    #[test]
    fn twos_complement_edges() {
        assert_eq!(twos_complement(&[]), Some(0));
        assert_eq!(twos_complement(&[0xff]), Some(-1));
        assert_eq!(twos_complement(&[0x00, 0x80]), Some(128));
        assert_eq!(twos_complement(&[0xff, 0x7f]), Some(-129));
        let mut long = vec![0xff; 4];
        long.extend_from_slice(&(-5i128).to_be_bytes());
        assert_eq!(twos_complement(&long), Some(-5));
        let mut bad = vec![0x01];
        bad.extend_from_slice(&[0; 16]);
        assert_eq!(twos_complement(&bad), None);
        for v in [0i128, 1, -1, 127, 128, -128, -129, i128::MAX, i128::MIN] {
            let b = v.to_be_bytes();
            assert_eq!(twos_complement(minimal_twos_complement(&b)), Some(v), "{v}");
        }
    }
}
