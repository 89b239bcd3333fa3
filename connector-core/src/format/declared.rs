//! Declared schemas (the `schema` property) and the conversion of decoded
//! values to the declared types.
//!
//! Type names are those of the product documents: `bigint`, `float`,
//! `string`, `datetime`, `boolean`, `array`, `struct`, `bytea`; `array<T>`
//! and `struct<name T, ...>` declare element and field types (a bare
//! `array`/`struct` keeps whatever the payload holds). The library's own
//! names are accepted too (`int64`, `float64`, `timestamp`, `bytes`, `date`,
//! `decimal(p, s)`, `map<K, V>`, `json`).
//!
//! A schema is written as text, `id bigint, name string, tags array<string>`,
//! or as JSON: a list of `{"name": "id", "type": "bigint"}` objects (nested
//! with `"fields": [...]` for a struct and `"items": T` for an array), or an
//! object `{"id": "bigint", ...}` (a JSON object given as a string keeps its
//! key order; one already parsed into a property map is ordered by name).
//!
//! Conversion rules (SPEC "Type conversion with a declared schema"):
//! - bigint: whole numbers (`12.0` too) and strings holding one; `12.5` is an error.
//! - float: any number, or a string holding one.
//! - string: strings; numbers and booleans become their text.
//! - boolean: booleans, the strings `true`/`false`/`1`/`0`, the numbers 1/0.
//! - datetime: numbers are Unix epoch milliseconds; strings are parsed with
//!   the field's timestamp format, else RFC 3339.
//! - bytea: base64 strings.
//! - array: elements converted recursively; struct: objects, or a string
//!   holding a JSON object.
//! - An object where a scalar is declared, or an array where a non-array is
//!   declared, is an error naming the field.
//! - A declared field that is missing is null, or an error under strict
//!   validation.
//!
//! ```
//! use connector_core::format::declared::parse_schema;
//! use connector_core::DataType;
//!
//! let schema = parse_schema(&"id bigint, tags array<string>, at datetime".into()).unwrap();
//! assert_eq!(schema.field(1).data_type, DataType::Array(Box::new(DataType::String)));
//! assert_eq!(schema.field(2).data_type, DataType::Timestamp);
//! ```

use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value as Json;

use crate::format::timestamp::TimestampFormat;
use crate::schema::{DataType, Field, Schema};
use crate::value::{Decimal, StructValue, Value};

/// Parses the `schema` property (text, a JSON list, or a JSON object).
pub fn parse_schema(value: &Json) -> Result<Schema, String> {
    let fields = match value {
        Json::String(text) => {
            let t = text.trim();
            if t.starts_with('[') || t.starts_with('{') {
                let ordered: Ordered =
                    serde_json::from_str(t).map_err(|e| format!("not valid JSON: {e}"))?;
                fields_of_ordered(&ordered)?
            } else {
                parse_field_list(t)?
            }
        }
        other => fields_of_ordered(&Ordered::from(other.clone()))?,
    };
    if fields.is_empty() {
        return Err("the schema declares no fields".into());
    }
    let mut seen = std::collections::HashSet::new();
    for f in &fields {
        if !seen.insert(f.name.as_str()) {
            return Err(format!("field `{}` is declared twice", f.name));
        }
    }
    Ok(Schema::new(fields))
}

/// Parses one type name (`bigint`, `array<string>`, `struct<a bigint>`, ...).
pub fn parse_type(text: &str) -> Result<DataType, String> {
    let mut p = TypeParser { s: text, pos: 0 };
    let t = p.data_type()?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(format!("unexpected `{}` in type `{text}`", &text[p.pos..]));
    }
    Ok(t)
}

fn parse_field_list(text: &str) -> Result<Vec<Field>, String> {
    let mut p = TypeParser { s: text, pos: 0 };
    let fields = p.fields(None)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(format!(
            "unexpected `{}` in schema `{text}`",
            &text[p.pos..]
        ));
    }
    Ok(fields)
}

