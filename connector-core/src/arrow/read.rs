//! Record batches back to records.

use std::sync::Arc;

use ::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, BooleanArray, Date32Array,
    Decimal128Array, Float64Array, Int64Array, LargeBinaryArray, LargeStringArray, StringArray,
    StringViewArray, TimestampMicrosecondArray,
};
use ::arrow::buffer::{NullBuffer, OffsetBuffer};
use ::arrow::compute::{CastOptions, can_cast_types, cast, cast_with_options};
use ::arrow::datatypes::{
    DataType as ArrowType, Field as ArrowField, Int64Type, SchemaRef, TimeUnit,
};
use ::arrow::record_batch::RecordBatch;
use bytes::Bytes;

use super::types::{UTC, from_arrow, from_arrow_schema, to_arrow_type};
use super::{ArrowOptions, DEFAULT_COMPONENT, FitError, Step, check_names};
use crate::error::{Component, Error, Result};
use crate::record::{ChangeKind, Record};
use crate::schema::{DataType, Schema};
use crate::value::{Decimal, StructValue, Value};

/// Converts Arrow record batches to records.
///
/// By default each batch's Arrow schema gives the record schema (see the
/// type table in the [module docs](super)); batches with the same Arrow
/// schema give records that share one `Arc<Schema>`. With
/// [`FromArrow::with_schema`] records get a declared schema instead: its
/// fields are read from the columns of the same name, converted to the
/// declared types (a sink table written to by an engine, whose batches
/// carry the engine's types).
///
/// ```
/// use std::sync::Arc;
/// use connector_core::arrow::{ArrowOptions, FromArrow};
/// use connector_core::arrow::arrow_crate::array::{Int32Array, RecordBatch, StringArray};
/// use connector_core::{DataType, Field, Schema, Value};
///
/// let rb = RecordBatch::try_from_iter([
///     ("id", Arc::new(Int32Array::from(vec![1, 2])) as _),
///     ("payload", Arc::new(StringArray::from(vec![r#"{"a": 1}"#, "[true]"])) as _),
/// ]).unwrap();
/// let schema = Arc::new(Schema::new(vec![
///     Field::required("id", DataType::Int64),
///     Field::new("payload", DataType::Json),
/// ]));
/// let records = FromArrow::with_schema(schema, ArrowOptions::default()).convert(&rb).unwrap();
/// assert_eq!(records[0].get("id"), Some(&Value::Int64(1)));
/// assert_eq!(records[1].get_path("payload.0"), Some(&Value::Boolean(true)));
/// ```
#[derive(Debug)]
pub struct FromArrow {
    options: ArrowOptions,
    declared: Option<Arc<Schema>>,
    component: Component,
    /// The last Arrow schema met and the record schema made for it.
    cache: Option<(SchemaRef, Arc<Schema>)>,
}

impl FromArrow {
    /// Record schemas from each batch's Arrow schema.
    pub fn new(options: ArrowOptions) -> Self {
        FromArrow {
            options,
            declared: None,
            component: Component::Borrowed(DEFAULT_COMPONENT),
            cache: None,
        }
    }

    /// Records of `schema`, read from the columns of the same names.
    pub fn with_schema(schema: Arc<Schema>, options: ArrowOptions) -> Self {
        FromArrow {
            declared: Some(schema),
            ..FromArrow::new(options)
        }
    }

    /// Names the component in errors (default `arrow conversion`).
    pub fn with_component(mut self, component: impl Into<Component>) -> Self {
        self.component = component.into();
        self
    }

    /// The record schema of batches with the Arrow schema `arrow`.
    pub fn schema_for(&mut self, arrow: &SchemaRef) -> Result<Arc<Schema>> {
        if let Some(declared) = &self.declared {
            return Ok(declared.clone());
        }
        if let Some((a, ours)) = &self.cache
            && (Arc::ptr_eq(a, arrow) || **a == **arrow)
        {
            return Ok(ours.clone());
        }
        let ours = from_arrow_schema(arrow, &self.options)
            .map_err(|e| e.in_component(self.component.clone()))?;
        self.cache = Some((arrow.clone(), ours.clone()));
        Ok(ours)
    }

