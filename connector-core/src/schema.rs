//! Schemas: ordered, named, typed fields shared as `Arc<Schema>`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::Value;

/// The type of a field.
///
/// `Json` is the dynamic type: a field of type `Json` may hold any [`Value`].
/// Schemaless sources use it for fields whose type cannot be pinned down
/// (a `null` seen first, or arrays mixing element types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// `true` / `false`.
    Boolean,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// UTF-8 text.
    String,
    /// Raw bytes.
    Bytes,
    /// An instant, microseconds since the Unix epoch, UTC.
    Timestamp,
    /// A calendar date, days since 1970-01-01.
    Date,
    /// Fixed-point decimal with `precision` digits, `scale` of them after the point (precision ≤ 38).
    Decimal {
        /// Total number of digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: u8,
    },
    /// A list of values of one type.
    Array(Box<DataType>),
    /// A nested record.
    Struct(Arc<Schema>),
    /// Key/value pairs.
    Map(Box<DataType>, Box<DataType>),
    /// Any value (dynamic).
    Json,
}

impl DataType {
    /// The type a value has on its own, as a schemaless source infers it.
    pub fn of(value: &Value) -> DataType {
        match value {
            Value::Null => DataType::Json,
            Value::Boolean(_) => DataType::Boolean,
            Value::Int64(_) => DataType::Int64,
            Value::Float64(_) => DataType::Float64,
            Value::String(_) => DataType::String,
            Value::Bytes(_) => DataType::Bytes,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::Date(_) => DataType::Date,
            Value::Decimal(d) => DataType::Decimal {
                precision: 38,
                scale: d.scale,
            },
            Value::Array(items) => {
                let mut element: Option<DataType> = None;
                for item in items.iter().filter(|v| !v.is_null()) {
                    let t = DataType::of(item);
                    match &element {
                        None => element = Some(t),
                        Some(e) if *e == t => {}
                        Some(_) => {
                            element = Some(DataType::Json);
                            break;
                        }
                    }
                }
                DataType::Array(Box::new(element.unwrap_or(DataType::Json)))
            }
            Value::Struct(s) => DataType::Struct(s.schema().clone()),
            Value::Map(_) => DataType::Map(Box::new(DataType::Json), Box::new(DataType::Json)),
        }
    }

    /// Whether `value` may be stored in a field of this type (`Null` is
    /// checked by the field's nullability, not here).
    pub fn accepts(&self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) | (DataType::Json, _) => true,
            (DataType::Boolean, Value::Boolean(_))
            | (DataType::Int64, Value::Int64(_))
            | (DataType::Float64, Value::Float64(_))
            | (DataType::String, Value::String(_))
            | (DataType::Bytes, Value::Bytes(_))
            | (DataType::Timestamp, Value::Timestamp(_))
            | (DataType::Date, Value::Date(_))
            | (DataType::Decimal { .. }, Value::Decimal(_))
            | (DataType::Struct(_), Value::Struct(_))
            | (DataType::Map(..), Value::Map(_)) => true,
            (DataType::Array(element), Value::Array(items)) => {
                items.iter().all(|item| element.accepts(item))
            }
            _ => false,
        }
    }

    /// A short lower-case name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            DataType::Boolean => "boolean",
            DataType::Int64 => "int64",
            DataType::Float64 => "float64",
            DataType::String => "string",
            DataType::Bytes => "bytes",
            DataType::Timestamp => "timestamp",
            DataType::Date => "date",
            DataType::Decimal { .. } => "decimal",
            DataType::Array(_) => "array",
            DataType::Struct(_) => "struct",
            DataType::Map(..) => "map",
            DataType::Json => "json",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Decimal { precision, scale } => write!(f, "decimal({precision}, {scale})"),
            DataType::Array(e) => write!(f, "array<{e}>"),
            DataType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            DataType::Struct(s) => {
                f.write_str("struct<")?;
                for (i, field) in s.fields().iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {}", field.name, field.data_type)?;
                }
                f.write_str(">")
            }
            other => f.write_str(other.name()),
        }
    }
}

