//! Codec speed, each beside its baseline in the same run.
//!
//! `cargo bench -p connector-core --bench formats --all-features`
//!
//! - `json_decode/{serde_json_value,records}`: the same payloads parsed by
//!   `serde_json::from_slice::<serde_json::Value>` and decoded into records
//!   by `JsonDecoder` (goal: records at least as fast, ratio ≥ 1.0).
//! - `json_decode_array/...`: the same, one payload holding an array.
//! - `json_decode_batch/...`: the same, every result of the batch kept.
//! - `json_encode/records`, `delimited_decode/records`,
//!   `delimited_encode/records`: throughput in MB/s.
//! - `avro_decode/{apache_avro_value,avro_json_record,records}`: the same
//!   datums read by apache-avro into its own `Value` (goal: records ≥ 0.8x
//!   of it), through the avro → JSON → record path (goal: records ≥ 2x),
//!   and by `AvroDecoder` into records.
//! - `protobuf_decode/{dynamic_message,records}`: prost-reflect's
//!   `DynamicMessage::decode` alone, and `ProtobufDecoder` into records;
//!   `protobuf_encode/records`.
//! - `debezium_json_decode/{with_schema,without_schema}`: Debezium change
//!   events (updates) with and without the JSON converter's schema wrapper.

use std::hint::black_box;

use connector_core::format::avro::{AvroDecoder, AvroEncoder, Plan};
use connector_core::format::delimited::{DelimitedDecoder, DelimitedEncoder};
use connector_core::format::json::{JsonDecoder, JsonEncoder};
use connector_core::format::{Decoder, Encoder, MessageMeta};
use criterion::{Criterion, Throughput, criterion_group};

const MESSAGES: usize = 2_000;

/// A small deterministic generator, so every run sees the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn float(&mut self) -> f64 {
        (self.next() % 100_000) as f64 / 1000.0
    }
}

/// IoT-style events of about 250 bytes: strings, ints, floats, a boolean,
/// a nested object and an array.
fn json_messages() -> Vec<Vec<u8>> {
    let mut rng = Lcg(7);
    (0..MESSAGES)
        .map(|i| {
            format!(
                r#"{{"device":"device_{}","seq":{i},"ts":{},"temperature":{},"humidity":{},"ok":{},"location":{{"lat":{},"lon":{},"site":"plant-{}"}},"tags":["t{}","zone-{}"],"note":"reading {} from the north wing"}}"#,
                rng.next() % 100,
                1_700_000_000_000u64 + rng.next() % 1_000_000,
                rng.float(),
                rng.next() % 100,
                rng.next().is_multiple_of(2),
                rng.float(),
                rng.float(),
                rng.next() % 10,
                rng.next() % 5,
                rng.next() % 3,
                rng.next()
            )
            .into_bytes()
        })
        .collect()
}

fn total_bytes(messages: &[Vec<u8>]) -> u64 {
    messages.iter().map(|m| m.len() as u64).sum()
}