    /// The records of `batch`, in row order.
    pub fn convert(&mut self, batch: &RecordBatch) -> Result<Vec<Record>> {
        let arrow = batch.schema();
        check_names(&arrow).map_err(|e| e.in_component(self.component.clone()))?;
        let schema = self.schema_for(&arrow)?;
        let column_error = |name: &str, (row, reason): (Option<usize>, String)| {
            let position = row.map_or_else(|| "schema".to_owned(), |r| format!("row {r}"));
            Error::decode("arrow", position, format!("column `{name}`: {reason}"))
                .in_component(self.component.clone())
        };

        let mut readers = Vec::with_capacity(schema.len());
        for field in schema.fields() {
            let reader = match batch.column_by_name(&field.name) {
                Some(array) => Reader::new(array, &field.data_type)
                    .map_err(|e| column_error(&field.name, e))?,
                None if field.nullable => Reader::Null,
                None => {
                    return Err(column_error(
                        &field.name,
                        (
                            None,
                            "missing from the batch, and the field is not nullable".into(),
                        ),
                    ));
                }
            };
            readers.push(reader);
        }
        let meta = |name: &Option<String>, t: &DataType| -> Result<Option<(String, Reader)>> {
            let Some(name) = name else { return Ok(None) };
            let Some(array) = batch.column_by_name(name) else {
                return Ok(None);
            };
            let reader = Reader::new(array, t).map_err(|e| column_error(name, e))?;
            Ok(Some((name.clone(), reader)))
        };
        let kinds = match &self.options.change_kind {
            Some(name) => match batch.column_by_name(name) {
                Some(array) => Some((
                    name.as_str(),
                    cast_exact(array, &ArrowType::Utf8).map_err(|e| column_error(name, e))?,
                )),
                None => None,
            },
            None => None,
        };
        let kinds = kinds.as_ref().map(|(n, a)| (*n, a.as_string::<i32>()));
        let keys = meta(&self.options.key, &DataType::Bytes)?;
        let times = meta(&self.options.event_time, &DataType::Timestamp)?;

        let mut records = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut values = Vec::with_capacity(readers.len());
            for (field, reader) in schema.fields().iter().zip(&readers) {
                let value = reader.read(row).map_err(|e| {
                    column_error(
                        &field.name,
                        (Some(row), e.in_field(&field.name).path_and_reason()),
                    )
                })?;
                values.push(value);
            }
            let mut record = Record::new(schema.clone(), values);
            if let Some((name, kinds)) = kinds
                && kinds.is_valid(row)
            {
                let text = kinds.value(row);
                record.kind = ChangeKind::parse(text).ok_or_else(|| {
                    column_error(
                        name,
                        (
                            Some(row),
                            format!(
                                "`{text}` is not a change kind (insert, update_before, \
                                 update_after, delete or upsert)"
                            ),
                        ),
                    )
                })?;
            }
            if let Some((name, keys)) = &keys {
                match keys
                    .read(row)
                    .map_err(|e| column_error(name, (Some(row), e.reason)))?
                {
                    Value::Bytes(b) => record.key = Some(Bytes::from(b)),
                    _ => record.key = None,
                }
            }
            if let Some((name, times)) = &times {
                record.timestamp = times
                    .read(row)
                    .map_err(|e| column_error(name, (Some(row), e.reason)))?
                    .as_timestamp_micros();
            }
            records.push(record);
        }
        Ok(records)
    }
}

impl FitError {
    /// The reason with the path below the column, for readers whose column
    /// is named separately.
    fn path_and_reason(self) -> String {
        if self.path.len() <= 1 {
            return self.reason;
        }
        format!("at `{}`: {}", self.column_path(), self.reason)
    }
}

