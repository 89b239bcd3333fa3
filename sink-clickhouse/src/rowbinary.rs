//! Writing record values in ClickHouse's `RowBinary` format.
//!
//! Each value is converted to its column's type here, so that a value that
//! does not fit (300 for a `UInt8`, an unknown enum name, a string longer
//! than its `FixedString`) is refused with a precise reason for that one
//! row, before anything is sent. NULL in a column that is not `Nullable`
//! becomes the column's default value, as ClickHouse's own
//! `input_format_null_as_default` does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use connector_core::{Decimal, Value};

use crate::types::ChType;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Appends `value` converted to `ty`; on error the buffer may hold a partial
/// value (the caller truncates to the row start).
pub fn write_value(buf: &mut Vec<u8>, ty: &ChType, value: &Value) -> Result<(), String> {
    if let ChType::Nullable(inner) = ty {
        if value.is_null() {
            buf.push(1);
            return Ok(());
        }
        buf.push(0);
        return write_value(buf, inner, value);
    }
    if value.is_null() {
        write_default(buf, ty);
        return Ok(());
    }
    match ty {
        ChType::String => {
            match value {
                Value::String(s) => write_bytes(buf, s.as_bytes()),
                Value::Bytes(b) => write_bytes(buf, b),
                other => write_bytes(buf, other.to_string().as_bytes()),
            }
            Ok(())
        }
        ChType::Float64 => {
            buf.extend_from_slice(&to_f64(value)?.to_le_bytes());
            Ok(())
        }
        ChType::Float32 => {
            let v = to_f64(value)?;
            // Rounding to the nearest f32 is what a Float32 column means.
            #[allow(clippy::cast_possible_truncation)]
            let narrowed = v as f32;
            if v.is_finite() && !narrowed.is_finite() {
                return Err(format!("{} is out of the Float32 range", show(value)));
            }
            buf.extend_from_slice(&narrowed.to_le_bytes());
            Ok(())
        }
        ChType::Int8 => write_int::<1>(buf, value, i128::from(i8::MIN), i128::from(i8::MAX), ty),
        ChType::Int16 => write_int::<2>(buf, value, i128::from(i16::MIN), i128::from(i16::MAX), ty),
        ChType::Int32 => write_int::<4>(buf, value, i128::from(i32::MIN), i128::from(i32::MAX), ty),
        ChType::Int64 => write_int::<8>(buf, value, i128::from(i64::MIN), i128::from(i64::MAX), ty),
        ChType::Int128 | ChType::Int256 => {
            let v = to_i128(value)?;
            write_wide(buf, v, if *ty == ChType::Int128 { 16 } else { 32 });
            Ok(())
        }
        ChType::UInt8 => write_int::<1>(buf, value, 0, i128::from(u8::MAX), ty),
        ChType::UInt16 => write_int::<2>(buf, value, 0, i128::from(u16::MAX), ty),
        ChType::UInt32 => write_int::<4>(buf, value, 0, i128::from(u32::MAX), ty),
        ChType::UInt64 => write_int::<8>(buf, value, 0, i128::from(u64::MAX), ty),
        ChType::UInt128 | ChType::UInt256 => {
            let v = to_i128(value)?;
            if v < 0 {
                return Err(format!("{} is out of the {ty} range", show(value)));
            }
            write_wide(buf, v, if *ty == ChType::UInt128 { 16 } else { 32 });
            Ok(())
        }
        ChType::Bool => {
            buf.push(u8::from(to_bool(value)?));
            Ok(())
        }
        ChType::FixedString(n) => {
            let text;
            let bytes: &[u8] = match value {
                Value::String(s) => s.as_bytes(),
                Value::Bytes(b) => b,
                other => {
                    text = other.to_string();
                    text.as_bytes()
                }
            };
            if bytes.len() > *n {
                return Err(format!(
                    "{} is {} bytes, longer than FixedString({n})",
                    show(value),
                    bytes.len()
                ));
            }
            buf.extend_from_slice(bytes);
            buf.resize(buf.len() + (n - bytes.len()), 0);
            Ok(())
        }
        ChType::Date => {
            let days = to_days(value)?;
            let days = u16::try_from(days).map_err(|_| {
                format!(
                    "{} is outside the Date range (1970-01-01 to 2149-06-06)",
                    show(value)
                )
            })?;
            buf.extend_from_slice(&days.to_le_bytes());
            Ok(())
        }
        ChType::Date32 => {
            let days = i32::try_from(to_days(value)?)
                .map_err(|_| format!("{} is outside the Date32 range", show(value)))?;
            buf.extend_from_slice(&days.to_le_bytes());
            Ok(())
        }
        ChType::DateTime => {
            let seconds = to_micros(value)?.div_euclid(MICROS_PER_SECOND);
            let seconds = u32::try_from(seconds).map_err(|_| {
                format!(
                    "{} is outside the DateTime range (1970-01-01 to 2106-02-07)",
                    show(value)
                )
            })?;
            buf.extend_from_slice(&seconds.to_le_bytes());
            Ok(())
        }
        ChType::DateTime64(precision) => {
            let micros = to_micros(value)?;
            let ticks = if *precision >= 6 {
                micros.checked_mul(10i64.pow(u32::from(*precision) - 6))
            } else {
                Some(micros.div_euclid(10i64.pow(6 - u32::from(*precision))))
            }
            .ok_or_else(|| format!("{} is outside the {ty} range", show(value)))?;
            buf.extend_from_slice(&ticks.to_le_bytes());
            Ok(())
        }
        ChType::Decimal { precision, scale } => {
            let unscaled = to_decimal(value, *scale)?;
            let limit = 10i128
                .checked_pow(u32::from(*precision))
                .unwrap_or(i128::MAX);
            if unscaled.unsigned_abs() >= limit.unsigned_abs() {
                return Err(format!("{} does not fit {ty}", show(value)));
            }
            match precision {
                0..=9 => buf.extend_from_slice(&(unscaled as i32).to_le_bytes()),
                10..=18 => buf.extend_from_slice(&(unscaled as i64).to_le_bytes()),
                19..=38 => buf.extend_from_slice(&unscaled.to_le_bytes()),
                _ => write_wide(buf, unscaled, 32),
            }
            Ok(())
        }
        ChType::Uuid => {
            let bytes = to_uuid(value)?;
            // RowBinary stores a UUID as two little-endian 64-bit halves, high half first.
            let (high, low) = bytes.split_at(8);
            buf.extend(high.iter().rev());
            buf.extend(low.iter().rev());
            Ok(())
        }
        ChType::Ipv4 => {
            let addr: Ipv4Addr = match value {
                Value::String(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| format!("{} is not an IPv4 address", show(value)))?,
                other => return Err(format!("{} is not an IPv4 address", show(other))),
            };
            buf.extend_from_slice(&u32::from(addr).to_le_bytes());
            Ok(())
        }
        ChType::Ipv6 => {
            let addr: Ipv6Addr = match value {
                Value::String(s) => match s.trim().parse::<IpAddr>() {
                    Ok(IpAddr::V6(a)) => a,
                    Ok(IpAddr::V4(a)) => a.to_ipv6_mapped(),
                    Err(_) => return Err(format!("{} is not an IPv6 address", show(value))),
                },
                other => return Err(format!("{} is not an IPv6 address", show(other))),
            };
            buf.extend_from_slice(&addr.octets());
            Ok(())
        }
        ChType::Enum8(items) => {
            let v = enum_value(value, items, ty)?;
            buf.push(v.to_le_bytes()[0]);
            Ok(())
        }
        ChType::Enum16(items) => {
            let v = enum_value(value, items, ty)?;
            buf.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
        ChType::Array(inner) => match value {
            Value::Array(items) => {
                write_varint(buf, items.len() as u64);
                for (i, item) in items.iter().enumerate() {
                    write_value(buf, inner, item).map_err(|e| format!("element {i}: {e}"))?;
                }
                Ok(())
            }
            other => Err(format!("{} is not an array", show(other))),
        },
        ChType::Tuple(items) => match value {
            Value::Struct(s) => {
                if s.values().len() != items.len() {
                    return Err(format!(
                        "a struct of {} fields does not fit {ty}",
                        s.values().len()
                    ));
                }
                for (i, (name, item_ty)) in items.iter().enumerate() {
                    let item = match name {
                        Some(name) => s
                            .get(name)
                            .ok_or_else(|| format!("the struct has no field `{name}` for {ty}"))?,
                        None => &s.values()[i],
                    };
                    write_value(buf, item_ty, item).map_err(|e| format!("element {i}: {e}"))?;
                }
                Ok(())
            }
            Value::Array(values) if values.len() == items.len() => {
                for (i, ((_, item_ty), item)) in items.iter().zip(values).enumerate() {
                    write_value(buf, item_ty, item).map_err(|e| format!("element {i}: {e}"))?;
                }
                Ok(())
            }
            other => Err(format!("{} does not fit {ty}", show(other))),
        },
        ChType::Map(key_ty, value_ty) => match value {
            Value::Map(entries) => {
                write_varint(buf, entries.len() as u64);
                for (k, v) in entries {
                    write_value(buf, key_ty, k).map_err(|e| format!("map key: {e}"))?;
                    write_value(buf, value_ty, v).map_err(|e| format!("map value: {e}"))?;
                }
                Ok(())
            }
            Value::Struct(s) => {
                write_varint(buf, s.values().len() as u64);
                for (k, v) in s.iter() {
                    write_value(buf, key_ty, &Value::String(k.to_owned()))
                        .map_err(|e| format!("map key: {e}"))?;
                    write_value(buf, value_ty, v).map_err(|e| format!("map value: {e}"))?;
                }
                Ok(())
            }
            other => Err(format!("{} is not a map", show(other))),
        },
        ChType::Nullable(_) => unreachable_nullable(),
        ChType::Unsupported(name) => Err(format!("the sink cannot write {name} columns")),
    }
}

fn unreachable_nullable() -> Result<(), String> {
    Err("nested Nullable type".into())
}

/// Appends the type's default value (what ClickHouse stores for a column
/// left out of an insert).
pub fn write_default(buf: &mut Vec<u8>, ty: &ChType) {
    let zeros = |buf: &mut Vec<u8>, n: usize| buf.resize(buf.len() + n, 0);
    match ty {
        ChType::Nullable(_) => buf.push(1),
        ChType::Int8 | ChType::UInt8 | ChType::Bool => buf.push(0),
        ChType::Int16 | ChType::UInt16 | ChType::Date => zeros(buf, 2),
        ChType::Int32
        | ChType::UInt32
        | ChType::Float32
        | ChType::Date32
        | ChType::DateTime
        | ChType::Ipv4 => zeros(buf, 4),
        ChType::Int64 | ChType::UInt64 | ChType::Float64 | ChType::DateTime64(_) => zeros(buf, 8),
        ChType::Int128 | ChType::UInt128 | ChType::Uuid | ChType::Ipv6 => zeros(buf, 16),
        ChType::Int256 | ChType::UInt256 => zeros(buf, 32),
        ChType::Decimal { precision, .. } => zeros(
            buf,
            match precision {
                0..=9 => 4,
                10..=18 => 8,
                19..=38 => 16,
                _ => 32,
            },
        ),
        ChType::FixedString(n) => zeros(buf, *n),
        ChType::String | ChType::Array(_) | ChType::Map(..) | ChType::Unsupported(_) => buf.push(0),
        // ClickHouse's default for an enum is its smallest value.
        ChType::Enum8(items) => buf.push(
            items
                .iter()
                .map(|(_, v)| *v)
                .min()
                .unwrap_or(0)
                .to_le_bytes()[0],
        ),
        ChType::Enum16(items) => buf.extend_from_slice(
            &items
                .iter()
                .map(|(_, v)| *v)
                .min()
                .unwrap_or(0)
                .to_le_bytes(),
        ),
        ChType::Tuple(items) => {
            for (_, t) in items {
                write_default(buf, t);
            }
        }
    }
}

/// LEB128, as RowBinary uses for lengths.
pub fn write_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn write_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn write_int<const N: usize>(
    buf: &mut Vec<u8>,
    value: &Value,
    min: i128,
    max: i128,
    ty: &ChType,
) -> Result<(), String> {
    let v = match value {
        Value::Int64(v) => i128::from(*v),
        other => to_i128(other)?,
    };
    if v < min || v > max {
        return Err(format!("{} is out of the {ty} range", show(value)));
    }
    buf.extend_from_slice(&v.to_le_bytes()[..N]);
    Ok(())
}

/// Two's complement little-endian of `v`, sign-extended to `width` bytes.
fn write_wide(buf: &mut Vec<u8>, v: i128, width: usize) {
    buf.extend_from_slice(&v.to_le_bytes());
    let fill = if v < 0 { 0xff } else { 0 };
    buf.resize(buf.len() + (width - 16), fill);
}

fn show(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn to_i128(value: &Value) -> Result<i128, String> {
    match value {
        Value::Int64(v) => Ok(i128::from(*v)),
        Value::Boolean(b) => Ok(i128::from(*b)),
        Value::Float64(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38 => {
            Ok(*f as i128)
        }
        Value::Float64(_) => Err(format!("{} is not a whole number", show(value))),
        Value::Decimal(d) => d
            .rescale(0)
            .map(|d| d.unscaled)
            .ok_or_else(|| format!("{} is not a whole number", show(value))),
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| format!("{} is not a whole number", show(value))),
        other => Err(format!("a {} is not a number", kind(other))),
    }
}

fn to_f64(value: &Value) -> Result<f64, String> {
    match value {
        Value::Float64(f) => Ok(*f),
        Value::Int64(v) => Ok(*v as f64),
        Value::Decimal(d) => Ok(d.to_f64()),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{} is not a number", show(value))),
        other => Err(format!("a {} is not a number", kind(other))),
    }
}

fn to_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Boolean(b) => Ok(*b),
        Value::Int64(0) => Ok(false),
        Value::Int64(1) => Ok(true),
        Value::String(s) => match s.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("{} is not a boolean", show(value))),
        },
        other => Err(format!("{} is not a boolean", show(other))),
    }
}