fn json_decode(c: &mut Criterion) {
    let messages = json_messages();
    let mut group = c.benchmark_group("json_decode");
    group.throughput(Throughput::Bytes(total_bytes(&messages)));
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            for m in &messages {
                black_box(serde_json::from_slice::<serde_json::Value>(m).unwrap());
            }
        })
    });
    let mut decoder = JsonDecoder::new();
    let meta = MessageMeta::default();
    let mut out = Vec::with_capacity(MESSAGES);
    // Like the baseline, each message's result is dropped before the next.
    group.bench_function("records", |b| {
        b.iter(|| {
            for m in &messages {
                let _ = decoder.decode(m, &meta, &mut out).unwrap();
                black_box(&out);
                out.clear();
            }
        })
    });
    group.finish();
    testkit::bench::report_ratio("json_decode", "records", "serde_json_value");

    // A source keeps a batch of decoded messages until the sink has them:
    // both sides retain every result of the batch here.
    let mut group = c.benchmark_group("json_decode_batch");
    group.throughput(Throughput::Bytes(total_bytes(&messages)));
    let mut values = Vec::with_capacity(MESSAGES);
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            values.clear();
            for m in &messages {
                values.push(serde_json::from_slice::<serde_json::Value>(m).unwrap());
            }
            black_box(&values);
        })
    });
    group.bench_function("records", |b| {
        b.iter(|| {
            out.clear();
            for m in &messages {
                let _ = decoder.decode(m, &meta, &mut out).unwrap();
            }
            black_box(&out);
        })
    });
    group.finish();
    testkit::bench::report_ratio("json_decode_batch", "records", "serde_json_value");

    let array = format!(
        "[{}]",
        messages
            .iter()
            .map(|m| std::str::from_utf8(m).unwrap())
            .collect::<Vec<_>>()
            .join(",")
    )
    .into_bytes();
    let mut group = c.benchmark_group("json_decode_array");
    group.throughput(Throughput::Bytes(array.len() as u64));
    group.bench_function("serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(&array).unwrap()))
    });
    group.bench_function("records", |b| {
        b.iter(|| {
            out.clear();
            let _ = decoder.decode(&array, &meta, &mut out).unwrap();
            black_box(&out);
        })
    });
    group.finish();
    testkit::bench::report_ratio("json_decode_array", "records", "serde_json_value");
}

fn json_encode(c: &mut Criterion) {
    let messages = json_messages();
    let mut records = Vec::new();
    let mut decoder = JsonDecoder::new();
    for m in &messages {
        let _ = decoder
            .decode(m, &MessageMeta::default(), &mut records)
            .unwrap();
    }
    let mut group = c.benchmark_group("json_encode");
    group.throughput(Throughput::Bytes(total_bytes(&messages)));
    let mut encoder = JsonEncoder::new();
    let mut buf = Vec::with_capacity(1024);
    group.bench_function("records", |b| {
        b.iter(|| {
            for r in &records {
                buf.clear();
                let _ = encoder.encode(r, &mut buf).unwrap();
                black_box(&buf);
            }
        })
    });
    group.finish();
}

