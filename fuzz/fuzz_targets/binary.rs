//! Binary decoding: every payload decodes and re-encodes to the same bytes.
#![no_main]

use connector_core::format::Encoder;
use connector_core::format::binary::{BinaryDecoder, BinaryEncoder};
use connector_core_fuzz::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let records = decode(&mut BinaryDecoder::new(), data, None).expect("binary always decodes");
    let mut out = Vec::new();
    let _ = BinaryEncoder::new().encode(&records[0], &mut out).unwrap();
    assert_eq!(out, data);
});
