//! Protobuf decoding: never panics; decoded records re-encode to bytes that
//! decode the same.
#![no_main]

use std::sync::OnceLock;

use connector_core::format::protobuf::{ProtoCodec, ProtobufDecoder, ProtobufEncoder};
use connector_core::format::{DataFormat, Encoder, FormatConfig, ProtoConfig};
use connector_core_fuzz::{decode, same_record};
use libfuzzer_sys::fuzz_target;

const PROTO: &str = r#"
syntax = "proto3";
package fuzz;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
enum Kind { KIND_UNSPECIFIED = 0; SMALL = 1; LARGE = 2; }
message Inner { string name = 1; repeated int32 nums = 2; Inner child = 3; }
message Outer {
  int64 id = 1;
  sint32 delta = 2;
  uint64 big = 3;
  fixed32 f32 = 4;
  double score = 5;
  float ratio = 6;
  bool ok = 7;
  string text = 8;
  bytes blob = 9;
  Kind kind = 10;
  repeated Kind kinds = 11;
  Inner inner = 12;
  repeated Inner items = 13;
  map<string, Inner> by_name = 14;
  map<int32, string> labels = 15;
  oneof choice { string a = 16; int64 b = 17; Inner c = 18; }
  google.protobuf.Timestamp at = 19;
  google.protobuf.Int64Value maybe = 20;
  optional string opt = 21;
}
"#;

fn codec() -> &'static ProtoCodec {
    static C: OnceLock<ProtoCodec> = OnceLock::new();
    C.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fuzz.proto");
        std::fs::write(&file, PROTO).unwrap();
        let config = FormatConfig::new(DataFormat::PROTOBUF).with_proto(ProtoConfig {
            file,
            message: "fuzz.Outer".into(),
            include_paths: Vec::new(),
        });
        config.proto_codec().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = ProtobufDecoder::new(codec().clone());
    let Some(records) = decode(&mut decoder, data, None) else { return };
    let mut out = Vec::new();
    let _ = ProtobufEncoder::new(codec().clone()).encode(&records[0], &mut out).unwrap();
    let again = decode(&mut decoder, &out, None).expect("re-encoded message decodes");
    assert!(same_record(&records[0], &again[0]), "{:?} vs {:?}", records[0], again[0]);
});