/// Casts exactly (an overflow is an error, not a null); the error names the
/// first row that does not convert.
fn cast_exact(array: &ArrayRef, to: &ArrowType) -> Result<ArrayRef, (Option<usize>, String)> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    if !can_cast_types(array.data_type(), to) {
        return Err((
            None,
            format!("cannot read arrow type {} as {to}", array.data_type()),
        ));
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, to, &options).map_err(|e| {
        // A lenient cast turns the failing values into nulls: the first
        // value that became null is the row to blame.
        let row = cast(array, to).ok().and_then(|lenient| {
            (0..array.len()).find(|&i| array.is_valid(i) && lenient.is_null(i))
        });
        (
            row,
            format!("cannot read arrow type {} as {to}: {e}", array.data_type()),
        )
    })
}

/// Reads the values of one column (or of a nested part of one) as a given
/// record type.
enum Reader {
    Null,
    Boolean(BooleanArray),
    Int64(Int64Array),
    Float64(Float64Array),
    Utf8(StringArray),
    LargeUtf8(LargeStringArray),
    Utf8View(StringViewArray),
    Binary(BinaryArray),
    LargeBinary(LargeBinaryArray),
    BinaryView(BinaryViewArray),
    Timestamp(TimestampMicrosecondArray),
    Date(Date32Array),
    Decimal(Decimal128Array, u8),
    /// JSON text in a string reader.
    Json(Box<Reader>),
    List(Box<ListReader>),
    Struct(Box<StructReader>),
    Map(Box<MapReader>),
}

enum Offsets {
    Small(OffsetBuffer<i32>),
    Large(OffsetBuffer<i64>),
}

impl Offsets {
    fn range(&self, row: usize) -> std::ops::Range<usize> {
        match self {
            Offsets::Small(o) => o[row] as usize..o[row + 1] as usize,
            Offsets::Large(o) => o[row] as usize..o[row + 1] as usize,
        }
    }
}

struct ListReader {
    offsets: Offsets,
    nulls: Option<NullBuffer>,
    items: Reader,
}

struct StructReader {
    schema: Arc<Schema>,
    nulls: Option<NullBuffer>,
    children: Vec<Reader>,
}

struct MapReader {
    offsets: OffsetBuffer<i32>,
    nulls: Option<NullBuffer>,
    keys: Reader,
    values: Reader,
}

type ReadResult<T> = Result<T, (Option<usize>, String)>;

fn is_string(t: &ArrowType) -> bool {
    match t {
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => true,
        ArrowType::Dictionary(_, v) => is_string(v),
        ArrowType::RunEndEncoded(_, v) => is_string(v.data_type()),
        _ => false,
    }
}

