//! Debezium JSON decoding, plain and upsert, with and without a key: never
//! panics, errors name the format, nothing is appended on error.
#![no_main]

use connector_core::format::{DataFormat, FormatConfig};
use connector_core_fuzz::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    // The key is the input up to the first 0xff, when the mode says so.
    let (key, payload) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) if mode & 2 == 2 => (Some(&rest[..i]), &rest[i + 1..]),
        _ => (None, rest),
    };
    let format = if mode & 1 == 1 { DataFormat::DEBEZIUM_JSON_UPSERT } else { DataFormat::DEBEZIUM_JSON };
    let mut decoder = FormatConfig::new(format).decoder().unwrap();
    if let Some(records) = decode(&mut decoder, payload, key) {
        for r in records {
            assert_eq!(r.values.len(), r.schema.len());
        }
    }
});