fn to_decimal(value: &Value, scale: u8) -> Result<i128, String> {
    let exact = |d: Decimal| {
        d.rescale(scale).map(|d| d.unscaled).ok_or_else(|| {
            format!(
                "{} has more than {scale} decimal places or too many digits",
                show(value)
            )
        })
    };
    match value {
        Value::Decimal(d) => exact(*d),
        Value::Int64(v) => exact(Decimal::new(i128::from(*v), 0)),
        Value::String(s) => exact(s.parse::<Decimal>().map_err(|e| e.to_string())?),
        Value::Float64(f) => {
            // Floats are inexact anyway: round to the column's scale.
            let scaled = f * 10f64.powi(i32::from(scale));
            if !scaled.is_finite() || scaled.abs() >= 1.7e38 {
                return Err(format!("{} does not fit a decimal", show(value)));
            }
            Ok(scaled.round() as i128)
        }
        other => Err(format!("a {} is not a number", kind(other))),
    }
}

fn to_days(value: &Value) -> Result<i64, String> {
    match value {
        Value::Date(d) => Ok(i64::from(*d)),
        Value::Timestamp(us) => Ok(us.div_euclid(MICROS_PER_DAY)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(date) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return Ok(date
                    .signed_duration_since(chrono::NaiveDate::default())
                    .num_days());
            }
            parse_datetime(s)
                .map(|us| us.div_euclid(MICROS_PER_DAY))
                .ok_or_else(|| format!("{} is not a date", show(value)))
        }
        other => Err(format!("a {} is not a date", kind(other))),
    }
}

