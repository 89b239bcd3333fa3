//! The dynamic value held by one field of a record.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeSeq};

use crate::schema::{DataType, Field, Schema};

/// A fixed-point decimal: `unscaled × 10^-scale`.
///
/// ```
/// use connector_core::Decimal;
///
/// let price = Decimal::new(12345, 2);
/// assert_eq!(price.to_string(), "123.45");
/// assert_eq!("-0.05".parse::<Decimal>().unwrap(), Decimal::new(-5, 2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits as an integer.
    pub unscaled: i128,
    /// How many of the digits are after the decimal point.
    pub scale: u8,
}

impl Decimal {
    /// `unscaled × 10^-scale`.
    pub const fn new(unscaled: i128, scale: u8) -> Self {
        Decimal { unscaled, scale }
    }

    /// The same number with another scale; `None` when digits would be lost
    /// or the result overflows.
    pub fn rescale(self, scale: u8) -> Option<Decimal> {
        if scale == self.scale {
            return Some(self);
        }
        if scale > self.scale {
            let factor = 10i128.checked_pow(u32::from(scale - self.scale))?;
            Some(Decimal::new(self.unscaled.checked_mul(factor)?, scale))
        } else {
            let factor = 10i128.checked_pow(u32::from(self.scale - scale))?;
            (self.unscaled % factor == 0).then(|| Decimal::new(self.unscaled / factor, scale))
        }
    }

    /// Nearest `f64` (may lose precision).
    pub fn to_f64(self) -> f64 {
        self.unscaled as f64 / 10f64.powi(i32::from(self.scale))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.unscaled);
        }
        let digits = self.unscaled.unsigned_abs().to_string();
        let scale = usize::from(self.scale);
        let sign = if self.unscaled < 0 { "-" } else { "" };
        if digits.len() <= scale {
            write!(f, "{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
        } else {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{sign}{int}.{frac}")
        }
    }
}

impl std::str::FromStr for Decimal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a decimal number");
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let scale = u8::try_from(frac.len()).map_err(|_| bad())?;
        let mut unscaled: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            unscaled = unscaled
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(b - b'0')))
                .ok_or_else(|| format!("`{s}` has more digits than a 128-bit decimal holds"))?;
        }
        Ok(Decimal::new(if neg { -unscaled } else { unscaled }, scale))
    }
}

/// A nested record value: a schema and one value per field.
#[derive(Debug, Clone, PartialEq)]
pub struct StructValue {
    schema: Arc<Schema>,
    values: Box<[Value]>,
}

impl StructValue {
    /// A struct from its schema and values (one per field, in order).
    ///
    /// Panics when the counts differ.
    pub fn new(schema: Arc<Schema>, values: Vec<Value>) -> Self {
        assert_eq!(
            schema.len(),
            values.len(),
            "struct value needs one value per schema field"
        );
        StructValue {
            schema,
            values: values.into_boxed_slice(),
        }
    }

    /// A struct from name/value pairs, inferring the schema.
    pub fn from_pairs<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        let (fields, values): (Vec<Field>, Vec<Value>) = pairs
            .into_iter()
            .map(|(k, v)| (Field::new(k, DataType::of(&v)), v))
            .unzip();
        StructValue::new(Arc::new(Schema::new(fields)), values)
    }

    /// The struct's schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The values, in schema order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The value of the field called `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schema.index_of(name).map(|i| &self.values[i])
    }

    /// Field name / value pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.schema.names().zip(self.values.iter())
    }

    /// Takes the struct apart.
    pub fn into_parts(self) -> (Arc<Schema>, Vec<Value>) {
        (self.schema, self.values.into_vec())
    }
}

