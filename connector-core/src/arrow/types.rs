//! Type mapping between record schemas and Arrow schemas, and schema
//! inference for batches whose records do not share one schema.

use std::collections::HashMap;
use std::sync::Arc;

use ::arrow::datatypes::{
    DataType as ArrowType, Field as ArrowField, FieldRef, Fields, Schema as ArrowSchema, SchemaRef,
    TimeUnit,
};

use super::{ArrowOptions, JSON_EXTENSION_NAME, check_names, contains_json, schema_error};
use crate::error::Result;
use crate::record::Record;
use crate::schema::{DataType, Field, Schema};
use crate::value::Value;

/// Field metadata key of Arrow extension type names.
pub(super) const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";
/// Field metadata key of Arrow extension type parameters.
const EXTENSION_METADATA_KEY: &str = "ARROW:extension:metadata";

/// The time zone of timestamp columns: UTC, written as an offset rather
/// than the name `UTC`, which Arrow parses only with its optional time-zone
/// database (`chrono-tz`); DataFusion writes UTC the same way.
pub(super) const UTC: &str = "+00:00";

/// The Arrow type of a record type (json is `Utf8`; its field carries the
/// `arrow.json` marker, see [`to_arrow_field`]).
pub fn to_arrow_type(t: &DataType) -> ArrowType {
    match t {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int64 => ArrowType::Int64,
        DataType::Float64 => ArrowType::Float64,
        DataType::String | DataType::Json => ArrowType::Utf8,
        DataType::Bytes => ArrowType::Binary,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        DataType::Date => ArrowType::Date32,
        DataType::Decimal { precision, scale } => {
            // Precision 0 is not a valid Arrow decimal; scale is at most 38 in
            // our model, so the cast cannot wrap.
            ArrowType::Decimal128((*precision).clamp(1, 38), (*scale).min(38) as i8)
        }
        DataType::Array(element) => ArrowType::List(Arc::new(item_field(element))),
        DataType::Struct(schema) => ArrowType::Struct(struct_fields(schema)),
        DataType::Map(k, v) => ArrowType::Map(map_entries_field(k, v), false),
    }
}

/// The Arrow field of a record field: its type, nullability, and for json
/// the `arrow.json` extension marker.
pub fn to_arrow_field(f: &Field) -> ArrowField {
    arrow_field(&f.name, &f.data_type, f.nullable)
}

fn arrow_field(name: &str, t: &DataType, nullable: bool) -> ArrowField {
    let field = ArrowField::new(name, to_arrow_type(t), nullable);
    if matches!(t, DataType::Json) {
        field.with_metadata(HashMap::from([
            (
                EXTENSION_NAME_KEY.to_owned(),
                JSON_EXTENSION_NAME.to_owned(),
            ),
            (EXTENSION_METADATA_KEY.to_owned(), String::new()),
        ]))
    } else {
        field
    }
}

/// The element field of a list: nullable, named `item` as Arrow does.
pub(super) fn item_field(element: &DataType) -> ArrowField {
    arrow_field("item", element, true)
}

pub(super) fn struct_fields(schema: &Schema) -> Fields {
    schema.fields().iter().map(to_arrow_field).collect()
}

/// The `entries` field of a map: a non-null struct of a non-null `keys`
/// and a nullable `values` column, as the Arrow spec requires.
pub(super) fn map_entries_field(k: &DataType, v: &DataType) -> FieldRef {
    let entries = Fields::from(vec![
        arrow_field("keys", k, false),
        arrow_field("values", v, true),
    ]);
    Arc::new(ArrowField::new(
        "entries",
        ArrowType::Struct(entries),
        false,
    ))
}