struct TypeParser<'a> {
    s: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.s[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.s[start..];
        let (quoted, body) = match rest.chars().next() {
            Some(q @ ('`' | '"')) => (Some(q), &rest[1..]),
            _ => (None, rest),
        };
        if let Some(q) = quoted
            && let Some(end) = body.find(q)
        {
            self.pos = start + 1 + end + 1;
            return &self.s[start + 1..start + 1 + end];
        }
        let len = body
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | '<' | '>' | '(' | ')'))
            .unwrap_or(body.len());
        self.pos = start + len;
        &self.s[start..start + len]
    }

    /// `name type, name type` up to `close` (or the end).
    fn fields(&mut self, close: Option<char>) -> Result<Vec<Field>, String> {
        let mut fields = Vec::new();
        loop {
            if let Some(c) = close
                && self.eat(c)
            {
                return Ok(fields);
            }
            let name = self.word().to_owned();
            if name.is_empty() {
                self.skip_ws();
                if self.pos == self.s.len() && close.is_none() {
                    return Ok(fields);
                }
                return Err(format!(
                    "expected a field name at byte {} of `{}`",
                    self.pos, self.s
                ));
            }
            let data_type = self
                .data_type()
                .map_err(|e| format!("field `{name}`: {e}"))?;
            fields.push(Field::new(name, data_type));
            if !self.eat(',') {
                match close {
                    Some(c) if self.eat(c) => return Ok(fields),
                    Some(c) => {
                        return Err(format!(
                            "expected `,` or `{c}` at byte {} of `{}`",
                            self.pos, self.s
                        ));
                    }
                    None => return Ok(fields),
                }
            }
        }
    }

    fn data_type(&mut self) -> Result<DataType, String> {
        let name = self.word().to_ascii_lowercase();
        Ok(match name.as_str() {
            "bigint" | "int" | "integer" | "int64" | "long" => DataType::Int64,
            "float" | "double" | "float64" | "number" => DataType::Float64,
            "string" | "text" | "varchar" => DataType::String,
            "datetime" | "timestamp" => DataType::Timestamp,
            "boolean" | "bool" => DataType::Boolean,
            "bytea" | "bytes" | "binary" => DataType::Bytes,
            "date" => DataType::Date,
            "json" | "any" => DataType::Json,
            "decimal" => {
                if !self.eat('(') {
                    return Ok(DataType::Decimal {
                        precision: 38,
                        scale: 0,
                    });
                }
                let precision = self
                    .word()
                    .parse::<u8>()
                    .map_err(|_| "bad decimal precision")?;
                let scale = if self.eat(',') {
                    self.word().parse::<u8>().map_err(|_| "bad decimal scale")?
                } else {
                    0
                };
                if !self.eat(')') || precision == 0 || precision > 38 || scale > precision {
                    return Err("expected `decimal(precision, scale)` with 1 ≤ precision ≤ 38 and scale ≤ precision".into());
                }
                DataType::Decimal { precision, scale }
            }
            "array" => {
                if self.eat('<') {
                    let element = self.data_type()?;
                    if !self.eat('>') {
                        return Err("expected `>` after the array element type".into());
                    }
                    DataType::Array(Box::new(element))
                } else {
                    DataType::Array(Box::new(DataType::Json))
                }
            }
            "struct" | "record" | "object" => {
                if self.eat('<') {
                    let fields = self.fields(Some('>'))?;
                    DataType::Struct(Arc::new(Schema::new(fields)))
                } else {
                    DataType::Json
                }
            }
            "map" => {
                if !self.eat('<') {
                    return Ok(DataType::Map(
                        Box::new(DataType::String),
                        Box::new(DataType::Json),
                    ));
                }
                let k = self.data_type()?;
                if !self.eat(',') {
                    return Err("expected `map<key, value>`".into());
                }
                let v = self.data_type()?;
                if !self.eat('>') {
                    return Err("expected `>` after the map value type".into());
                }
                DataType::Map(Box::new(k), Box::new(v))
            }
            "" => return Err("missing type".into()),
            other => {
                return Err(format!(
                    "unknown type `{other}` (expected bigint, float, string, datetime, boolean, array, struct or bytea)"
                ));
            }
        })
    }
}