fn to_micros(value: &Value) -> Result<i64, String> {
    match value {
        Value::Timestamp(us) => Ok(*us),
        Value::Date(d) => Ok(i64::from(*d) * MICROS_PER_DAY),
        // Whole numbers are Unix seconds, as ClickHouse reads them.
        Value::Int64(s) => s
            .checked_mul(MICROS_PER_SECOND)
            .ok_or_else(|| format!("{} is out of range for a time", show(value))),
        Value::String(s) => {
            parse_datetime(s.trim()).ok_or_else(|| format!("{} is not a date-time", show(value)))
        }
        other => Err(format!("a {} is not a date-time", kind(other))),
    }
}

/// RFC 3339, or `YYYY-MM-DD hh:mm:ss[.fff]` / `YYYY-MM-DD` read as UTC.
fn parse_datetime(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

fn to_uuid(value: &Value) -> Result<[u8; 16], String> {
    let bad = || format!("{} is not a UUID", show(value));
    match value {
        Value::Bytes(b) => b.as_slice().try_into().map_err(|_| bad()),
        Value::String(s) => {
            let hex: Vec<u8> = s.trim().bytes().filter(|b| *b != b'-').collect();
            if hex.len() != 32 {
                return Err(bad());
            }
            let mut out = [0u8; 16];
            for (i, pair) in hex.chunks(2).enumerate() {
                let text = std::str::from_utf8(pair).map_err(|_| bad())?;
                out[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
            }
            Ok(out)
        }
        _ => Err(bad()),
    }
}

fn enum_value<T>(value: &Value, items: &[(String, T)], ty: &ChType) -> Result<T, String>
where
    T: Copy + Into<i64>,
{
    let found = match value {
        Value::String(s) => items.iter().find(|(name, _)| name == s).map(|(_, v)| *v),
        Value::Int64(n) => items
            .iter()
            .find(|(_, v)| (*v).into() == *n)
            .map(|(_, v)| *v),
        _ => None,
    };
    found.ok_or_else(|| format!("{} is not a value of {ty}", show(value)))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int64(_) => "int64",
        Value::Float64(_) => "float64",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Timestamp(_) => "timestamp",
        Value::Date(_) => "date",
        Value::Decimal(_) => "decimal",
        Value::Array(_) => "array",
        Value::Struct(_) => "struct",
        Value::Map(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ty: &str, value: Value) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        write_value(&mut buf, &ChType::parse(ty), &value).map(|()| buf)
    }

    #[test]
    fn scalars() {
        assert_eq!(encode("UInt8", Value::Int64(200)), Ok(vec![200]));
        assert_eq!(encode("Int16", Value::Int64(-2)), Ok(vec![0xfe, 0xff]));
        assert_eq!(
            encode("String", Value::from("hé")),
            Ok(vec![3, b'h', 0xc3, 0xa9])
        );
        assert_eq!(
            encode("Nullable(Int32)", Value::Null),
            Ok(vec![1]),
            "null marker only"
        );
        assert_eq!(
            encode("Nullable(Int32)", Value::Int64(1)),
            Ok(vec![0, 1, 0, 0, 0])
        );
        assert_eq!(
            encode("FixedString(4)", Value::from("ab")),
            Ok(vec![b'a', b'b', 0, 0])
        );
        assert_eq!(
            encode("DateTime", Value::Timestamp(1_500_000)),
            Ok(vec![1, 0, 0, 0])
        );
        assert_eq!(
            encode("DateTime64(3)", Value::Timestamp(-1)),
            Ok((-1i64).to_le_bytes().to_vec()),
            "floor, not truncation"
        );
        assert_eq!(
            encode("Decimal(5, 2)", Value::Float64(1.236)),
            Ok(124i32.to_le_bytes().to_vec())
        );
        assert_eq!(
            encode("Int256", Value::Int64(-1)),
            Ok(vec![0xff; 32]),
            "sign-extended"
        );
        assert_eq!(
            encode("UUID", Value::from("00112233-4455-6677-8899-aabbccddeeff")),
            Ok(vec![
                0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa,
                0x99, 0x88
            ])
        );
        assert_eq!(encode("Int64", Value::Null), Ok(vec![0; 8]), "default");
    }

    #[test]
    fn varints() {
        let mut buf = Vec::new();
        write_varint(&mut buf, 300);
        assert_eq!(buf, vec![0xac, 0x02]);
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            encode("UInt8", Value::Int64(300)),
            Err("300 is out of the UInt8 range".into())
        );
        assert_eq!(
            encode("Int64", Value::Float64(12.5)),
            Err("12.5 is not a whole number".into())
        );
        assert_eq!(
            encode("Enum8('a' = 1)", Value::from("b")),
            Err("\"b\" is not a value of Enum8('a' = 1)".into())
        );
        assert_eq!(
            encode("FixedString(2)", Value::from("abc")),
            Err("\"abc\" is 3 bytes, longer than FixedString(2)".into())
        );
        assert_eq!(
            encode(
                "Array(UInt8)",
                Value::Array(vec![Value::Int64(1), Value::Int64(-1)])
            ),
            Err("element 1: -1 is out of the UInt8 range".into())
        );
        assert!(
            encode("Decimal(4, 1)", Value::from("1.25"))
                .unwrap_err()
                .contains("more than 1 decimal places")
        );
        assert!(
            encode("DateTime", Value::Timestamp(-1))
                .unwrap_err()
                .contains("outside the DateTime range")
        );
    }
}
