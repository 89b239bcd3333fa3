//! Records to a record batch: one Arrow builder per column, filled straight
//! from the values.

use std::sync::Arc;

use ::arrow::array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    NullBufferBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use ::arrow::array::{
    ArrayRef, DictionaryArray, Int8Array, ListArray, MapArray, StringArray, StructArray,
};
use ::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use ::arrow::datatypes::{FieldRef, Fields, Int8Type};
use ::arrow::error::ArrowError;
use ::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::types::{UTC, item_field, map_entries_field, struct_fields};
use super::{FitError, Step, ToArrow, row_position, short};
use crate::error::Error;
use crate::record::{ChangeKind, Record};
use crate::schema::{DataType, Schema};
use crate::value::{Decimal, Value};

/// Change kinds in the order of the change-kind dictionary.
const KINDS: [ChangeKind; 5] = [
    ChangeKind::Insert,
    ChangeKind::UpdateBefore,
    ChangeKind::UpdateAfter,
    ChangeKind::Delete,
    ChangeKind::Upsert,
];

fn kind_index(kind: ChangeKind) -> i8 {
    match kind {
        ChangeKind::Insert => 0,
        ChangeKind::UpdateBefore => 1,
        ChangeKind::UpdateAfter => 2,
        ChangeKind::Delete => 3,
        ChangeKind::Upsert => 4,
    }
}

static NULL: Value = Value::Null;