impl Reader {
    /// A reader of `array` as values of `target`.
    fn new(array: &ArrayRef, target: &DataType) -> ReadResult<Reader> {
        use ArrowType as A;
        let t = array.data_type();
        if matches!(t, A::Null) {
            return Ok(Reader::Null);
        }
        Ok(match target {
            DataType::Json if is_string(t) => {
                Reader::Json(Box::new(Reader::new(array, &DataType::String)?))
            }
            DataType::Json => {
                // Anything else in a json field keeps its own type.
                let own =
                    from_arrow(&ArrowField::new("", t.clone(), true)).map_err(|e| (None, e))?;
                if matches!(own, DataType::Json) {
                    return Err((None, format!("cannot read arrow type {t} as json")));
                }
                Reader::new(array, &own)?
            }
            DataType::Boolean => {
                Reader::Boolean(cast_exact(array, &A::Boolean)?.as_boolean().clone())
            }
            DataType::Int64 => {
                let array = match t {
                    // Durations count microseconds.
                    A::Duration(_) => cast_exact(array, &A::Duration(TimeUnit::Microsecond))?,
                    _ => array.clone(),
                };
                Reader::Int64(
                    cast_exact(&array, &A::Int64)?
                        .as_primitive::<Int64Type>()
                        .clone(),
                )
            }
            DataType::Float64 => Reader::Float64(
                cast_exact(array, &A::Float64)?
                    .as_primitive::<::arrow::datatypes::Float64Type>()
                    .clone(),
            ),
            DataType::String => match t {
                A::Utf8 => Reader::Utf8(array.as_string::<i32>().clone()),
                A::LargeUtf8 => Reader::LargeUtf8(array.as_string::<i64>().clone()),
                A::Utf8View => Reader::Utf8View(array.as_string_view().clone()),
                _ => Reader::Utf8(cast_exact(array, &A::Utf8)?.as_string::<i32>().clone()),
            },
            DataType::Bytes => match t {
                A::Binary => Reader::Binary(array.as_binary::<i32>().clone()),
                A::LargeBinary => Reader::LargeBinary(array.as_binary::<i64>().clone()),
                A::BinaryView => Reader::BinaryView(array.as_binary_view().clone()),
                _ => Reader::Binary(cast_exact(array, &A::Binary)?.as_binary::<i32>().clone()),
            },
            DataType::Timestamp => {
                let to = match t {
                    // Any zone: the values are UTC instants already.
                    A::Timestamp(_, tz) => A::Timestamp(TimeUnit::Microsecond, tz.clone()),
                    _ => A::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
                };
                Reader::Timestamp(
                    cast_exact(array, &to)?
                        .as_primitive::<::arrow::datatypes::TimestampMicrosecondType>()
                        .clone(),
                )
            }
            DataType::Date => Reader::Date(
                cast_exact(array, &A::Date32)?
                    .as_primitive::<::arrow::datatypes::Date32Type>()
                    .clone(),
            ),
            DataType::Decimal { .. } => {
                let to = to_arrow_type(target);
                let A::Decimal128(_, scale) = to else {
                    unreachable!("decimals map to decimal128")
                };
                Reader::Decimal(
                    cast_exact(array, &to)?
                        .as_primitive::<::arrow::datatypes::Decimal128Type>()
                        .clone(),
                    scale as u8,
                )
            }
            DataType::Array(element) => {
                let array = match t {
                    A::List(_) | A::LargeList(_) => array.clone(),
                    A::FixedSizeList(item, _) | A::ListView(item) => {
                        cast_exact(array, &A::List(item.clone()))?
                    }
                    A::LargeListView(item) => cast_exact(array, &A::LargeList(item.clone()))?,
                    other => {
                        return Err((None, format!("cannot read arrow type {other} as an array")));
                    }
                };
                let (offsets, nulls, values) = match array.data_type() {
                    A::List(_) => {
                        let list = array.as_list::<i32>();
                        (
                            Offsets::Small(list.offsets().clone()),
                            list.nulls().cloned(),
                            list.values().clone(),
                        )
                    }
                    _ => {
                        let list = array.as_list::<i64>();
                        (
                            Offsets::Large(list.offsets().clone()),
                            list.nulls().cloned(),
                            list.values().clone(),
                        )
                    }
                };
                Reader::List(Box::new(ListReader {
                    offsets,
                    nulls,
                    items: Reader::new(&values, element)
                        .map_err(|(_, e)| (None, format!("items: {e}")))?,
                }))
            }
            DataType::Struct(schema) => {
                let Some(array) = array.as_struct_opt() else {
                    return Err((None, format!("cannot read arrow type {t} as a struct")));
                };
                let children = schema
                    .fields()
                    .iter()
                    .map(|f| match array.column_by_name(&f.name) {
                        Some(child) => Reader::new(child, &f.data_type)
                            .map_err(|(_, e)| (None, format!("field `{}`: {e}", f.name))),
                        None if f.nullable => Ok(Reader::Null),
                        None => Err((
                            None,
                            format!("field `{}` is missing and not nullable", f.name),
                        )),
                    })
                    .collect::<ReadResult<Vec<_>>>()?;
                Reader::Struct(Box::new(StructReader {
                    schema: schema.clone(),
                    nulls: array.nulls().cloned(),
                    children,
                }))
            }
            DataType::Map(k, v) => {
                let Some(map) = array.as_map_opt() else {
                    return Err((None, format!("cannot read arrow type {t} as a map")));
                };
                Reader::Map(Box::new(MapReader {
                    offsets: map.offsets().clone(),
                    nulls: map.nulls().cloned(),
                    keys: Reader::new(map.keys(), k)
                        .map_err(|(_, e)| (None, format!("map keys: {e}")))?,
                    values: Reader::new(map.values(), v)
                        .map_err(|(_, e)| (None, format!("map values: {e}")))?,
                }))
            }
        })
    }

