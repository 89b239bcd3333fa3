//! An application of its own that embeds the connectors: JSON events from a
//! Kafka topic into a ClickHouse table, at least once.
//!
//! ```text
//! KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC=events \
//! CLICKHOUSE_DSN=clickhouse://default:@127.0.0.1:8123/default CLICKHOUSE_TABLE=events \
//!     cargo run -p embed
//! ```
//!
//! Everything is configured with the connectors' documented properties
//! (`../../SPEC.md`): the Kafka source reads the topic in the consumer
//! group `KAFKA_GROUP` (default `embed`) and converts each event to the
//! declared `SCHEMA`; the ClickHouse sink creates the table from that
//! schema when it does not exist and inserts in batches. Offsets are
//! committed only for rows ClickHouse accepted, so a restart (or a crash)
//! resumes without losing an event. An undecodable event is logged and
//! skipped. Ctrl-C or SIGTERM stops after delivering what was read.

use connector_core::{BadDataPolicy, Pipeline, Properties};
use sink_clickhouse::ClickHouseSink;
use source_kafka::KafkaSource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info,librdkafka=warn").with_writer(std::io::stderr).init();
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let kafka = Properties::from_pairs([
        ("brokers", env("KAFKA_BROKERS", "127.0.0.1:9092")),
        ("topic", env("KAFKA_TOPIC", "events")),
        ("group", env("KAFKA_GROUP", "embed")),
        ("offset", "earliest".to_owned()),
        ("tls.disable", env("KAFKA_TLS_DISABLE", "true")),
        ("data_type", "json".to_owned()),
        ("schema", env("SCHEMA", "device string, number float, time datetime")),
    ]);
    let clickhouse = Properties::from_pairs([
        ("dsn", env("CLICKHOUSE_DSN", "clickhouse://default:@127.0.0.1:8123/default")),
        ("table_name", env("CLICKHOUSE_TABLE", "events")),
        ("engine", "MergeTree".to_owned()),
        ("suffix", "ORDER BY tuple()".to_owned()),
        ("batch_count", "10000".to_owned()),
    ]);
    let report = Pipeline::new(KafkaSource::from_properties(&kafka)?)
        .to(ClickHouseSink::from_properties(&clickhouse)?)
        .on_bad_data(BadDataPolicy::Skip)
        .handle_signals(true)
        .run()
        .await?;
    let m = report.metrics;
    println!("delivered {} rows, skipped {} bad events", m.records_out, m.bad_records);
    Ok(())
}