/// Converts `records`; an error carries the row it is about, if any.
pub(super) fn build(
    to: &ToArrow,
    records: &[Record],
) -> Result<RecordBatch, (Option<usize>, Error)> {
    let schema = &to.schema;
    let n = records.len();
    let mut columns: Vec<Column> = schema
        .fields()
        .iter()
        .map(|f| Column::new(&f.data_type, n))
        .collect();
    let mut kinds: Vec<i8> = Vec::with_capacity(if to.options.change_kind.is_some() {
        n
    } else {
        0
    });
    let mut keys = to
        .options
        .key
        .as_ref()
        .map(|_| BinaryBuilder::with_capacity(n, n * 16));
    let mut times = to
        .options
        .event_time
        .as_ref()
        .map(|_| TimestampMicrosecondBuilder::with_capacity(n));
    let mut shapes = ShapeCache::default();

    for (row, record) in records.iter().enumerate() {
        let fail = |e: FitError| {
            let error = Error::encode(
                "arrow",
                format!("at {}", row_position(row, Some(record))),
                e.message(),
            )
            .in_component(to.component.clone());
            (Some(row), error)
        };
        let shape = shapes.get(schema, &record.schema);
        for (i, (field, column)) in schema.fields().iter().zip(columns.iter_mut()).enumerate() {
            let value = match &shape {
                Shape::Same => record.values.get(i),
                Shape::Mapped(map) => map[i].and_then(|j| record.values.get(j)),
            }
            .unwrap_or(&NULL);
            if value.is_null() && !field.nullable {
                let reason = if matches!(&shape, Shape::Mapped(map) if map[i].is_none()) {
                    "missing from the record, and the column is not nullable"
                } else {
                    "null in a column that is not nullable"
                };
                return Err(fail(FitError::new(reason).in_field(&field.name)));
            }
            column
                .append(value)
                .map_err(|e| fail(e.in_field(&field.name)))?;
        }
        if to.options.change_kind.is_some() {
            kinds.push(kind_index(record.kind));
        } else if record.kind != ChangeKind::Insert {
            let error = Error::encode(
                "arrow",
                format!("at {}", row_position(row, Some(record))),
                format!(
                    "the record's change kind is `{}`, but the conversion has no change-kind \
                     column (set ArrowOptions::change_kind to carry changelogs)",
                    record.kind
                ),
            )
            .in_component(to.component.clone());
            return Err((Some(row), error));
        }
        if let Some(keys) = &mut keys {
            keys.append_option(record.key.as_deref());
        }
        if let Some(times) = &mut times {
            times.append_option(record.timestamp);
        }
    }

    let finish = |e: ArrowError| {
        (
            None,
            Error::encode("arrow", "batch", e.to_string()).in_component(to.component.clone()),
        )
    };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(to.arrow_schema.fields().len());
    for column in columns {
        arrays.push(column.finish().map_err(finish)?);
    }
    if to.options.change_kind.is_some() {
        let names = StringArray::from_iter_values(KINDS.iter().map(|k| k.as_str()));
        let dictionary =
            DictionaryArray::<Int8Type>::try_new(Int8Array::from(kinds), Arc::new(names))
                .map_err(finish)?;
        arrays.push(Arc::new(dictionary));
    }
    if let Some(mut keys) = keys {
        arrays.push(Arc::new(keys.finish()));
    }
    if let Some(mut times) = times {
        arrays.push(Arc::new(times.finish().with_timezone(UTC)));
    }
    RecordBatch::try_new_with_options(
        to.arrow_schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(finish)
}

/// How the fields of a value's schema line up with a target schema.
enum Shape {
    /// The same fields in the same order.
    Same,
    /// For each target field, the position of the value's field of that name.
    Mapped(FieldMap),
}

/// For each target field, the position of the value's field of that name.
type FieldMap = Arc<[Option<usize>]>;

/// The last few schemas met and how they line up with the target, so
/// records that share a schema are matched by name only once.
#[derive(Default)]
struct ShapeCache {
    entries: Vec<(Arc<Schema>, Option<FieldMap>)>,
    next: usize,
}

impl ShapeCache {
    /// Enough for the shapes of one batch; more distinct schemas (one per
    /// record) are matched each time rather than searched for.
    const SIZE: usize = 8;

    fn get(&mut self, target: &Schema, from: &Arc<Schema>) -> Shape {
        let found = self
            .entries
            .iter()
            .find(|(s, _)| Arc::ptr_eq(s, from))
            .map(|(_, m)| m.clone());
        let map = match found {
            Some(m) => m,
            None => {
                let m = if **from == *target {
                    None
                } else {
                    Some(
                        target
                            .fields()
                            .iter()
                            .map(|f| from.index_of(&f.name))
                            .collect::<Arc<[Option<usize>]>>(),
                    )
                };
                if self.entries.len() < Self::SIZE {
                    self.entries.push((from.clone(), m.clone()));
                } else {
                    self.entries[self.next] = (from.clone(), m.clone());
                    self.next = (self.next + 1) % Self::SIZE;
                }
                m
            }
        };
        match map {
            None => Shape::Same,
            Some(m) => Shape::Mapped(m),
        }
    }
}

/// The builder of one column (or of a nested part of one).
enum Column {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    String(StringBuilder),
    Bytes(BinaryBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Decimal(DecimalColumn),
    Json(JsonColumn),
    List(Box<ListColumn>),
    Struct(Box<StructColumn>),
    Map(Box<MapColumn>),
}

struct DecimalColumn {
    builder: Decimal128Builder,
    precision: u8,
    scale: u8,
    /// 10^precision: every unscaled value must be below it in magnitude.
    limit: i128,
}

struct JsonColumn {
    builder: StringBuilder,
    buf: Vec<u8>,
}

struct ListColumn {
    field: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    items: Column,
}

struct StructColumn {
    schema: Arc<Schema>,
    fields: Fields,
    children: Vec<Column>,
    nulls: NullBufferBuilder,
    len: usize,
    shapes: ShapeCache,
}

struct MapColumn {
    entries_field: FieldRef,
    entry_fields: Fields,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    keys: Column,
    values: Column,
}

fn mismatch(expected: impl std::fmt::Display, v: &Value) -> FitError {
    FitError::new(format!(
        "expected {expected}, found {} {}",
        DataType::of(v).name(),
        short(v)
    ))
}

/// The next offset of a list or map column.
fn next_offset(len: usize) -> Result<i32, FitError> {
    i32::try_from(len).map_err(|_| {
        FitError::new("more than 2^31 nested values in one batch; convert smaller batches")
    })
}

impl Column {
    fn new(t: &DataType, capacity: usize) -> Column {
        match t {
            DataType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(capacity)),
            DataType::Int64 => Column::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Float64 => Column::Float64(Float64Builder::with_capacity(capacity)),
            DataType::String => {
                Column::String(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            DataType::Bytes => Column::Bytes(BinaryBuilder::with_capacity(capacity, capacity * 8)),
            DataType::Timestamp => {
                Column::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            DataType::Date => Column::Date(Date32Builder::with_capacity(capacity)),
            DataType::Decimal { precision, scale } => {
                let precision = (*precision).clamp(1, 38);
                Column::Decimal(DecimalColumn {
                    builder: Decimal128Builder::with_capacity(capacity),
                    precision,
                    scale: (*scale).min(38),
                    limit: 10i128.pow(u32::from(precision)),
                })
            }
            DataType::Array(element) => Column::List(Box::new(ListColumn {
                field: Arc::new(item_field(element)),
                offsets: {
                    let mut o = Vec::with_capacity(capacity + 1);
                    o.push(0);
                    o
                },
                nulls: NullBufferBuilder::new(capacity),
                items: Column::new(element, capacity),
            })),
            DataType::Struct(schema) => Column::Struct(Box::new(StructColumn {
                fields: struct_fields(schema),
                children: schema
                    .fields()
                    .iter()
                    .map(|f| Column::new(&f.data_type, capacity))
                    .collect(),
                schema: schema.clone(),
                nulls: NullBufferBuilder::new(capacity),
                len: 0,
                shapes: ShapeCache::default(),
            })),
            DataType::Map(k, v) => {
                let entries_field = map_entries_field(k, v);
                let ::arrow::datatypes::DataType::Struct(entry_fields) = entries_field.data_type()
                else {
                    unreachable!("map entries are a struct")
                };
                Column::Map(Box::new(MapColumn {
                    entry_fields: entry_fields.clone(),
                    entries_field,
                    offsets: {
                        let mut o = Vec::with_capacity(capacity + 1);
                        o.push(0);
                        o
                    },
                    nulls: NullBufferBuilder::new(capacity),
                    keys: Column::new(k, capacity),
                    values: Column::new(v, capacity),
                }))
            }
            DataType::Json => Column::Json(JsonColumn {
                builder: StringBuilder::with_capacity(capacity, capacity * 16),
                buf: Vec::new(),
            }),
        }
    }

    /// Appends a value (nullability is the caller's business).
    fn append(&mut self, v: &Value) -> Result<(), FitError> {
        if v.is_null() {
            self.append_null();
            return Ok(());
        }
        match self {
            Column::Boolean(b) => match v {
                Value::Boolean(x) => b.append_value(*x),
                _ => return Err(mismatch(&DataType::Boolean, v)),
            },
            Column::Int64(b) => match v {
                Value::Int64(x) => b.append_value(*x),
                _ => return Err(mismatch(&DataType::Int64, v)),
            },
            Column::Float64(b) => match v {
                Value::Float64(x) => b.append_value(*x),
                // Merged schemaless columns: int64 and decimal widen to float64.
                Value::Int64(x) => b.append_value(*x as f64),
                Value::Decimal(d) => b.append_value(d.to_f64()),
                _ => return Err(mismatch(&DataType::Float64, v)),
            },
            Column::String(b) => match v {
                Value::String(s) => b.append_value(s),
                _ => return Err(mismatch(&DataType::String, v)),
            },
            Column::Bytes(b) => match v {
                Value::Bytes(x) => b.append_value(x),
                _ => return Err(mismatch(&DataType::Bytes, v)),
            },
            Column::Timestamp(b) => match v {
                Value::Timestamp(x) => b.append_value(*x),
                _ => return Err(mismatch(&DataType::Timestamp, v)),
            },
            Column::Date(b) => match v {
                Value::Date(x) => b.append_value(*x),
                _ => return Err(mismatch(&DataType::Date, v)),
            },
            Column::Decimal(c) => c.append(v)?,
            Column::Json(c) => {
                c.buf.clear();
                serde_json::to_writer(&mut c.buf, v)
                    .map_err(|e| FitError::new(format!("cannot write as JSON text: {e}")))?;
                let text = std::str::from_utf8(&c.buf)
                    .map_err(|e| FitError::new(format!("JSON text is not UTF-8: {e}")))?;
                c.builder.append_value(text);
            }
            Column::List(c) => match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        c.items.append(item).map_err(|e| e.at(Step::Index(i)))?;
                    }
                    c.offsets.push(next_offset(c.items.len())?);
                    c.nulls.append_non_null();
                }
                _ => return Err(mismatch("an array", v)),
            },
            Column::Struct(c) => c.append(v)?,
            Column::Map(c) => c.append(v)?,
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Column::Boolean(b) => b.append_null(),
            Column::Int64(b) => b.append_null(),
            Column::Float64(b) => b.append_null(),
            Column::String(b) => b.append_null(),
            Column::Bytes(b) => b.append_null(),
            Column::Timestamp(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Decimal(c) => c.builder.append_null(),
            Column::Json(c) => c.builder.append_null(),
            Column::List(c) => {
                let last = *c.offsets.last().unwrap_or(&0);
                c.offsets.push(last);
                c.nulls.append_null();
            }
            Column::Struct(c) => {
                for child in &mut c.children {
                    child.append_null();
                }
                c.nulls.append_null();
                c.len += 1;
            }
            Column::Map(c) => {
                let last = *c.offsets.last().unwrap_or(&0);
                c.offsets.push(last);
                c.nulls.append_null();
            }
        }
    }

    /// Values appended so far.
    fn len(&self) -> usize {
        use ::arrow::array::builder::ArrayBuilder;
        match self {
            Column::Boolean(b) => b.len(),
            Column::Int64(b) => b.len(),
            Column::Float64(b) => b.len(),
            Column::String(b) => b.len(),
            Column::Bytes(b) => b.len(),
            Column::Timestamp(b) => b.len(),
            Column::Date(b) => b.len(),
            Column::Decimal(c) => c.builder.len(),
            Column::Json(c) => c.builder.len(),
            Column::List(c) => c.offsets.len() - 1,
            Column::Struct(c) => c.len,
            Column::Map(c) => c.offsets.len() - 1,
        }
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Column::Boolean(mut b) => Arc::new(b.finish()),
            Column::Int64(mut b) => Arc::new(b.finish()),
            Column::Float64(mut b) => Arc::new(b.finish()),
            Column::String(mut b) => Arc::new(b.finish()),
            Column::Bytes(mut b) => Arc::new(b.finish()),
            Column::Timestamp(mut b) => Arc::new(b.finish().with_timezone(UTC)),
            Column::Date(mut b) => Arc::new(b.finish()),
            Column::Decimal(mut c) => Arc::new(
                c.builder
                    .finish()
                    .with_precision_and_scale(c.precision, c.scale as i8)?,
            ),
            Column::Json(mut c) => Arc::new(c.builder.finish()),
            Column::List(c) => {
                let c = *c;
                Arc::new(ListArray::try_new(
                    c.field,
                    OffsetBuffer::new(ScalarBuffer::from(c.offsets)),
                    c.items.finish()?,
                    { c.nulls }.finish(),
                )?)
            }
            Column::Struct(c) => {
                let c = *c;
                let children = c
                    .children
                    .into_iter()
                    .map(Column::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new_with_length(
                    c.fields,
                    children,
                    { c.nulls }.finish(),
                    c.len,
                )?)
            }
            Column::Map(c) => {
                let c = *c;
                let entries = StructArray::try_new(
                    c.entry_fields,
                    vec![c.keys.finish()?, c.values.finish()?],
                    None,
                )?;
                Arc::new(MapArray::try_new(
                    c.entries_field,
                    OffsetBuffer::new(ScalarBuffer::from(c.offsets)),
                    entries,
                    { c.nulls }.finish(),
                    false,
                )?)
            }
        })
    }
}