/// The Arrow schema of records of `schema` with the metadata columns.
pub(super) fn to_arrow_schema(schema: &Schema, options: &ArrowOptions) -> Result<SchemaRef> {
    let mut fields: Vec<ArrowField> = schema.fields().iter().map(to_arrow_field).collect();
    if let Some(name) = &options.change_kind {
        fields.push(ArrowField::new(
            name,
            ArrowType::Dictionary(Box::new(ArrowType::Int8), Box::new(ArrowType::Utf8)),
            false,
        ));
    }
    if let Some(name) = &options.key {
        fields.push(ArrowField::new(name, ArrowType::Binary, true));
    }
    if let Some(name) = &options.event_time {
        fields.push(ArrowField::new(
            name,
            ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            true,
        ));
    }
    let arrow = ArrowSchema::new(fields);
    check_names(&arrow).map_err(|_| {
        let clash = options
            .metadata_columns()
            .find(|m| schema.index_of(m).is_some())
            .unwrap_or_default();
        schema_error(format!(
            "the record field `{clash}` has the name of a metadata column; \
             name the metadata column otherwise in the ArrowOptions"
        ))
    })?;
    Ok(Arc::new(arrow))
}

/// The record type of an Arrow field (see the table in the
/// [module docs](super)); the error names what has no counterpart.
pub fn from_arrow_field(field: &ArrowField) -> Result<DataType> {
    from_arrow(field).map_err(|reason| schema_error(format!("column `{}`: {reason}", field.name())))
}

fn is_json_field(field: &ArrowField) -> bool {
    field.metadata().get(EXTENSION_NAME_KEY).map(String::as_str) == Some(JSON_EXTENSION_NAME)
}

pub(super) fn from_arrow(field: &ArrowField) -> Result<DataType, String> {
    from_arrow_type(field.data_type(), is_json_field(field))
}

fn from_arrow_type(t: &ArrowType, json: bool) -> Result<DataType, String> {
    use ArrowType as A;
    Ok(match t {
        A::Null => DataType::Json,
        A::Boolean => DataType::Boolean,
        A::Int8 | A::Int16 | A::Int32 | A::Int64 | A::UInt8 | A::UInt16 | A::UInt32 | A::UInt64 => {
            DataType::Int64
        }
        A::Float16 | A::Float32 | A::Float64 => DataType::Float64,
        A::Utf8 | A::LargeUtf8 | A::Utf8View if json => DataType::Json,
        A::Utf8 | A::LargeUtf8 | A::Utf8View => DataType::String,
        A::Time32(_) | A::Time64(_) | A::Interval(_) => DataType::String,
        A::Duration(_) => DataType::Int64,
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => DataType::Bytes,
        A::Timestamp(_, _) => DataType::Timestamp,
        A::Date32 | A::Date64 => DataType::Date,
        A::Decimal32(p, s) | A::Decimal64(p, s) | A::Decimal128(p, s) | A::Decimal256(p, s) => {
            decimal_type(*p, *s)?
        }
        A::List(item)
        | A::LargeList(item)
        | A::FixedSizeList(item, _)
        | A::ListView(item)
        | A::LargeListView(item) => DataType::Array(Box::new(from_arrow(item)?)),
        A::Struct(fields) => DataType::Struct(Arc::new(schema_of_fields(fields)?)),
        A::Map(entries, _) => match entries.data_type() {
            A::Struct(kv) if kv.len() == 2 => DataType::Map(
                Box::new(from_arrow(&kv[0]).map_err(|e| format!("map keys: {e}"))?),
                Box::new(from_arrow(&kv[1]).map_err(|e| format!("map values: {e}"))?),
            ),
            other => {
                return Err(format!(
                    "map entries of type {other} are not a key/value struct"
                ));
            }
        },
        A::Dictionary(_, values) => from_arrow_type(values, json)?,
        A::RunEndEncoded(_, values) => from_arrow_type(values.data_type(), json)?,
        other => {
            return Err(format!(
                "arrow type {other} has no counterpart in the record model"
            ));
        }
    })
}

