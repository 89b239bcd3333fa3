//! Helpers shared by the source's integration tests.

#![allow(dead_code)]

use std::time::Duration;

use connector_core::memory::{CollectSink, Collected};
use connector_core::pipeline::PipelineHandle;
use connector_core::{Pipeline, Properties, Record, Value};
use kafka_common::testing::MockKafka;
use source_kafka::{KafkaSource, SourceStatus};

/// Generous: group joins on the mock cluster take about 3 seconds.
pub const WAIT: Duration = Duration::from_secs(60);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Source properties for `topic` on `kafka`.
pub fn props(kafka: &MockKafka, topic: &str, data_type: &str) -> Properties {
    Properties::from_pairs([
        ("brokers", kafka.bootstrap()),
        ("topic", topic),
        ("offset", "earliest"),
        ("data_type", data_type),
        ("tls.disable", "true"),
    ])
}

/// A pipeline from `source` to a collecting sink, running on its own task.
pub fn collect(source: KafkaSource) -> (PipelineHandle, Collected, SourceStatus) {
    let status = source.status();
    let (sink, collected) = CollectSink::new();
    let handle = Pipeline::new(source).to(sink).spawn();
    (handle, collected, status)
}

/// Waits for `n` records or panics with how many arrived.
pub async fn expect_records(collected: &Collected, n: usize) {
    assert!(
        collected.wait_for(n, WAIT).await,
        "expected {n} records, got {}",
        collected.len()
    );
}

/// The `n` column of JSON records `{"n": ...}`.
pub fn numbers(records: &[Record]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r.get("n").and_then(Value::as_i64).expect("n column"))
        .collect()
}

/// Waits until `check` holds, polling.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A source whose group notices joins and departures within seconds: the
/// mock cluster waits almost a session timeout for members to rejoin.
pub fn quick_group_source(props: &Properties) -> KafkaSource {
    let mut config = source_kafka::KafkaSourceConfig::from_properties(props).unwrap();
    config.client.options.extend([
        ("session.timeout.ms".to_owned(), "6000".to_owned()),
        ("heartbeat.interval.ms".to_owned(), "500".to_owned()),
    ]);
    KafkaSource::new(config).unwrap()
}