impl DecimalColumn {
    fn append(&mut self, v: &Value) -> Result<(), FitError> {
        let d = match v {
            Value::Decimal(d) => *d,
            Value::Int64(x) => Decimal::new(i128::from(*x), 0),
            _ => {
                return Err(mismatch(
                    format_args!("decimal({}, {})", self.precision, self.scale),
                    v,
                ));
            }
        };
        let fitted = d
            .rescale(self.scale)
            .filter(|r| r.unscaled.unsigned_abs() < self.limit.unsigned_abs());
        match fitted {
            Some(r) => {
                self.builder.append_value(r.unscaled);
                Ok(())
            }
            None => Err(FitError::new(format!(
                "{d} does not fit decimal({}, {}) (at most {} digits, {} after the point)",
                self.precision, self.scale, self.precision, self.scale
            ))),
        }
    }
}

impl StructColumn {
    fn append(&mut self, v: &Value) -> Result<(), FitError> {
        let Value::Struct(sv) = v else {
            return Err(mismatch("a struct", v));
        };
        let shape = if Arc::ptr_eq(sv.schema(), &self.schema) {
            Shape::Same
        } else {
            self.shapes.get(&self.schema, sv.schema())
        };
        let values = sv.values();
        for (i, (field, child)) in self
            .schema
            .fields()
            .iter()
            .zip(&mut self.children)
            .enumerate()
        {
            let value = match &shape {
                Shape::Same => values.get(i),
                Shape::Mapped(map) => map[i].and_then(|j| values.get(j)),
            }
            .unwrap_or(&NULL);
            if value.is_null() && !field.nullable {
                return Err(
                    FitError::new("null in a field that is not nullable").in_field(&field.name)
                );
            }
            child.append(value).map_err(|e| e.in_field(&field.name))?;
        }
        self.nulls.append_non_null();
        self.len += 1;
        Ok(())
    }
}

impl MapColumn {
    fn append(&mut self, v: &Value) -> Result<(), FitError> {
        match v {
            Value::Map(entries) => {
                for (i, (k, value)) in entries.iter().enumerate() {
                    self.append_entry(k, value)
                        .map_err(|e| e.at(Step::Index(i)))?;
                }
            }
            // An object read without a declared map type: its fields are the entries.
            Value::Struct(sv) => {
                for (i, (name, value)) in sv.iter().enumerate() {
                    self.append_entry(&Value::String(name.to_owned()), value)
                        .map_err(|e| e.at(Step::Index(i)))?;
                }
            }
            _ => return Err(mismatch("a map", v)),
        }
        self.offsets.push(next_offset(self.keys.len())?);
        self.nulls.append_non_null();
        Ok(())
    }

    fn append_entry(&mut self, k: &Value, v: &Value) -> Result<(), FitError> {
        if k.is_null() {
            return Err(
                FitError::new("null map key (Arrow map keys cannot be null)").at(Step::Key),
            );
        }
        self.keys.append(k).map_err(|e| e.at(Step::Key))?;
        self.values.append(v).map_err(|e| e.at(Step::Value))
    }
}
