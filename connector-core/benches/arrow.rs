//! Records to Arrow, beside Arrow's own JSON reader.
//!
//! `cargo bench -p connector-core --bench arrow`
//!
//! The input is 100,000 iot events as JSON (`device`, `number`, `time` as
//! RFC 3339 text; about 74 bytes each), the shape the generator's `iot`
//! template writes, with the schema `device string, number float64,
//! time timestamp`. Throughput is given in rows and in bytes of that JSON.
//!
//! - `arrow_conversion/to_record_batch`: records already decoded from the
//!   JSON (by our decoder, with the schema) → `ToArrow::convert`, 8192 rows
//!   per record batch. What an engine pays to take our batches as Arrow.
//! - `arrow_conversion/json_then_to_record_batch`: the JSON messages, one
//!   per event as a Kafka source gets them → `JsonDecoder` → records →
//!   `ToArrow::convert`: the whole path from bytes to Arrow through our
//!   record model.
//! - `arrow_conversion/json_decode_only`: the decoding part of the above
//!   alone (JSON messages → records), to show where the time goes.
//! - `arrow_conversion/arrow_json_reader` (baseline): the same bytes as
//!   newline-delimited JSON straight into record batches of 8192 rows by
//!   `arrow-json`'s reader with the same Arrow schema.
//! - `arrow_conversion/from_record_batch`: the way back, record batches →
//!   records (`FromArrow::convert`).
//!
//! The ratio printed at the end compares the whole path through records
//! with Arrow's native path (above 1 means ours is faster).

use std::hint::black_box;
use std::sync::Arc;

use connector_core::arrow::{ArrowOptions, FromArrow, ToArrow};
use connector_core::format::declared::Converter;
use connector_core::format::json::JsonDecoder;
use connector_core::format::{Decoder, MessageMeta};
use connector_core::{DataType, Field, Record, Schema};
use criterion::{Criterion, Throughput, criterion_group};

const EVENTS: usize = 100_000;
const BATCH: usize = 8192;

fn iot_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::required("device", DataType::String),
        Field::required("number", DataType::Float64),
        Field::required("time", DataType::Timestamp),
    ]))
}

/// Deterministic iot events, one JSON object per event.
fn events() -> Vec<String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: enough spread for devices and numbers.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let start = 1_704_164_645_000_000i64; // 2024-01-02T03:04:05Z
    (0..EVENTS)
        .map(|i| {
            let device = next() % 3;
            let number = (next() % 10_000_000) as f64 / 100_000.0;
            let time = connector_core::value::format_timestamp(start + i as i64 * 1_000);
            format!(r#"{{"device":"device_{device}","number":{number},"time":"{time}"}}"#)
        })
        .collect()
}

fn decode(decoder: &mut JsonDecoder, messages: &[String]) -> Vec<Record> {
    let mut records = Vec::with_capacity(messages.len());
    for m in messages {
        let _ = decoder
            .decode(m.as_bytes(), &MessageMeta::default(), &mut records)
            .unwrap();
    }
    records
}

fn conversion(c: &mut Criterion) {
    let schema = iot_schema();
    let messages = events();
    let ndjson: Vec<u8> = messages.join("\n").into_bytes();
    let bytes = ndjson.len() as u64;
    let mut decoder = JsonDecoder::new().with_schema(schema.clone(), Converter::default());
    let records = decode(&mut decoder, &messages);
    let to_arrow = ToArrow::new(schema.clone(), ArrowOptions::default()).unwrap();
    let arrow_schema = to_arrow.arrow_schema().clone();
    // The baseline reads values only: compare with our columns minus the
    // change-kind one, which it has no counterpart for.
    let values_only = ToArrow::new(schema.clone(), ArrowOptions::values_only()).unwrap();
    let values_schema = values_only.arrow_schema().clone();

    let record_batches: Vec<_> = records
        .chunks(BATCH)
        .map(|chunk| to_arrow.convert(chunk).unwrap())
        .collect();

    let mut group = c.benchmark_group("arrow_conversion");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("to_record_batch", |b| {
        b.iter(|| {
            for chunk in records.chunks(BATCH) {
                black_box(values_only.convert(chunk).unwrap());
            }
        })
    });
    group.bench_function("to_record_batch_with_change_kind", |b| {
        b.iter(|| {
            for chunk in records.chunks(BATCH) {
                black_box(to_arrow.convert(chunk).unwrap());
            }
        })
    });
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("json_then_to_record_batch", |b| {
        b.iter(|| {
            let mut decoder = JsonDecoder::new().with_schema(schema.clone(), Converter::default());
            let mut rows = 0;
            for chunk in messages.chunks(BATCH) {
                let records = decode(&mut decoder, chunk);
                let rb = values_only.convert(&records).unwrap();
                rows += rb.num_rows();
            }
            assert_eq!(rows, EVENTS);
        })
    });
    group.bench_function("json_decode_only", |b| {
        b.iter(|| {
            let mut decoder = JsonDecoder::new().with_schema(schema.clone(), Converter::default());
            for chunk in messages.chunks(BATCH) {
                black_box(decode(&mut decoder, chunk));
            }
        })
    });
    group.bench_function("arrow_json_reader", |b| {
        b.iter(|| {
            let mut decoder = arrow_json::ReaderBuilder::new(values_schema.clone())
                .with_batch_size(BATCH)
                .build_decoder()
                .unwrap();
            let mut rest = &ndjson[..];
            let mut rows = 0;
            while !rest.is_empty() {
                let used = decoder.decode(rest).unwrap();
                rest = &rest[used..];
                if let Some(rb) = decoder.flush().unwrap() {
                    rows += rb.num_rows();
                }
            }
            if let Some(rb) = decoder.flush().unwrap() {
                rows += rb.num_rows();
            }
            assert_eq!(rows, EVENTS);
        })
    });
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("from_record_batch", |b| {
        b.iter(|| {
            let mut from = FromArrow::new(ArrowOptions::default());
            for rb in &record_batches {
                black_box(from.convert(rb).unwrap());
            }
        })
    });
    group.finish();

    // Both paths make the same values.
    let ours = values_only.convert(&records[..BATCH]).unwrap();
    let mut decoder = arrow_json::ReaderBuilder::new(values_schema)
        .with_batch_size(BATCH)
        .build_decoder()
        .unwrap();
    decoder.decode(&ndjson).unwrap();
    let theirs = decoder.flush().unwrap().unwrap();
    assert_eq!(ours, theirs.slice(0, BATCH));
    assert_eq!(arrow_schema.fields().len(), 4);
}

criterion_group!(benches, conversion);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio(
        "arrow_conversion",
        "json_then_to_record_batch",
        "arrow_json_reader",
    );
    testkit::bench::report_ratio("arrow_conversion", "to_record_batch", "arrow_json_reader");
}
