//! Codec speed, each beside its baseline in the same run.
//!
//! `cargo bench -p connector-core --bench formats --all-features`
//!
//! - `json_decode/{serde_json_value,records}`: the same payloads parsed by
//!   `serde_json::from_slice::<serde_json::Value>` and decoded into records
//!   by `JsonDecoder` (goal: records at least as fast, ratio ≥ 1.0).
//! - `json_decode_array/...`: the same, one payload holding an array.
//! - `json_encode/records`, `delimited_decode/records`,
//!   `delimited_encode/records`: throughput in MB/s.

use std::hint::black_box;

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

criterion_group!(benches, json_decode, json_encode, delimited);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
