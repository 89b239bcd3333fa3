//! ClickHouse column types: parsing the names `DESCRIBE TABLE` prints, which
//! record types can be written to them, and the column type a record field
//! gets when the sink creates the table.

use std::fmt;

use connector_core::{DataType, Field};

use crate::server::ServerInfo;

/// A ClickHouse column type, as far as RowBinary writing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChType {
    /// `Int8`.
    Int8,
    /// `Int16`.
    Int16,
    /// `Int32`.
    Int32,
    /// `Int64`.
    Int64,
    /// `Int128`.
    Int128,
    /// `Int256`.
    Int256,
    /// `UInt8`.
    UInt8,
    /// `UInt16`.
    UInt16,
    /// `UInt32`.
    UInt32,
    /// `UInt64`.
    UInt64,
    /// `UInt128`.
    UInt128,
    /// `UInt256`.
    UInt256,
    /// `Float32`.
    Float32,
    /// `Float64`.
    Float64,
    /// `Bool`.
    Bool,
    /// `String`.
    String,
    /// `FixedString(n)`.
    FixedString(usize),
    /// `UUID`.
    Uuid,
    /// `Date`: days since the epoch, 16 bits unsigned.
    Date,
    /// `Date32`: days since the epoch, 32 bits signed.
    Date32,
    /// `DateTime` (optionally with a time zone): seconds, 32 bits unsigned.
    DateTime,
    /// `DateTime64(precision[, tz])`: ticks of 10^-precision seconds.
    DateTime64(u8),
    /// `Decimal(precision, scale)` and its `Decimal32/64/128/256(scale)` forms.
    Decimal {
        /// Total digits (1..=76).
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `Enum8('a' = 1, ...)`.
    Enum8(Vec<(String, i8)>),
    /// `Enum16('a' = 1, ...)`.
    Enum16(Vec<(String, i16)>),
    /// `IPv4`.
    Ipv4,
    /// `IPv6`.
    Ipv6,
    /// `Nullable(T)`.
    Nullable(Box<ChType>),
    /// `Array(T)`.
    Array(Box<ChType>),
    /// `Tuple(T1, T2, ...)` or `Tuple(a T1, b T2, ...)`.
    Tuple(Vec<(Option<String>, ChType)>),
    /// `Map(K, V)`.
    Map(Box<ChType>, Box<ChType>),
    /// A type the sink cannot write (`AggregateFunction(...)`, `JSON`, ...),
    /// with its name as the server printed it.
    Unsupported(String),
}

impl ChType {
    /// Parses a type name as `DESCRIBE TABLE` prints it. Wrappers that do
    /// not change the binary form (`LowCardinality`, `SimpleAggregateFunction`)
    /// are unwrapped; anything unknown becomes [`ChType::Unsupported`].
    pub fn parse(name: &str) -> ChType {
        let mut parser = Parser { text: name, pos: 0 };
        match parser.ty() {
            Some(t) if parser.at_end() => t,
            _ => ChType::Unsupported(name.trim().to_owned()),
        }
    }

    /// The type without a `Nullable` wrapper.
    pub fn non_null(&self) -> &ChType {
        match self {
            ChType::Nullable(inner) => inner,
            other => other,
        }
    }

    /// The first part of this type (or of a type inside it) that the sink
    /// cannot write, if any.
    pub fn unsupported_part(&self) -> Option<&str> {
        match self {
            ChType::Unsupported(name) => Some(name),
            ChType::Nullable(t) | ChType::Array(t) => t.unsupported_part(),
            ChType::Map(k, v) => k.unsupported_part().or_else(|| v.unsupported_part()),
            ChType::Tuple(items) => items.iter().find_map(|(_, t)| t.unsupported_part()),
            _ => None,
        }
    }