/// One named, typed column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// Column type.
    pub data_type: DataType,
    /// Whether the column may hold `Null`.
    pub nullable: bool,
}

impl Field {
    /// A nullable field.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Field {
            name: name.into(),
            data_type,
            nullable: true,
        }
    }

    /// A field that must always hold a value.
    pub fn required(name: impl Into<String>, data_type: DataType) -> Self {
        Field {
            name: name.into(),
            data_type,
            nullable: false,
        }
    }
}

/// Schemas with more fields than this get a hash index for name lookups;
/// below it a linear scan is faster.
const INDEX_THRESHOLD: usize = 16;

/// An ordered list of fields. Records point at their schema through an
/// `Arc<Schema>`, so records decoded from the same shape share one.
///
/// ```
/// use connector_core::{DataType, Field, Schema};
///
/// let schema = Schema::new(vec![
///     Field::required("device", DataType::String),
///     Field::new("number", DataType::Float64),
/// ]);
/// assert_eq!(schema.index_of("number"), Some(1));
/// assert_eq!(schema.field(0).name, "device");
/// ```
#[derive(Clone, Default)]
pub struct Schema {
    fields: Vec<Field>,
    index: Option<HashMap<String, usize>>,
}

impl Schema {
    /// A schema from its fields, in order. Field names should be unique; for a
    /// repeated name, lookups find the first.
    pub fn new(fields: Vec<Field>) -> Self {
        let index = (fields.len() > INDEX_THRESHOLD).then(|| {
            let mut map = HashMap::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                map.entry(f.name.clone()).or_insert(i);
            }
            map
        });
        Schema { fields, index }
    }

    /// A schema with no fields.
    pub fn empty() -> Self {
        Schema::default()
    }

    /// The fields, in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The field at position `i`. Panics when out of range.
    pub fn field(&self, i: usize) -> &Field {
        &self.fields[i]
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the schema has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Position of the field called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(map) => map.get(name).copied(),
            None => self.fields.iter().position(|f| f.name == name),
        }
    }

    /// The field called `name`.
    pub fn field_named(&self, name: &str) -> Option<&Field> {
        self.index_of(name).map(|i| &self.fields[i])
    }

    /// Field names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }

    /// Whether `names` are exactly this schema's field names, in order.
    pub fn has_names<'a>(&self, names: impl ExactSizeIterator<Item = &'a str>) -> bool {
        names.len() == self.fields.len() && names.zip(self.names()).all(|(a, b)| a == b)
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl Eq for Schema {}

impl std::hash::Hash for Schema {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.fields.hash(state);
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.fields).finish()
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", field.name, field.data_type)?;
            if !field.nullable {
                f.write_str(" not null")?;
            }
        }
        f.write_str(")")
    }
}

impl FromIterator<Field> for Schema {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        Schema::new(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_schema_uses_index() {
        let schema: Schema = (0..40)
            .map(|i| Field::new(format!("c{i}"), DataType::Int64))
            .collect();
        assert_eq!(schema.index_of("c33"), Some(33));
        assert_eq!(schema.index_of("nope"), None);
    }

    #[test]
    fn display_is_readable() {
        let schema = Schema::new(vec![
            Field::required("id", DataType::Int64),
            Field::new("tags", DataType::Array(Box::new(DataType::String))),
            Field::new(
                "price",
                DataType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
        ]);
        assert_eq!(
            schema.to_string(),
            "(id int64 not null, tags array<string>, price decimal(10, 2))"
        );
    }

    #[test]
    fn inferred_array_types() {
        let v = Value::Array(vec![Value::Int64(1), Value::Null, Value::Int64(2)]);
        assert_eq!(DataType::of(&v), DataType::Array(Box::new(DataType::Int64)));
        let mixed = Value::Array(vec![Value::Int64(1), Value::from("x")]);
        assert_eq!(
            DataType::of(&mixed),
            DataType::Array(Box::new(DataType::Json))
        );
    }
}