/// JSON with object keys in document order.
#[derive(Debug, Clone)]
enum Ordered {
    Scalar(Json),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl From<Json> for Ordered {
    fn from(v: Json) -> Self {
        match v {
            Json::Array(items) => Ordered::Array(items.into_iter().map(Ordered::from).collect()),
            Json::Object(map) => {
                Ordered::Object(map.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
            other => Ordered::Scalar(other),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Json::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Json::String(v.to_owned())))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Json::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

fn fields_of_ordered(value: &Ordered) -> Result<Vec<Field>, String> {
    match value {
        Ordered::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Ordered::Scalar(Json::String(s)) => {
                    let mut fields = parse_field_list(s)?;
                    match fields.len() {
                        1 => Ok(fields.remove(0)),
                        _ => Err(format!("schema entry {i} `{s}` must be one `name type`")),
                    }
                }
                Ordered::Object(entries) => {
                    field_of_object(entries).map_err(|e| format!("schema entry {i}: {e}"))
                }
                _ => Err(format!(
                    "schema entry {i} must be an object with `name` and `type`"
                )),
            })
            .collect(),
        Ordered::Object(entries) => entries
            .iter()
            .map(|(name, t)| {
                Ok(Field::new(
                    name.clone(),
                    type_of_ordered(t).map_err(|e| format!("field `{name}`: {e}"))?,
                ))
            })
            .collect(),
        Ordered::Scalar(Json::String(s)) => parse_field_list(s),
        Ordered::Scalar(_) => Err("expected a list of fields or an object of `name: type`".into()),
    }
}

fn field_of_object(entries: &[(String, Ordered)]) -> Result<Field, String> {
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let name = match get("name") {
        Some(Ordered::Scalar(Json::String(n))) if !n.is_empty() => n.clone(),
        _ => return Err("missing `name`".into()),
    };
    let data_type = type_of_object(entries).map_err(|e| format!("field `{name}`: {e}"))?;
    let nullable = !matches!(get("nullable"), Some(Ordered::Scalar(Json::Bool(false))));
    Ok(Field {
        name,
        data_type,
        nullable,
    })
}

/// A type given as `"bigint"`, as `{"type": .., "items"/"fields": ..}`, as a
/// list of fields or as an object of fields.
fn type_of_ordered(value: &Ordered) -> Result<DataType, String> {
    match value {
        Ordered::Scalar(Json::String(s)) => parse_type(s),
        Ordered::Object(entries) if entries.iter().any(|(k, _)| k == "type") => {
            type_of_object(entries)
        }
        Ordered::Object(_) | Ordered::Array(_) => Ok(DataType::Struct(Arc::new(Schema::new(
            fields_of_ordered(value)?,
        )))),
        Ordered::Scalar(_) => Err("expected a type name".into()),
    }
}

fn type_of_object(entries: &[(String, Ordered)]) -> Result<DataType, String> {
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let base = match get("type") {
        Some(t) => type_of_ordered(t)?,
        None => return Err("missing `type`".into()),
    };
    Ok(match base {
        DataType::Array(element) => match get("items") {
            Some(items) => DataType::Array(Box::new(type_of_ordered(items)?)),
            None => DataType::Array(element),
        },
        DataType::Json if get("fields").is_some() => DataType::Struct(Arc::new(Schema::new(
            fields_of_ordered(get("fields").unwrap_or(&Ordered::Array(vec![])))?,
        ))),
        other => other,
    })
}

/// Converts decoded values to a declared schema.
#[derive(Debug, Clone)]
pub struct Converter {
    /// Missing fields are errors instead of null.
    pub strict: bool,
    /// Format of string and number `datetime` values.
    pub timestamps: TimestampFormat,
    /// A top-level field whose datetime values use their own format.
    pub field_format: Option<(String, TimestampFormat)>,
}

impl Default for Converter {
    fn default() -> Self {
        Converter {
            strict: false,
            timestamps: TimestampFormat::Rfc3339,
            field_format: None,
        }
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::Int64(_) | Value::Float64(_) | Value::Decimal(_) => "a number",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Timestamp(_) | Value::Date(_) => "a timestamp",
        Value::Array(_) => "an array",
        Value::Struct(_) | Value::Map(_) => "an object",
    }
}

impl Converter {
    /// The timestamp format for a top-level field.
    pub fn format_for(&self, field: &str) -> &TimestampFormat {
        match &self.field_format {
            Some((name, f)) if name == field => f,
            _ => &self.timestamps,
        }
    }

    /// Converts a top-level field's value; errors name the field.
    pub fn field(&self, name: &str, value: Value, ty: &DataType) -> Result<Value, String> {
        self.convert(value, ty, self.format_for(name), name)
    }

    /// Builds the values of `schema` from name/value pairs: undeclared names
    /// are dropped, missing ones null (or an error when strict).
    pub fn record(
        &self,
        schema: &Schema,
        pairs: impl IntoIterator<Item = (String, Value)>,
        path: &str,
    ) -> Result<Vec<Value>, String> {
        let mut values: Vec<Option<Value>> = vec![None; schema.len()];
        for (name, value) in pairs {
            if let Some(i) = schema.index_of(&name) {
                let field = schema.field(i);
                let full = join(path, &field.name);
                let format = if path.is_empty() {
                    self.format_for(&field.name)
                } else {
                    &self.timestamps
                };
                values[i] = Some(self.convert(value, &field.data_type, format, &full)?);
            }
        }
        self.finish(schema, values, path)
    }

    /// Fills in missing fields (null, or an error when strict or when the
    /// field is declared not nullable).
    pub fn finish(
        &self,
        schema: &Schema,
        values: Vec<Option<Value>>,
        path: &str,
    ) -> Result<Vec<Value>, String> {
        values
            .into_iter()
            .zip(schema.fields())
            .map(|(v, field)| match v {
                Some(Value::Null) | None if !field.nullable => Err(format!(
                    "field `{}` is declared not null but is missing or null",
                    join(path, &field.name)
                )),
                Some(v) => Ok(v),
                None if self.strict => Err(format!(
                    "field `{}` is missing (strict validation)",
                    join(path, &field.name)
                )),
                None => Ok(Value::Null),
            })
            .collect()
    }

    /// Converts one value to `ty`; `path` names the field in errors.
    pub fn convert(
        &self,
        value: Value,
        ty: &DataType,
        format: &TimestampFormat,
        path: &str,
    ) -> Result<Value, String> {
        let mismatch = |v: &Value| {
            format!(
                "field `{path}`: expected {} but got {} ({})",
                type_words(ty),
                kind_name(v),
                short(v)
            )
        };
        Ok(match (ty, value) {
            (_, Value::Null) => Value::Null,
            (DataType::Json, v) => v,
            (DataType::Int64, Value::Int64(n)) => Value::Int64(n),
            (DataType::Int64, Value::Float64(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                Value::Int64(f as i64)
            }
            (DataType::Int64, Value::Decimal(d)) if d.rescale(0).is_some() => {
                let whole = d.rescale(0).map_or(0, |d| d.unscaled);
                Value::Int64(
                    i64::try_from(whole)
                        .map_err(|_| format!("field `{path}`: {d} does not fit a bigint"))?,
                )
            }
            (DataType::Int64, Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(n) => Value::Int64(n),
                Err(_) => {
                    return Err(format!(
                        "field `{path}`: expected a bigint but got the string `{s}`"
                    ));
                }
            },
            (DataType::Float64, Value::Float64(f)) => Value::Float64(f),
            (DataType::Float64, Value::Int64(n)) => Value::Float64(n as f64),
            (DataType::Float64, Value::Decimal(d)) => Value::Float64(d.to_f64()),
            (DataType::Float64, Value::String(s)) => match s.trim().parse::<f64>() {
                Ok(f) => Value::Float64(f),
                Err(_) => {
                    return Err(format!(
                        "field `{path}`: expected a float but got the string `{s}`"
                    ));
                }
            },
            (DataType::String, Value::String(s)) => Value::String(s),
            (
                DataType::String,
                v @ (Value::Int64(_) | Value::Float64(_) | Value::Decimal(_) | Value::Boolean(_)),
            ) => Value::String(v.to_string()),
            (DataType::Boolean, Value::Boolean(b)) => Value::Boolean(b),
            (DataType::Boolean, Value::Int64(n @ (0 | 1))) => Value::Boolean(n == 1),
            (DataType::Boolean, Value::String(s)) => match s.trim() {
                "1" => Value::Boolean(true),
                "0" => Value::Boolean(false),
                t if t.eq_ignore_ascii_case("true") => Value::Boolean(true),
                t if t.eq_ignore_ascii_case("false") => Value::Boolean(false),
                _ => {
                    return Err(format!(
                        "field `{path}`: expected a boolean (`true`, `false`, `1`, `0`) but got `{s}`"
                    ));
                }
            },
            (DataType::Timestamp, Value::Timestamp(t)) => Value::Timestamp(t),
            (DataType::Timestamp, Value::Int64(n)) => Value::Timestamp(
                format
                    .from_i64(n)
                    .ok_or_else(|| format!("field `{path}`: timestamp {n} is out of range"))?,
            ),
            (DataType::Timestamp, Value::Float64(n)) => Value::Timestamp(
                format
                    .from_f64(n)
                    .ok_or_else(|| format!("field `{path}`: timestamp {n} is out of range"))?,
            ),
            (DataType::Timestamp, Value::String(s)) => Value::Timestamp(
                format
                    .parse_str(&s)
                    .map_err(|e| format!("field `{path}`: {e}"))?,
            ),
            (DataType::Date, Value::Date(d)) => Value::Date(d),
            (DataType::Date, Value::Int64(n)) => Value::Date(
                i32::try_from(n)
                    .map_err(|_| format!("field `{path}`: date {n} is out of range"))?,
            ),
            (DataType::Date, Value::String(s)) => {
                let date = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map_err(|_| format!("field `{path}`: `{s}` is not a date (YYYY-MM-DD)"))?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                Value::Date(i32::try_from((date - epoch).num_days()).unwrap_or(i32::MAX))
            }
            (
                DataType::Decimal { scale, .. },
                v @ (Value::Int64(_) | Value::Float64(_) | Value::String(_) | Value::Decimal(_)),
            ) => {
                let d = match &v {
                    Value::Decimal(d) => *d,
                    other => other
                        .to_string()
                        .parse::<Decimal>()
                        .map_err(|e| format!("field `{path}`: {e}"))?,
                };
                Value::Decimal(
                    d.rescale(*scale)
                        .ok_or_else(|| format!("field `{path}`: {d} does not fit scale {scale}"))?,
                )
            }
            (DataType::Bytes, Value::Bytes(b)) => Value::Bytes(b),
            (DataType::Bytes, Value::String(s)) => {
                Value::Bytes(decode_base64(&s).ok_or_else(|| {
                    format!(
                        "field `{path}`: expected base64 text for bytea but got `{}`",
                        truncate(&s)
                    )
                })?)
            }
            (DataType::Array(element), Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| self.convert(item, element, format, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            (DataType::Struct(schema), Value::Struct(s)) => {
                let (inner, values) = s.into_parts();
                let pairs = inner.fields().iter().map(|f| f.name.clone()).zip(values);
                Value::Struct(StructValue::new(
                    schema.clone(),
                    self.record(schema, pairs, path)?,
                ))
            }
            (DataType::Struct(schema), Value::Map(entries)) => {
                let pairs = entries.into_iter().map(|(k, v)| (k.to_string(), v));
                Value::Struct(StructValue::new(
                    schema.clone(),
                    self.record(schema, pairs, path)?,
                ))
            }
            (DataType::Struct(_), Value::String(s)) if s.trim_start().starts_with('{') => {
                let json: Json = serde_json::from_str(&s)
                    .map_err(|e| format!("field `{path}`: the string is not a JSON object: {e}"))?;
                return self.convert(Value::from_json(json), ty, format, path);
            }
            (DataType::Map(k, v), Value::Struct(s)) => Value::Map(
                s.iter()
                    .map(|(name, value)| {
                        let key = self.convert(Value::String(name.to_owned()), k, format, path)?;
                        Ok((
                            key,
                            self.convert(value.clone(), v, format, &join(path, name))?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            (DataType::Map(k, v), Value::Map(entries)) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| {
                        let name = key.to_string();
                        Ok((
                            self.convert(key, k, format, path)?,
                            self.convert(value, v, format, &join(path, &name))?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            (_, v) => return Err(mismatch(&v)),
        })
    }
}

fn type_words(ty: &DataType) -> String {
    match ty {
        DataType::Int64 => "a bigint".into(),
        DataType::Float64 => "a float".into(),
        DataType::String => "a string".into(),
        DataType::Timestamp => "a datetime".into(),
        DataType::Boolean => "a boolean".into(),
        DataType::Bytes => "bytea (base64 text)".into(),
        DataType::Array(_) => "an array".into(),
        DataType::Struct(_) => "a struct (an object)".into(),
        other => format!("{other}"),
    }
}

fn short(v: &Value) -> String {
    truncate(&v.to_string())
}

fn truncate(s: &str) -> String {
    const MAX: usize = 40;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Standard base64 (padded or not), then the URL-safe alphabet.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = s.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(rfc: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn schema_forms_agree() {
        let text = parse_schema(&"id bigint, name string, tags array<string>, user struct<id bigint, at datetime>, raw bytea".into()).unwrap();
        let json_list = parse_schema(&serde_json::json!([
            {"name": "id", "type": "bigint"},
            {"name": "name", "type": "string"},
            {"name": "tags", "type": "array", "items": "string"},
            {"name": "user", "type": "struct", "fields": [{"name": "id", "type": "bigint"}, "at datetime"]},
            {"name": "raw", "type": "bytea"}
        ]))
        .unwrap();
        let json_text = parse_schema(&r#"{"id": "bigint", "name": "string", "tags": "array<string>", "user": {"id": "bigint", "at": "datetime"}, "raw": "bytea"}"#.into()).unwrap();
        assert_eq!(text, json_list);
        assert_eq!(text, json_text);
        assert_eq!(
            text.to_string(),
            "(id int64, name string, tags array<string>, user struct<id int64, at timestamp>, raw bytes)"
        );
    }

    #[test]
    fn schema_errors() {
        for (bad, want) in [
            ("id bigint, id string", "declared twice"),
            ("id integerish", "unknown type `integerish`"),
            ("tags array<string", "expected `>`"),
            ("", "no fields"),
            ("[{\"type\": \"bigint\"}]", "missing `name`"),
            ("[1]", "must be an object"),
        ] {
            let err = parse_schema(&bad.into()).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn conversion_rules() {
        let c = Converter::default();
        let f = TimestampFormat::Rfc3339;
        let conv = |v: Value, t: &str| c.convert(v, &parse_type(t).unwrap(), &f, "x");
        assert_eq!(conv(Value::Int64(3), "bigint"), Ok(Value::Int64(3)));
        assert_eq!(conv(Value::Float64(3.0), "bigint"), Ok(Value::Int64(3)));
        assert!(
            conv(Value::Float64(12.5), "bigint")
                .unwrap_err()
                .contains("expected a bigint but got a number (12.5)")
        );
        assert_eq!(conv(Value::from("42"), "bigint"), Ok(Value::Int64(42)));
        assert_eq!(conv(Value::Int64(2), "float"), Ok(Value::Float64(2.0)));
        assert_eq!(conv(Value::Float64(2.5), "string"), Ok(Value::from("2.5")));
        assert_eq!(conv(Value::from("1"), "boolean"), Ok(Value::Boolean(true)));
        assert_eq!(
            conv(Value::from("FALSE"), "boolean"),
            Ok(Value::Boolean(false))
        );
        assert!(conv(Value::from("yes"), "boolean").is_err());
        assert_eq!(
            conv(Value::Int64(1500), "datetime"),
            Ok(Value::Timestamp(1_500_000))
        );
        assert_eq!(
            conv(Value::from("2024-01-02T03:04:05Z"), "datetime"),
            Ok(Value::Timestamp(ts("2024-01-02T03:04:05Z")))
        );
        assert_eq!(
            conv(Value::from("aGk="), "bytea"),
            Ok(Value::Bytes(b"hi".to_vec()))
        );
        assert!(conv(Value::from("not base64!"), "bytea").is_err());
        assert_eq!(
            conv(
                Value::Array(vec![Value::from("1"), Value::Int64(2)]),
                "array<bigint>"
            ),
            Ok(Value::Array(vec![Value::Int64(1), Value::Int64(2)]))
        );
        let err = conv(
            Value::Array(vec![Value::Int64(1), Value::Float64(1.5)]),
            "array<bigint>",
        )
        .unwrap_err();
        assert!(err.contains("field `x[1]`"), "{err}");
        let obj = Value::from_json(serde_json::json!({"a": 1}));
        assert!(
            conv(obj.clone(), "string")
                .unwrap_err()
                .contains("expected a string but got an object")
        );
        assert!(
            conv(Value::Array(vec![]), "bigint")
                .unwrap_err()
                .contains("got an array")
        );
        let s = conv(Value::from(r#"{"a": "7", "b": true}"#), "struct<a bigint>").unwrap();
        assert_eq!(s.get_path("a"), Some(&Value::Int64(7)));
        assert_eq!(s.as_struct().unwrap().schema().len(), 1);
        assert_eq!(
            conv(Value::from("12.50"), "decimal(10, 2)"),
            Ok(Value::Decimal(Decimal::new(1250, 2)))
        );
    }

    #[test]
    fn missing_fields_null_or_strict() {
        let schema = parse_schema(&"a bigint, b string".into()).unwrap();
        let lenient = Converter::default();
        let values = lenient
            .record(
                &schema,
                [
                    ("a".to_owned(), Value::Int64(1)),
                    ("zz".to_owned(), Value::Int64(9)),
                ],
                "",
            )
            .unwrap();
        assert_eq!(values, vec![Value::Int64(1), Value::Null]);
        let strict = Converter {
            strict: true,
            ..Converter::default()
        };
        let err = strict
            .record(&schema, [("a".to_owned(), Value::Int64(1))], "")
            .unwrap_err();
        assert_eq!(err, "field `b` is missing (strict validation)");
    }
}
