//! Avro decoding (plain and Confluent wire format): never panics; whatever
//! we accept apache-avro accepts too; decoded records re-encode to bytes
//! that decode the same.
#![no_main]

use std::sync::OnceLock;

use connector_core::format::Encoder;
use connector_core::format::avro::{AvroDecoder, AvroEncoder, Plan};
use connector_core_fuzz::{decode, same_record};
use libfuzzer_sys::fuzz_target;

const SCHEMA: &str = r#"{
  "type": "record", "name": "R", "namespace": "fuzz",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "n", "type": "int"},
    {"name": "ok", "type": "boolean"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "s", "type": ["null", "string"]},
    {"name": "b", "type": "bytes"},
    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
    {"name": "xs", "type": {"type": "array", "items": ["null", "long"]}},
    {"name": "m", "type": {"type": "map", "values": "string"}},
    {"name": "fx", "type": {"type": "fixed", "name": "F4", "size": 4}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 4}},
    {"name": "u", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "next", "type": ["null", "R"]},
    {"name": "any", "type": ["null", "long", "string", {"type": "array", "items": "int"}]}
  ]
}"#;

fn plan() -> &'static Plan {
    static P: OnceLock<Plan> = OnceLock::new();
    P.get_or_init(|| Plan::parse(SCHEMA).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let plain = decode(&mut AvroDecoder::fixed(plan().clone()), data, None);
    // The wire format with a known id decodes the same datum.
    let mut wire = vec![0, 0, 0, 0, 7];
    wire.extend_from_slice(data);
    let client = connector_core::format::registry::RegistryClient::new(&connector_core::format::RegistryConfig {
        address: "http://127.0.0.1:9".into(),
        api_key: None,
        api_secret: None,
    })
    .unwrap();
    let mut registry = AvroDecoder::registry(client).with_schema_id(7, plan().clone());
    let framed = decode(&mut registry, &wire, None);
    assert_eq!(plain.is_some(), framed.is_some());

    let Some(records) = plain else { return };
    let schema = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().unwrap();
    assert!(reader.read_value(&mut &data[..]).is_ok(), "apache-avro rejects a datum we accepted");

    let mut out = Vec::new();
    let _ = AvroEncoder::plain(plan().clone()).encode(&records[0], &mut out).unwrap();
    let again = decode(&mut AvroDecoder::fixed(plan().clone()), &out, None).expect("re-encoded datum decodes");
    assert!(same_record(&records[0], &again[0]), "{:?} vs {:?}", records[0], again[0]);
});