/// Our decimal type for an Arrow decimal: a negative scale becomes scale 0
/// (the values are whole numbers), precision is capped at 38.
fn decimal_type(precision: u8, scale: i8) -> Result<DataType, String> {
    if scale > 38 {
        return Err(format!(
            "decimal scale {scale} is above 38, the most a 128-bit decimal holds"
        ));
    }
    let (precision, scale) = if scale < 0 {
        (precision.saturating_add(scale.unsigned_abs()).min(38), 0)
    } else {
        (precision.min(38), scale as u8)
    };
    Ok(DataType::Decimal {
        precision: precision.max(scale),
        scale,
    })
}

fn schema_of_fields(fields: &Fields) -> Result<Schema, String> {
    fields
        .iter()
        .map(|f| {
            Ok(Field {
                name: f.name().clone(),
                data_type: from_arrow(f).map_err(|e| format!("field `{}`: {e}", f.name()))?,
                nullable: f.is_nullable(),
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Schema::new)
}

/// The record schema of an Arrow schema, leaving out the metadata columns
/// of `options`.
pub fn from_arrow_schema(schema: &ArrowSchema, options: &ArrowOptions) -> Result<Arc<Schema>> {
    check_names(schema)?;
    let fields = schema
        .fields()
        .iter()
        .filter(|f| !options.is_metadata(f.name()))
        .map(|f| {
            Ok(Field {
                name: f.name().clone(),
                data_type: from_arrow_field(f)?,
                nullable: f.is_nullable(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// The schema of a batch of records: their shared schema, or one merged
/// from all of them (see "Schemaless batches" in the [module docs](super)).
///
/// ```
/// use connector_core::arrow::infer_schema;
/// use connector_core::{DataType, Record, Value};
///
/// let records = [
///     Record::from_pairs([("id", Value::Int64(1)), ("score", Value::Int64(3))]),
///     Record::from_pairs([("id", Value::Int64(2)), ("score", Value::Float64(2.5)), ("tag", "x".into())]),
///     Record::from_pairs([("id", Value::Int64(3)), ("score", Value::Null)]),
/// ];
/// let schema = infer_schema(&records);
/// assert_eq!(schema.to_string(), "(id int64, score float64, tag string)");
/// assert_eq!(schema.field(1).data_type, DataType::Float64);
/// ```
pub fn infer_schema(records: &[Record]) -> Arc<Schema> {
    let Some(first) = records.first() else {
        return Arc::new(Schema::empty());
    };
    if records[1..]
        .iter()
        .all(|r| Arc::ptr_eq(&r.schema, &first.schema) || r.schema == first.schema)
    {
        return first.schema.clone();
    }
    let mut columns = Columns::default();
    for record in records {
        columns.add_record(record);
    }
    columns.finish(records.len())
}

/// A type being inferred: unknown until a non-null value is seen.
#[derive(Debug, Clone, PartialEq)]
enum Inferred {
    Unknown,
    /// A type without nested parts, or json.
    Scalar(DataType),
    Array(Box<Inferred>),
    Struct(Vec<InferredField>),
    Map(Box<Inferred>, Box<Inferred>),
}

#[derive(Debug, Clone, PartialEq)]
struct InferredField {
    name: String,
    ty: Inferred,
    nullable: bool,
}

impl Inferred {
    /// A declared type without json parts, taken as it is.
    fn declared(t: &DataType) -> Inferred {
        match t {
            DataType::Array(e) => Inferred::Array(Box::new(Inferred::declared(e))),
            DataType::Map(k, v) => Inferred::Map(
                Box::new(Inferred::declared(k)),
                Box::new(Inferred::declared(v)),
            ),
            DataType::Struct(s) => Inferred::Struct(
                s.fields()
                    .iter()
                    .map(|f| InferredField {
                        name: f.name.clone(),
                        ty: Inferred::declared(&f.data_type),
                        nullable: f.nullable,
                    })
                    .collect(),
            ),
            other => Inferred::Scalar(other.clone()),
        }
    }

    /// The type of a value, looking inside it where its declared type is json.
    fn of(declared: &DataType, value: &Value) -> Inferred {
        if value.is_null() {
            return Inferred::Unknown;
        }
        if !contains_json(declared) {
            return Inferred::declared(declared);
        }
        Inferred::of_value(value)
    }

    fn of_value(value: &Value) -> Inferred {
        match value {
            Value::Null => Inferred::Unknown,
            Value::Array(items) => Inferred::Array(Box::new(
                items
                    .iter()
                    .map(Inferred::of_value)
                    .fold(Inferred::Unknown, Inferred::merge),
            )),
            Value::Map(entries) => {
                let (k, v) = entries.iter().fold(
                    (Inferred::Unknown, Inferred::Unknown),
                    |(k, v), (ek, ev)| {
                        (
                            k.merge(Inferred::of_value(ek)),
                            v.merge(Inferred::of_value(ev)),
                        )
                    },
                );
                Inferred::Map(Box::new(k), Box::new(v))
            }
            Value::Struct(s) => Inferred::Struct(
                s.schema()
                    .fields()
                    .iter()
                    .zip(s.values())
                    .map(|(f, v)| InferredField {
                        name: f.name.clone(),
                        ty: Inferred::of(&f.data_type, v),
                        nullable: f.nullable || v.is_null(),
                    })
                    .collect(),
            ),
            Value::Decimal(d) => Inferred::Scalar(DataType::Decimal {
                precision: 38,
                scale: d.scale.min(38),
            }),
            other => Inferred::Scalar(DataType::of(other)),
        }
    }

    fn merge(self, other: Inferred) -> Inferred {
        use Inferred as I;
        match (self, other) {
            (I::Unknown, x) | (x, I::Unknown) => x,
            (I::Scalar(a), I::Scalar(b)) => I::Scalar(merge_scalars(a, b)),
            (I::Array(a), I::Array(b)) => I::Array(Box::new(a.merge(*b))),
            (I::Map(ak, av), I::Map(bk, bv)) => {
                I::Map(Box::new(ak.merge(*bk)), Box::new(av.merge(*bv)))
            }
            (I::Struct(a), I::Struct(b)) => I::Struct(merge_fields(a, b)),
            _ => I::Scalar(DataType::Json),
        }
    }

    fn finish(self) -> DataType {
        match self {
            Inferred::Unknown => DataType::Json,
            Inferred::Scalar(t) => t,
            Inferred::Array(e) => DataType::Array(Box::new(e.finish())),
            Inferred::Map(k, v) => DataType::Map(Box::new(k.finish()), Box::new(v.finish())),
            Inferred::Struct(fields) => DataType::Struct(Arc::new(Schema::new(
                fields
                    .into_iter()
                    .map(|f| Field {
                        name: f.name,
                        data_type: f.ty.finish(),
                        nullable: f.nullable,
                    })
                    .collect(),
            ))),
        }
    }
}

fn merge_scalars(a: DataType, b: DataType) -> DataType {
    use DataType as D;
    if a == b {
        return a;
    }
    match (a, b) {
        (D::Int64, D::Float64) | (D::Float64, D::Int64) => D::Float64,
        (D::Decimal { .. }, D::Float64) | (D::Float64, D::Decimal { .. }) => D::Float64,
        (
            D::Decimal {
                precision: p1,
                scale: s1,
            },
            D::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => {
            let scale = s1.max(s2);
            let integer = p1.saturating_sub(s1).max(p2.saturating_sub(s2));
            D::Decimal {
                precision: integer.saturating_add(scale).min(38),
                scale,
            }
        }
        (D::Int64, D::Decimal { precision, scale })
        | (D::Decimal { precision, scale }, D::Int64) => {
            // An int64 has up to 19 digits.
            let integer = precision.saturating_sub(scale).max(19);
            D::Decimal {
                precision: integer.saturating_add(scale).min(38),
                scale,
            }
        }
        _ => D::Json,
    }
}

/// Fields of both sides by name, in first-seen order; a field on one side
/// only is nullable.
fn merge_fields(a: Vec<InferredField>, b: Vec<InferredField>) -> Vec<InferredField> {
    let mut out = a;
    let mut matched = vec![false; out.len()];
    for field in b {
        match out.iter().position(|f| f.name == field.name) {
            Some(i) => {
                let existing = std::mem::replace(&mut out[i].ty, Inferred::Unknown);
                out[i].ty = existing.merge(field.ty);
                out[i].nullable |= field.nullable;
                matched[i] = true;
            }
            None => {
                out.push(InferredField {
                    nullable: true,
                    ..field
                });
                matched.push(true);
            }
        }
    }
    for (f, m) in out.iter_mut().zip(matched) {
        if !m {
            f.nullable = true;
        }
    }
    out
}

/// Top-level columns being inferred across records.
#[derive(Default)]
struct Columns {
    fields: Vec<InferredField>,
    /// Records that had each column.
    seen: Vec<usize>,
    by_name: HashMap<String, usize>,
    /// Per record schema seen so far: the column of each of its fields, and
    /// whether the field's type needs a look at the values.
    shapes: Vec<(Arc<Schema>, ShapeColumns)>,
}

/// For each field of a record schema: its column, and whether its type
/// needs a look at the values.
type ShapeColumns = Vec<(usize, bool)>;

impl Columns {
    fn add_record(&mut self, record: &Record) {
        let shape = match self
            .shapes
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, &record.schema))
        {
            Some(i) => i,
            None => {
                let map = record
                    .schema
                    .fields()
                    .iter()
                    .map(|f| (self.column(&f.name), contains_json(&f.data_type)))
                    .collect();
                self.shapes.push((record.schema.clone(), map));
                self.shapes.len() - 1
            }
        };
        let map = &self.shapes[shape].1;
        for ((field, value), &(col, look)) in
            record.schema.fields().iter().zip(&record.values).zip(map)
        {
            let column = &mut self.fields[col];
            self.seen[col] += 1;
            if value.is_null() {
                column.nullable = true;
                continue;
            }
            column.nullable |= field.nullable;
            let ty = if look {
                Inferred::of_value(value)
            } else {
                Inferred::declared(&field.data_type)
            };
            if column.ty != ty {
                let existing = std::mem::replace(&mut column.ty, Inferred::Unknown);
                column.ty = existing.merge(ty);
            }
        }
    }

    /// The column called `name`, added when new.
    fn column(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.fields.push(InferredField {
            name: name.to_owned(),
            ty: Inferred::Unknown,
            nullable: false,
        });
        self.seen.push(0);
        self.by_name.insert(name.to_owned(), self.fields.len() - 1);
        self.fields.len() - 1
    }

    fn finish(self, records: usize) -> Arc<Schema> {
        let fields = self
            .fields
            .into_iter()
            .zip(self.seen)
            .map(|(f, seen)| Field {
                name: f.name,
                data_type: f.ty.finish(),
                nullable: f.nullable || seen < records,
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_numbers_and_unknowns() {
        use DataType as D;
        assert_eq!(merge_scalars(D::Int64, D::Float64), D::Float64);
        assert_eq!(
            merge_scalars(
                D::Decimal {
                    precision: 5,
                    scale: 2
                },
                D::Decimal {
                    precision: 10,
                    scale: 0
                }
            ),
            D::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(merge_scalars(D::String, D::Int64), D::Json);
        let empty = Inferred::of_value(&Value::Array(vec![]));
        let ints = Inferred::of_value(&Value::Array(vec![Value::Int64(1)]));
        assert_eq!(empty.merge(ints).finish(), D::Array(Box::new(D::Int64)));
    }

    #[test]
    fn negative_decimal_scale_becomes_whole_numbers() {
        assert_eq!(
            decimal_type(5, -3).unwrap(),
            DataType::Decimal {
                precision: 8,
                scale: 0
            }
        );
        assert!(decimal_type(40, 39).is_err());
    }
}
