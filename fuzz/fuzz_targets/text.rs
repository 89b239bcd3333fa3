//! Text decoding: UTF-8 payloads decode and re-encode to the same bytes.
#![no_main]

use connector_core::format::Encoder;
use connector_core::format::text::{TextDecoder, TextEncoder};
use connector_core_fuzz::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let records = decode(&mut TextDecoder::new(), data, None);
    assert_eq!(records.is_some(), std::str::from_utf8(data).is_ok());
    if let Some(records) = records {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&records[0], &mut out).unwrap();
        assert_eq!(out, data);
    }
});