    /// Whether values of the record type `data_type` can be written to a
    /// column of this type (some values may still be out of range, which
    /// is found per value).
    pub fn accepts(&self, data_type: &DataType) -> bool {
        use ChType as C;
        use DataType as D;
        let target = self.non_null();
        if matches!(data_type, D::Json) {
            return target.unsupported_part().is_none();
        }
        match target {
            C::String | C::FixedString(_) => true,
            C::Int8
            | C::Int16
            | C::Int32
            | C::Int64
            | C::Int128
            | C::Int256
            | C::UInt8
            | C::UInt16
            | C::UInt32
            | C::UInt64
            | C::UInt128
            | C::UInt256 => matches!(
                data_type,
                D::Int64 | D::Boolean | D::Float64 | D::Decimal { .. } | D::String
            ),
            C::Float32 | C::Float64 | C::Decimal { .. } => matches!(
                data_type,
                D::Int64 | D::Float64 | D::Decimal { .. } | D::String
            ),
            C::Bool => matches!(data_type, D::Boolean | D::Int64 | D::String),
            C::Date | C::Date32 => matches!(data_type, D::Date | D::Timestamp | D::String),
            C::DateTime | C::DateTime64(_) => {
                matches!(data_type, D::Timestamp | D::Date | D::Int64 | D::String)
            }
            C::Uuid => matches!(data_type, D::String | D::Bytes),
            C::Ipv4 | C::Ipv6 => matches!(data_type, D::String),
            C::Enum8(_) | C::Enum16(_) => matches!(data_type, D::String | D::Int64),
            C::Array(inner) => match data_type {
                D::Array(element) => inner.accepts(element),
                _ => false,
            },
            C::Tuple(items) => match data_type {
                D::Struct(schema) => {
                    schema.len() == items.len()
                        && items
                            .iter()
                            .zip(schema.fields())
                            .all(|((name, ty), field)| {
                                name.as_ref().is_none_or(|n| *n == field.name)
                                    && ty.accepts(&field.data_type)
                            })
                }
                _ => false,
            },
            C::Map(key, value) => match data_type {
                D::Map(k, v) => key.accepts(k) && value.accepts(v),
                D::Struct(schema) => {
                    key.accepts(&D::String)
                        && schema.fields().iter().all(|f| value.accepts(&f.data_type))
                }
                _ => false,
            },
            C::Nullable(_) | C::Unsupported(_) => false,
        }
    }
}

impl fmt::Display for ChType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChType::Int8 => f.write_str("Int8"),
            ChType::Int16 => f.write_str("Int16"),
            ChType::Int32 => f.write_str("Int32"),
            ChType::Int64 => f.write_str("Int64"),
            ChType::Int128 => f.write_str("Int128"),
            ChType::Int256 => f.write_str("Int256"),
            ChType::UInt8 => f.write_str("UInt8"),
            ChType::UInt16 => f.write_str("UInt16"),
            ChType::UInt32 => f.write_str("UInt32"),
            ChType::UInt64 => f.write_str("UInt64"),
            ChType::UInt128 => f.write_str("UInt128"),
            ChType::UInt256 => f.write_str("UInt256"),
            ChType::Float32 => f.write_str("Float32"),
            ChType::Float64 => f.write_str("Float64"),
            ChType::Bool => f.write_str("Bool"),
            ChType::String => f.write_str("String"),
            ChType::FixedString(n) => write!(f, "FixedString({n})"),
            ChType::Uuid => f.write_str("UUID"),
            ChType::Date => f.write_str("Date"),
            ChType::Date32 => f.write_str("Date32"),
            ChType::DateTime => f.write_str("DateTime"),
            ChType::DateTime64(p) => write!(f, "DateTime64({p})"),
            ChType::Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            ChType::Enum8(items) => write_enum(f, "Enum8", items),
            ChType::Enum16(items) => write_enum(f, "Enum16", items),
            ChType::Ipv4 => f.write_str("IPv4"),
            ChType::Ipv6 => f.write_str("IPv6"),
            ChType::Nullable(t) => write!(f, "Nullable({t})"),
            ChType::Array(t) => write!(f, "Array({t})"),
            ChType::Tuple(items) => {
                f.write_str("Tuple(")?;
                for (i, (name, t)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(name) = name {
                        write!(f, "{name} ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
            ChType::Map(k, v) => write!(f, "Map({k}, {v})"),
            ChType::Unsupported(name) => f.write_str(name),
        }
    }
}

fn write_enum<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    kind: &str,
    items: &[(String, T)],
) -> fmt::Result {
    write!(f, "{kind}(")?;
    for (i, (name, value)) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{} = {value}", quote_string(name))?;
    }
    f.write_str(")")
}

