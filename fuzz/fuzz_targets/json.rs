//! JSON decoding: never panics; what decodes re-encodes and decodes the same.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use connector_core::format::declared::{Converter, parse_schema};
use connector_core::format::json::{JsonDecoder, JsonEncoder};
use connector_core::format::timestamp::TimestampField;
use connector_core::format::Encoder;
use connector_core_fuzz::{decode, has_decimal, same_record};
use libfuzzer_sys::fuzz_target;

/// One decoder across inputs, so the shape cache sees many shapes in a row.
fn shared() -> &'static Mutex<JsonDecoder> {
    static D: OnceLock<Mutex<JsonDecoder>> = OnceLock::new();
    D.get_or_init(|| Mutex::new(JsonDecoder::new()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else { return };
    if mode & 1 == 1 {
        let schema = parse_schema(&"id bigint, name string, at datetime, ok boolean, tags array<bigint>, user struct<id bigint, raw bytea>, score float".into()).unwrap();
        let mut d = JsonDecoder::new()
            .with_schema(Arc::new(schema), Converter { strict: mode & 2 == 2, ..Converter::default() })
            .with_timestamp(TimestampField::new("at", "yyyy-MM-dd HH:mm:ss.SSS").unwrap());
        let _ = decode(&mut d, payload, None);
        return;
    }
    let shared_result = decode(&mut *shared().lock().unwrap(), payload, None);
    let fresh = decode(&mut JsonDecoder::new(), payload, None);
    assert_eq!(shared_result.is_some(), fresh.is_some(), "the shape cache changed whether a payload decodes");
    let Some(records) = fresh else { return };
    if records.iter().any(|r| r.values.iter().any(has_decimal)) {
        return;
    }
    let mut encoder = JsonEncoder::new();
    let mut body = b"[".to_vec();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let _ = encoder.encode(r, &mut body).unwrap();
    }
    body.push(b']');
    let again = decode(&mut JsonDecoder::new(), &body, None).expect("encoded JSON decodes");
    assert_eq!(again.len(), records.len());
    for (a, b) in records.iter().zip(&again) {
        assert!(same_record(a, b), "round trip changed {a:?} into {b:?}");
    }
});