/// The value of one field.
///
/// `Value` serializes to JSON (through `serde`) the way sinks write it:
/// timestamps as RFC 3339 UTC strings, dates as `YYYY-MM-DD`, bytes as
/// base64, decimals as exact strings, structs as objects, maps with string
/// keys as objects (other maps as `[key, value]` pairs).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value.
    #[default]
    Null,
    /// A boolean.
    Boolean(bool),
    /// A 64-bit integer.
    Int64(i64),
    /// A 64-bit float.
    Float64(f64),
    /// UTF-8 text.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Days since 1970-01-01.
    Date(i32),
    /// A fixed-point decimal.
    Decimal(Decimal),
    /// A list.
    Array(Vec<Value>),
    /// A nested record.
    Struct(StructValue),
    /// Key/value pairs, in order.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text of a `String` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An `Int64` value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int64(v) => Some(*v),
            _ => None,
        }
    }

    /// A number as `f64` (`Int64`, `Float64` or `Decimal`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float64(v) => Some(*v),
            Value::Int64(v) => Some(*v as f64),
            Value::Decimal(d) => Some(d.to_f64()),
            _ => None,
        }
    }

    /// A `Boolean` value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(v) => Some(*v),
            _ => None,
        }
    }

    /// The bytes of a `Bytes` value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(v) => Some(v),
            _ => None,
        }
    }

    /// A `Timestamp` value, in microseconds since the epoch.
    pub fn as_timestamp_micros(&self) -> Option<i64> {
        match self {
            Value::Timestamp(v) => Some(*v),
            _ => None,
        }
    }

    /// A `Struct` value.
    pub fn as_struct(&self) -> Option<&StructValue> {
        match self {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// A `Timestamp` from milliseconds since the epoch.
    pub fn timestamp_millis(ms: i64) -> Value {
        Value::Timestamp(ms.saturating_mul(1000))
    }

    /// A `Timestamp` for now.
    pub fn now() -> Value {
        Value::Timestamp(now_micros())
    }

    /// Follows a dotted path (`a.b.c`) through nested structs and
    /// string-keyed maps.
    pub fn get_path<'a>(&'a self, path: &str) -> Option<&'a Value> {
        let mut current = self;
        for part in path.split('.') {
            current = match current {
                Value::Struct(s) => s.get(part)?,
                Value::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(part))
                    .map(|(_, v)| v)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// Converts parsed JSON into a value, inferring struct schemas from
    /// object keys (in the order `serde_json` yields them).
    pub fn from_json(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Boolean(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int64(i),
                None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Struct(StructValue::from_pairs(
                map.into_iter().map(|(k, v)| (k, Value::from_json(v))),
            )),
        }
    }

    /// The value as JSON (see the type's docs for the mapping).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Rough in-memory size in bytes, for metrics and memory bounds.
    pub fn estimated_size(&self) -> usize {
        match self {
            Value::Null | Value::Boolean(_) => 1,
            Value::Int64(_) | Value::Float64(_) | Value::Timestamp(_) => 8,
            Value::Date(_) => 4,
            Value::Decimal(_) => 16,
            Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Array(items) => items.iter().map(Value::estimated_size).sum::<usize>() + 2,
            Value::Struct(s) => s.values.iter().map(Value::estimated_size).sum::<usize>() + 2,
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.estimated_size() + v.estimated_size())
                .sum::<usize>(),
        }
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// Formats microseconds since the epoch as RFC 3339 UTC, with as many
/// fractional digits as needed (`2024-01-02T03:04:05.123Z`).
pub fn format_timestamp(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => micros.to_string(),
    }
}

/// Formats days since the epoch as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(i64::from(days))))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

impl fmt::Display for Value {
    /// Scalars as plain text (strings unquoted), everything else as JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Int64(v) => write!(f, "{v}"),
            Value::Float64(v) => write!(f, "{v}"),
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Timestamp(t) => f.write_str(&format_timestamp(*t)),
            Value::Date(d) => f.write_str(&format_date(*d)),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Array(_) | Value::Struct(_) | Value::Map(_) => {
                f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
            }
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Int64(v) => s.serialize_i64(*v),
            Value::Float64(v) if v.is_finite() => s.serialize_f64(*v),
            Value::Float64(_) => s.serialize_unit(),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Timestamp(t) => s.serialize_str(&format_timestamp(*t)),
            Value::Date(d) => s.serialize_str(&format_date(*d)),
            Value::Decimal(d) => s.collect_str(d),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Struct(st) => {
                let mut map = s.serialize_map(Some(st.values.len()))?;
                for (k, v) in st.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Map(entries) => {
                if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                    let mut map = s.serialize_map(Some(entries.len()))?;
                    for (k, v) in entries {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                } else {
                    let mut seq = s.serialize_seq(Some(entries.len()))?;
                    for pair in entries {
                        seq.serialize_element(&[&pair.0, &pair.1])?;
                    }
                    seq.end()
                }
            }
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v $(as $cast)?)
            }
        })*
    };
}

value_from! {
    bool => Boolean,
    i64 => Int64,
    i32 => Int64 as i64,
    u32 => Int64 as i64,
    f64 => Float64,
    f32 => Float64 as f64,
    String => String,
    Vec<u8> => Bytes,
    Decimal => Decimal,
    Vec<Value> => Array,
    StructValue => Struct,
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_display_and_parse() {
        for (text, d) in [
            ("0.05", Decimal::new(5, 2)),
            ("-12.50", Decimal::new(-1250, 2)),
            ("7", Decimal::new(7, 0)),
            ("-0.001", Decimal::new(-1, 3)),
        ] {
            assert_eq!(d.to_string(), text);
            assert_eq!(text.parse::<Decimal>().unwrap(), d);
        }
        assert!("1.2.3".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
        assert!("abc".parse::<Decimal>().is_err());
        assert_eq!(
            Decimal::new(125, 1).rescale(3),
            Some(Decimal::new(12500, 3))
        );
        assert_eq!(Decimal::new(125, 1).rescale(0), None);
    }

    #[test]
    fn json_serialization() {
        let v = Value::Struct(StructValue::from_pairs([
            ("when", Value::Timestamp(1_700_000_000_123_000)),
            ("day", Value::Date(19_000)),
            ("blob", Value::Bytes(b"hi".to_vec())),
            ("price", Value::Decimal(Decimal::new(1999, 2))),
            ("tags", Value::Array(vec!["a".into(), "b".into()])),
            ("nan", Value::Float64(f64::NAN)),
        ]));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"when":"2023-11-14T22:13:20.123Z","day":"2022-01-08","blob":"aGk=","price":"19.99","tags":["a","b"],"nan":null}"#
        );
    }

    #[test]
    fn from_json_and_paths() {
        let v = Value::from_json(serde_json::json!({"a": {"b": [1, 2.5, "x"]}, "n": null}));
        assert_eq!(v.get_path("a.b.0"), Some(&Value::Int64(1)));
        assert_eq!(v.get_path("a.b.1"), Some(&Value::Float64(2.5)));
        assert_eq!(v.get_path("n"), Some(&Value::Null));
        assert_eq!(v.get_path("a.c"), None);
    }

    #[test]
    fn display_scalars_plainly() {
        assert_eq!(Value::from("hi").to_string(), "hi");
        assert_eq!(Value::Int64(-3).to_string(), "-3");
        assert_eq!(Value::Float64(2.5).to_string(), "2.5");
        assert_eq!(
            Value::Array(vec![1i64.into(), "x".into()]).to_string(),
            r#"[1,"x"]"#
        );
    }
}