/// Recursive-descent parser over a type name.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.text.len()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(&rest[..len])
    }

    fn number(&mut self) -> Option<i64> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(rest.len(), |(i, _)| i);
        let n = rest[..len].parse().ok()?;
        self.pos += len;
        Some(n)
    }

    /// A single-quoted string with backslash escapes.
    fn string(&mut self) -> Option<String> {
        if !self.eat('\'') {
            return None;
        }
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                }
                '\'' => {
                    self.pos += i + 1;
                    return Some(out);
                }
                other => out.push(other),
            }
        }
        None
    }

    /// Skips a balanced argument list after the opening parenthesis.
    fn skip_args(&mut self) -> Option<()> {
        let mut depth = 1usize;
        let mut in_string = false;
        let mut escaped = false;
        for (i, c) in self.rest().char_indices() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '\'') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '\'' => in_string = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += i + 1;
                        return Some(());
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn ty(&mut self) -> Option<ChType> {
        let start = self.pos;
        let name = self.ident()?;
        let simple = match name {
            "Int8" => Some(ChType::Int8),
            "Int16" => Some(ChType::Int16),
            "Int32" => Some(ChType::Int32),
            "Int64" => Some(ChType::Int64),
            "Int128" => Some(ChType::Int128),
            "Int256" => Some(ChType::Int256),
            "UInt8" => Some(ChType::UInt8),
            "UInt16" => Some(ChType::UInt16),
            "UInt32" => Some(ChType::UInt32),
            "UInt64" => Some(ChType::UInt64),
            "UInt128" => Some(ChType::UInt128),
            "UInt256" => Some(ChType::UInt256),
            "Float32" => Some(ChType::Float32),
            "Float64" => Some(ChType::Float64),
            "Bool" | "Boolean" => Some(ChType::Bool),
            "String" => Some(ChType::String),
            "UUID" => Some(ChType::Uuid),
            "Date" => Some(ChType::Date),
            "Date32" => Some(ChType::Date32),
            "IPv4" => Some(ChType::Ipv4),
            "IPv6" => Some(ChType::Ipv6),
            _ => None,
        };
        if let Some(t) = simple {
            return Some(t);
        }
        let has_args = self.eat('(');
        let t = match (name, has_args) {
            ("DateTime", false) => ChType::DateTime,
            ("DateTime", true) => {
                self.string()?;
                self.eat(')').then_some(ChType::DateTime)?
            }
            ("DateTime64", true) => {
                let precision = u8::try_from(self.number()?).ok().filter(|p| *p <= 9)?;
                if self.eat(',') {
                    self.string()?;
                }
                self.eat(')').then_some(ChType::DateTime64(precision))?
            }
            ("FixedString", true) => {
                let n = usize::try_from(self.number()?).ok()?;
                self.eat(')').then_some(ChType::FixedString(n))?
            }
            ("Decimal", true) => {
                let precision = u8::try_from(self.number()?).ok()?;
                let scale = if self.eat(',') {
                    u8::try_from(self.number()?).ok()?
                } else {
                    0
                };
                self.eat(')')
                    .then_some(ChType::Decimal { precision, scale })?
            }
            ("Decimal32" | "Decimal64" | "Decimal128" | "Decimal256", true) => {
                let precision = match name {
                    "Decimal32" => 9,
                    "Decimal64" => 18,
                    "Decimal128" => 38,
                    _ => 76,
                };
                let scale = u8::try_from(self.number()?).ok()?;
                self.eat(')')
                    .then_some(ChType::Decimal { precision, scale })?
            }
            ("Enum8", true) => ChType::Enum8(self.enum_items()?),
            ("Enum16", true) => ChType::Enum16(self.enum_items()?),
            ("Nullable", true) => {
                let inner = self.ty()?;
                self.eat(')').then(|| ChType::Nullable(Box::new(inner)))?
            }
            ("LowCardinality", true) => {
                let inner = self.ty()?;
                self.eat(')').then_some(inner)?
            }
            ("Array", true) => {
                let inner = self.ty()?;
                self.eat(')').then(|| ChType::Array(Box::new(inner)))?
            }
            ("Map", true) => {
                let key = self.ty()?;
                if !self.eat(',') {
                    return None;
                }
                let value = self.ty()?;
                self.eat(')')
                    .then(|| ChType::Map(Box::new(key), Box::new(value)))?
            }
            ("Tuple", true) => {
                let mut items = Vec::new();
                loop {
                    items.push(self.tuple_element()?);
                    if self.eat(')') {
                        break;
                    }
                    if !self.eat(',') {
                        return None;
                    }
                }
                ChType::Tuple(items)
            }
            ("SimpleAggregateFunction", true) => {
                // SimpleAggregateFunction(func, T) stores plain T values.
                self.ident()?;
                if !self.eat(',') {
                    return None;
                }
                let inner = self.ty()?;
                self.eat(')').then_some(inner)?
            }
            (_, true) => {
                self.skip_args()?;
                ChType::Unsupported(self.text[start..self.pos].trim().to_owned())
            }
            (_, false) => ChType::Unsupported(name.to_owned()),
        };
        Some(t)
    }

    /// `T` or `name T`.
    fn tuple_element(&mut self) -> Option<(Option<String>, ChType)> {
        let save = self.pos;
        if let Some(name) = self.ident() {
            self.skip_ws();
            let next = self.rest().chars().next();
            // `name Type`: an identifier followed by another identifier.
            if next.is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
                let t = self.ty()?;
                return Some((Some(name.to_owned()), t));
            }
        }
        self.pos = save;
        Some((None, self.ty()?))
    }

    fn enum_items<T: TryFrom<i64>>(&mut self) -> Option<Vec<(String, T)>> {
        let mut items = Vec::new();
        loop {
            let name = self.string()?;
            if !self.eat('=') {
                return None;
            }
            let value = T::try_from(self.number()?).ok()?;
            items.push((name, value));
            if self.eat(')') {
                return Some(items);
            }
            if !self.eat(',') {
                return None;
            }
        }
    }
}

