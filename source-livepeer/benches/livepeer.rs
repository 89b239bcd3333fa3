//! Decoding speed of a viewership answer against a plain serde approach,
//! in the same run.
//!
//! `cargo bench -p source-livepeer --bench livepeer`
//!
//! - `livepeer_decode/serde_value`: the baseline: parse the answer into
//!   `serde_json::Value`s and build one record per element with
//!   `Value::from_json` (schema inferred per record).
//! - `livepeer_decode/livepeer_source`: `LivepeerSource::decode_answer`,
//!   what every poll does (split the array, run the `json` decoder on each
//!   element, stamp time and position, isolate bad elements).
//!
//! Both decode an answer of 1000 metrics broken down by playback ID,
//! device, browser and country.

use connector_core::{Record, Value};
use criterion::{Criterion, Throughput, criterion_group};
use source_livepeer::{LivepeerConfig, LivepeerSource};

const METRICS: usize = 1000;

fn answer() -> Vec<u8> {
    let metrics: Vec<serde_json::Value> = (0..METRICS)
        .map(|i| {
            let device = ["iPhone", "Android", "Desktop"][i % 3];
            let browser = ["Safari", "Chrome", "Firefox", "Edge"][i % 4];
            let country = ["United States", "Germany", "Brazil", "Japan", "India"][i % 5];
            serde_json::json!({
                "playbackId": format!("{:016x}", i * 7919),
                "device": device,
                "browser": browser,
                "country": country,
                "viewCount": (i * 13) % 500,
                "errorRate": (i % 10) as f64 / 100.0,
            })
        })
        .collect();
    serde_json::to_vec(&metrics).unwrap()
}

fn baseline(body: &[u8]) -> Vec<Record> {
    let elements: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
    elements
        .into_iter()
        .map(|e| match e {
            serde_json::Value::Object(map) => {
                Record::from_pairs(map.into_iter().map(|(k, v)| (k, Value::from_json(v))))
            }
            _ => panic!("not an object"),
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = answer();
    let mut source = LivepeerSource::new(LivepeerConfig::new(
        "key",
        std::time::Duration::from_secs(60),
    ))
    .unwrap();
    let ours = rt.block_on(source.decode_answer(&body, 0));
    assert_eq!(ours.len(), METRICS);
    assert_eq!(
        baseline(&body)[7].get("viewCount"),
        ours.records[7].get("viewCount")
    );

    let mut group = c.benchmark_group("livepeer_decode");
    group.throughput(Throughput::Elements(METRICS as u64));
    group.bench_function("serde_value", |b| b.iter(|| baseline(&body)));
    group.bench_function("livepeer_source", |b| {
        b.iter(|| rt.block_on(source.decode_answer(&body, 0)))
    });
    group.finish();
}

criterion_group!(benches, decode);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("livepeer_decode", "livepeer_source", "serde_value");
}