fn delimited(c: &mut Criterion) {
    let mut rng = Lcg(11);
    let mut payload = Vec::new();
    for i in 0..MESSAGES {
        payload.extend_from_slice(
            format!(
                "device_{},{i},{},{},\"north wing, rack {}\",\"said \"\"ok\"\"\"\n",
                rng.next() % 100,
                1_700_000_000_000u64 + rng.next() % 1_000_000,
                rng.float(),
                rng.next() % 10
            )
            .as_bytes(),
        );
    }
    let mut group = c.benchmark_group("delimited_decode");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    let mut decoder = DelimitedDecoder::new(b',').with_fields([
        "device",
        "seq",
        "ts",
        "temperature",
        "site",
        "note",
    ]);
    let mut out = Vec::with_capacity(MESSAGES);
    group.bench_function("records", |b| {
        b.iter(|| {
            out.clear();
            let _ = decoder
                .decode(&payload, &MessageMeta::default(), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("delimited_encode");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    let mut encoder = DelimitedEncoder::new(b',');
    let mut buf = Vec::with_capacity(payload.len());
    group.bench_function("records", |b| {
        b.iter(|| {
            buf.clear();
            for r in &out {
                let _ = encoder.encode(r, &mut buf).unwrap();
                buf.push(b'\n');
            }
            black_box(&buf);
        })
    });
    group.finish();
}

const AVRO_SCHEMA: &str = r#"{
  "type": "record", "name": "Reading", "namespace": "bench",
  "fields": [
    {"name": "device", "type": "string"},
    {"name": "seq", "type": "long"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "temperature", "type": "double"},
    {"name": "humidity", "type": "int"},
    {"name": "ok", "type": "boolean"},
    {"name": "location", "type": {"type": "record", "name": "Location", "fields": [
      {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}, {"name": "site", "type": "string"}]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}"#;

/// The JSON events as records of the Avro schema's shape.
fn bench_records() -> Vec<connector_core::Record> {
    let mut decoder = JsonDecoder::new();
    let mut records = Vec::new();
    for m in json_messages() {
        let _ = decoder
            .decode(&m, &MessageMeta::default(), &mut records)
            .unwrap();
    }
    records
        .into_iter()
        .map(|r| {
            let mut pairs: Vec<(String, connector_core::Value)> =
                r.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
            for (k, v) in &mut pairs {
                if k == "ts" {
                    *v = connector_core::Value::Timestamp(v.as_i64().unwrap() * 1000);
                }
            }
            connector_core::Record::from_pairs(pairs)
        })
        .collect()
}

fn avro(c: &mut Criterion) {
    let plan = Plan::parse(AVRO_SCHEMA).unwrap();
    let mut encoder = AvroEncoder::plain(plan.clone());
    let datums: Vec<Vec<u8>> = bench_records()
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            let _ = encoder.encode(r, &mut out).unwrap();
            out
        })
        .collect();
    let schema = apache_avro::Schema::parse_str(AVRO_SCHEMA).unwrap();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("avro_decode");
    group.throughput(Throughput::Bytes(total_bytes(&datums)));
    group.bench_function("apache_avro_value", |b| {
        b.iter(|| {
            for d in &datums {
                black_box(reader.read_value(&mut &d[..]).unwrap());
            }
        })
    });
    let mut json_decoder = JsonDecoder::new();
    let mut out = Vec::with_capacity(1);
    let mut text = Vec::with_capacity(512);
    group.bench_function("avro_json_record", |b| {
        b.iter(|| {
            for d in &datums {
                let value = reader.read_value(&mut &d[..]).unwrap();
                let json = serde_json::Value::try_from(value).unwrap();
                text.clear();
                serde_json::to_writer(&mut text, &json).unwrap();
                let _ = json_decoder
                    .decode(&text, &MessageMeta::default(), &mut out)
                    .unwrap();
                black_box(&out);
                out.clear();
            }
        })
    });
    let mut decoder = AvroDecoder::fixed(plan);
    group.bench_function("records", |b| {
        b.iter(|| {
            for d in &datums {
                let _ = decoder
                    .decode(d, &MessageMeta::default(), &mut out)
                    .unwrap();
                black_box(&out);
                out.clear();
            }
        })
    });
    group.finish();
    testkit::bench::report_ratio("avro_decode", "records", "apache_avro_value");
    testkit::bench::report_ratio("avro_decode", "records", "avro_json_record");

    let records = bench_records();
    let mut group = c.benchmark_group("avro_encode");
    group.throughput(Throughput::Bytes(total_bytes(&datums)));
    let mut buf = Vec::with_capacity(512);
    group.bench_function("records", |b| {
        b.iter(|| {
            for r in &records {
                buf.clear();
                let _ = encoder.encode(r, &mut buf).unwrap();
                black_box(&buf);
            }
        })
    });
    group.finish();
}

const PROTO: &str = r#"
syntax = "proto3";
package bench;
import "google/protobuf/timestamp.proto";
message Location { double lat = 1; double lon = 2; string site = 3; }
message Reading {
  string device = 1;
  int64 seq = 2;
  google.protobuf.Timestamp ts = 3;
  double temperature = 4;
  int32 humidity = 5;
  bool ok = 6;
  Location location = 7;
  repeated string tags = 8;
  string note = 9;
}
"#;

fn protobuf(c: &mut Criterion) {
    use connector_core::format::{DataFormat, FormatConfig, ProtoConfig};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reading.proto");
    std::fs::write(&file, PROTO).unwrap();
    let format = FormatConfig::new(DataFormat::PROTOBUF).with_proto(ProtoConfig {
        file,
        message: "bench.Reading".into(),
        include_paths: Vec::new(),
    });
    let codec = format.proto_codec().unwrap();
    let mut encoder = format.encoder().unwrap();
    let records = bench_records();
    let messages: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            let _ = encoder.encode(r, &mut out).unwrap();
            out
        })
        .collect();
    let desc = codec.descriptor().clone();
    let mut group = c.benchmark_group("protobuf_decode");
    group.throughput(Throughput::Bytes(total_bytes(&messages)));
    group.bench_function("dynamic_message", |b| {
        b.iter(|| {
            for m in &messages {
                black_box(prost_reflect::DynamicMessage::decode(desc.clone(), &m[..]).unwrap());
            }
        })
    });
    let mut decoder = format.decoder().unwrap();
    let mut out = Vec::with_capacity(1);
    group.bench_function("records", |b| {
        b.iter(|| {
            for m in &messages {
                let _ = decoder
                    .decode(m, &MessageMeta::default(), &mut out)
                    .unwrap();
                black_box(&out);
                out.clear();
            }
        })
    });
    group.finish();
    testkit::bench::report_ratio("protobuf_decode", "records", "dynamic_message");

    let mut group = c.benchmark_group("protobuf_encode");
    group.throughput(Throughput::Bytes(total_bytes(&messages)));
    let mut buf = Vec::with_capacity(512);
    group.bench_function("records", |b| {
        b.iter(|| {
            for r in &records {
                buf.clear();
                let _ = encoder.encode(r, &mut buf).unwrap();
                black_box(&buf);
            }
        })
    });
    group.finish();
}

fn debezium(c: &mut Criterion) {
    use connector_core::format::{DataFormat, FormatConfig};
    let row_schema = r#"{"type":"struct","optional":true,"name":"pg.public.readings.Value","field":"FIELD","fields":[
        {"type":"int64","optional":false,"field":"id"},{"type":"string","optional":false,"field":"device"},
        {"type":"double","optional":true,"field":"temperature"},{"type":"int32","optional":true,"field":"humidity"},
        {"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"updated"},
        {"type":"string","optional":true,"field":"note"}]}"#;
    let schema = format!(
        r#"{{"type":"struct","name":"pg.public.readings.Envelope","optional":false,"fields":[{},{},
        {{"type":"struct","optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source","fields":[
          {{"type":"string","optional":false,"field":"version"}},{{"type":"string","optional":false,"field":"connector"}},
          {{"type":"int64","optional":false,"field":"ts_ms"}},{{"type":"string","optional":false,"field":"table"}}]}},
        {{"type":"string","optional":false,"field":"op"}},{{"type":"int64","optional":true,"field":"ts_ms"}}]}}"#,
        row_schema.replace("FIELD", "before"),
        row_schema.replace("FIELD", "after")
    );
    let mut rng = Lcg(5);
    let payloads: Vec<String> = (0..MESSAGES)
        .map(|i| {
            let row = |t: f64| {
                format!(
                    r#"{{"id":{i},"device":"device_{}","temperature":{t},"humidity":{},"updated":{},"note":"reading from the north wing"}}"#,
                    i % 100,
                    i % 90,
                    1_700_000_000_000_000u64 + i as u64
                )
            };
            format!(
                r#"{{"before":{},"after":{},"source":{{"version":"2.7.0.Final","connector":"postgresql","ts_ms":{},"table":"readings"}},"op":"u","ts_ms":{}}}"#,
                row(rng.float()),
                row(rng.float()),
                1_700_000_000_000u64 + i as u64,
                1_700_000_000_100u64 + i as u64
            )
        })
        .collect();
    let wrapped: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| format!(r#"{{"schema":{schema},"payload":{p}}}"#).into_bytes())
        .collect();
    let bare: Vec<Vec<u8>> = payloads.into_iter().map(String::into_bytes).collect();
    for (name, messages) in [("with_schema", &wrapped), ("without_schema", &bare)] {
        let mut group = c.benchmark_group("debezium_json_decode");
        group.throughput(Throughput::Bytes(total_bytes(messages)));
        let mut decoder = FormatConfig::new(DataFormat::DEBEZIUM_JSON)
            .decoder()
            .unwrap();
        let mut out = Vec::with_capacity(2);
        let _ = decoder
            .decode(&messages[0], &MessageMeta::default(), &mut out)
            .unwrap();
        assert_eq!(out.len(), 2, "an update is two records");
        out.clear();
        group.bench_function(name, |b| {
            b.iter(|| {
                for m in messages {
                    let _ = decoder
                        .decode(m, &MessageMeta::default(), &mut out)
                        .unwrap();
                    black_box(&out);
                    out.clear();
                }
            })
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    json_decode,
    json_encode,
    delimited,
    avro,
    protobuf,
    debezium
);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