/// Quotes an identifier with backquotes (`` `my table` ``).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// Quotes a string literal with single quotes.
pub fn quote_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// The column type the sink declares for `field` when it creates the table,
/// given what the server supports:
///
/// | record type | column type |
/// | --- | --- |
/// | boolean | `Bool` (21.12+), else `UInt8` |
/// | int64 | `Int64` |
/// | float64 | `Float64` |
/// | string, bytes | `String` |
/// | timestamp | `DateTime64(6, 'UTC')` (20.1+), else `DateTime('UTC')` (whole seconds) |
/// | date | `Date32` (21.9+), else `Date` |
/// | decimal(p, s) | `Decimal(p, s)` |
/// | array\<t\> | `Array(t)`, with `Nullable` elements where ClickHouse allows it |
/// | struct, map, json | `String` holding JSON |
///
/// Nullable fields become `Nullable(..)`, except arrays (ClickHouse has no
/// nullable arrays: a NULL array is written as an empty one).
pub fn column_type_for(field: &Field, server: &ServerInfo) -> String {
    let base = ddl_type(&field.data_type, server);
    if field.nullable && can_be_nullable(&field.data_type) {
        format!("Nullable({base})")
    } else {
        base
    }
}

fn can_be_nullable(data_type: &DataType) -> bool {
    !matches!(data_type, DataType::Array(_))
}

