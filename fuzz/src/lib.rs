//! Helpers shared by the fuzz targets: decoding one payload and comparing
//! records where floats may be NaN or signed zeros.

#![forbid(unsafe_code)]

use connector_core::format::{Decoder, MessageMeta, Progress};
use connector_core::{Record, Value};

/// Decodes `payload`; a decoder may fail on bad input but must never ask
/// to resolve (the targets use fixed schemas) or append on failure.
pub fn decode(decoder: &mut dyn Decoder, payload: &[u8], key: Option<&[u8]>) -> Option<Vec<Record>> {
    let meta = MessageMeta {
        key,
        ..MessageMeta::default()
    };
    let mut out = Vec::new();
    match decoder.decode(payload, &meta, &mut out) {
        Ok(Progress::Done) => Some(out),
        Ok(Progress::NeedsResolve) => panic!("{} asked to resolve with a fixed schema", decoder.format()),
        Err(e) => {
            assert!(out.is_empty(), "{} appended records on error", decoder.format());
            assert!(e.is_bad_data(), "{} decode error is not bad data: {e}", decoder.format());
            let text = e.to_string();
            assert!(text.contains(decoder.format()), "error does not name the format: {text}");
            None
        }
    }
}

/// Value equality with NaN equal to NaN and -0.0 equal to 0.0.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float64(x), Value::Float64(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b)),
        (Value::Struct(x), Value::Struct(y)) => {
            x.schema() == y.schema() && x.values().iter().zip(y.values()).all(|(a, b)| same_value(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k1, v1), (k2, v2))| same_value(k1, k2) && same_value(v1, v2))
        }
        _ => a == b,
    }
}

/// Record equality (schema, kind and values) in the sense of [`same_value`].
pub fn same_record(a: &Record, b: &Record) -> bool {
    a.kind == b.kind
        && a.schema == b.schema
        && a.values.len() == b.values.len()
        && a.values.iter().zip(&b.values).all(|(x, y)| same_value(x, y))
}

/// Whether a value holds a decimal anywhere (JSON writes them as text).
pub fn has_decimal(v: &Value) -> bool {
    match v {
        Value::Decimal(_) => true,
        Value::Array(items) => items.iter().any(has_decimal),
        Value::Struct(s) => s.values().iter().any(has_decimal),
        Value::Map(entries) => entries.iter().any(|(k, v)| has_decimal(k) || has_decimal(v)),
        _ => false,
    }
}
