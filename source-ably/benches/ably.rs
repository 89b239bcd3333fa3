//! Message decoding speed against a plain serde approach, in the same run.
//!
//! `cargo bench -p source-ably --bench ably`
//!
//! - `ably_decode/serde_value`: the baseline: parse each message event into
//!   a `serde_json::Value`, parse its JSON-encoded `data` the same way, and
//!   build the record with `Value::from_json`.
//! - `ably_decode/ably_source`: `source_ably::to_record`, what the source
//!   does per message event (typed parse, `encoding` chain undone, shared
//!   schema).
//!
//! Both read 1000 message events shaped like Ably's (`encoding: json`).

use connector_core::{Record, Value};
use criterion::{Criterion, Throughput, criterion_group};

const MESSAGES: usize = 1000;

fn events() -> Vec<String> {
    (0..MESSAGES)
        .map(|i| {
            let data = serde_json::json!({"device": format!("device_{}", i % 3), "number": i as f64 * 0.5, "ok": i % 2 == 0});
            serde_json::json!({
                "id": format!("YqigX7VFsR:{i}:0"),
                "name": "reading",
                "timestamp": 1_556_806_691_341_i64 + i as i64,
                "encoding": "json",
                "channel": "sensors",
                "clientId": "sensor-7",
                "data": data.to_string(),
            })
            .to_string()
        })
        .collect()
}

fn baseline(event: &str) -> Record {
    let mut message: serde_json::Value = serde_json::from_str(event).unwrap();
    let data: serde_json::Value =
        serde_json::from_str(message["data"].as_str().unwrap_or("null")).unwrap();
    Record::from_pairs([
        ("id", Value::from_json(message["id"].take())),
        ("name", Value::from_json(message["name"].take())),
        ("data", Value::from_json(data)),
        (
            "timestamp",
            Value::Timestamp(message["timestamp"].as_i64().unwrap_or(0) * 1000),
        ),
        ("client_id", Value::from_json(message["clientId"].take())),
    ])
}

fn decode(c: &mut Criterion) {
    let events = events();
    assert_eq!(
        baseline(&events[5]).get_path("data.number"),
        source_ably::to_record(&events[5])
            .unwrap()
            .get_path("data.number")
    );
    let mut group = c.benchmark_group("ably_decode");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("serde_value", |b| {
        b.iter(|| events.iter().map(|e| baseline(e)).collect::<Vec<_>>())
    });
    group.bench_function("ably_source", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| source_ably::to_record(e).unwrap())
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, decode);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("ably_decode", "ably_source", "serde_value");
}