    fn text(&self, row: usize) -> Option<&str> {
        match self {
            Reader::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            Reader::LargeUtf8(a) => a.is_valid(row).then(|| a.value(row)),
            Reader::Utf8View(a) => a.is_valid(row).then(|| a.value(row)),
            _ => None,
        }
    }

    /// The value at `row`.
    fn read(&self, row: usize) -> Result<Value, FitError> {
        fn get<A: Array>(a: &A, row: usize, f: impl FnOnce() -> Value) -> Value {
            if a.is_null(row) { Value::Null } else { f() }
        }
        let null = |nulls: &Option<NullBuffer>| nulls.as_ref().is_some_and(|n| n.is_null(row));
        Ok(match self {
            Reader::Null => Value::Null,
            Reader::Boolean(a) => get(a, row, || Value::Boolean(a.value(row))),
            Reader::Int64(a) => get(a, row, || Value::Int64(a.value(row))),
            Reader::Float64(a) => get(a, row, || Value::Float64(a.value(row))),
            Reader::Utf8(_) | Reader::LargeUtf8(_) | Reader::Utf8View(_) => self
                .text(row)
                .map_or(Value::Null, |s| Value::String(s.to_owned())),
            Reader::Binary(a) => get(a, row, || Value::Bytes(a.value(row).to_vec())),
            Reader::LargeBinary(a) => get(a, row, || Value::Bytes(a.value(row).to_vec())),
            Reader::BinaryView(a) => get(a, row, || Value::Bytes(a.value(row).to_vec())),
            Reader::Timestamp(a) => get(a, row, || Value::Timestamp(a.value(row))),
            Reader::Date(a) => get(a, row, || Value::Date(a.value(row))),
            Reader::Decimal(a, scale) => get(a, row, || {
                Value::Decimal(Decimal::new(a.value(row), *scale))
            }),
            Reader::Json(text) => match text.text(row) {
                None => Value::Null,
                Some(s) => Value::from_json(
                    serde_json::from_str(s)
                        .map_err(|e| FitError::new(format!("not valid JSON text: {e}")))?,
                ),
            },
            Reader::List(l) => {
                if null(&l.nulls) {
                    return Ok(Value::Null);
                }
                let range = l.offsets.range(row);
                let start = range.start;
                let mut items = Vec::with_capacity(range.len());
                for i in range {
                    items.push(l.items.read(i).map_err(|e| e.at(Step::Index(i - start)))?);
                }
                Value::Array(items)
            }
            Reader::Struct(s) => {
                if null(&s.nulls) {
                    return Ok(Value::Null);
                }
                let mut values = Vec::with_capacity(s.children.len());
                for (field, child) in s.schema.fields().iter().zip(&s.children) {
                    values.push(child.read(row).map_err(|e| e.in_field(&field.name))?);
                }
                Value::Struct(StructValue::new(s.schema.clone(), values))
            }
            Reader::Map(m) => {
                if null(&m.nulls) {
                    return Ok(Value::Null);
                }
                let range = m.offsets[row] as usize..m.offsets[row + 1] as usize;
                let start = range.start;
                let mut entries = Vec::with_capacity(range.len());
                for i in range {
                    let k = m
                        .keys
                        .read(i)
                        .map_err(|e| e.at(Step::Key).at(Step::Index(i - start)))?;
                    let v = m
                        .values
                        .read(i)
                        .map_err(|e| e.at(Step::Value).at(Step::Index(i - start)))?;
                    entries.push((k, v));
                }
                Value::Map(entries)
            }
        })
    }
}