fn ddl_type(data_type: &DataType, server: &ServerInfo) -> String {
    match data_type {
        DataType::Boolean if server.supports_bool() => "Bool".into(),
        DataType::Boolean => "UInt8".into(),
        DataType::Int64 => "Int64".into(),
        DataType::Float64 => "Float64".into(),
        DataType::String | DataType::Bytes => "String".into(),
        DataType::Timestamp if server.supports_datetime64() => "DateTime64(6, 'UTC')".into(),
        DataType::Timestamp => "DateTime('UTC')".into(),
        DataType::Date if server.supports_date32() => "Date32".into(),
        DataType::Date => "Date".into(),
        DataType::Decimal { precision, scale } => {
            let precision = (*precision).clamp(1, 38);
            format!("Decimal({precision}, {})", (*scale).min(precision))
        }
        DataType::Array(element) => {
            let inner = ddl_type(element, server);
            if can_be_nullable(element) {
                format!("Array(Nullable({inner}))")
            } else {
                format!("Array({inner})")
            }
        }
        _ => "String".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_describe_prints() {
        let cases = [
            ("Int64", ChType::Int64),
            ("DateTime('UTC')", ChType::DateTime),
            ("DateTime64(3, 'Europe/Berlin')", ChType::DateTime64(3)),
            (
                "Decimal(10, 2)",
                ChType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            (
                "Decimal64(4)",
                ChType::Decimal {
                    precision: 18,
                    scale: 4,
                },
            ),
            (
                "Nullable(FixedString(3))",
                ChType::Nullable(Box::new(ChType::FixedString(3))),
            ),
            ("LowCardinality(String)", ChType::String),
            (
                "Array(Array(Nullable(Int8)))",
                ChType::Array(Box::new(ChType::Array(Box::new(ChType::Nullable(
                    Box::new(ChType::Int8),
                ))))),
            ),
            (
                "Enum8('a' = 1, 'it\\'s' = -2)",
                ChType::Enum8(vec![("a".into(), 1), ("it's".into(), -2)]),
            ),
            (
                "Tuple(a Int64, b Array(String))",
                ChType::Tuple(vec![
                    (Some("a".into()), ChType::Int64),
                    (Some("b".into()), ChType::Array(Box::new(ChType::String))),
                ]),
            ),
            (
                "Tuple(Int64, String)",
                ChType::Tuple(vec![(None, ChType::Int64), (None, ChType::String)]),
            ),
            (
                "Map(String, UInt64)",
                ChType::Map(Box::new(ChType::String), Box::new(ChType::UInt64)),
            ),
            ("SimpleAggregateFunction(sum, UInt64)", ChType::UInt64),
        ];
        for (text, expected) in cases {
            assert_eq!(ChType::parse(text), expected, "{text}");
        }
    }

    #[test]
    fn unknown_types_are_unsupported_with_their_name() {
        let t = ChType::parse("AggregateFunction(uniq, String)");
        assert_eq!(
            t,
            ChType::Unsupported("AggregateFunction(uniq, String)".into())
        );
        let nested = ChType::parse("Array(AggregateFunction(sum, UInt64))");
        assert_eq!(
            nested.unsupported_part(),
            Some("AggregateFunction(sum, UInt64)")
        );
        assert!(!nested.accepts(&DataType::Json));
    }

    #[test]
    fn compatibility() {
        let array_of_strings = DataType::Array(Box::new(DataType::String));
        assert!(ChType::parse("Array(String)").accepts(&array_of_strings));
        assert!(!ChType::parse("Int64").accepts(&array_of_strings));
        assert!(ChType::parse("String").accepts(&array_of_strings));
        assert!(!ChType::parse("Int64").accepts(&DataType::Timestamp));
        assert!(ChType::parse("Nullable(DateTime)").accepts(&DataType::Timestamp));
        assert!(ChType::parse("UInt8").accepts(&DataType::Boolean));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a`b"), "`a\\`b`");
        assert_eq!(quote_string("it's\n"), "'it\\'s\\n'");
    }
}
