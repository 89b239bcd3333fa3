//! An application of its own that embeds the connectors: JSON events from a
//! Kafka topic into a ClickHouse table, at least once.
//!
//! ```text
//! KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC=events \
//! CLICKHOUSE_DSN=clickhouse://default:@127.0.0.1:8123/default CLICKHOUSE_TABLE=events \
//!     cargo run -p embed
//! ```
//!
//! Everything is configured with the connectors' documented properties,
//! each from an environment variable or its default (the tables below):
//! the Kafka source reads the topic in the consumer group `KAFKA_GROUP`
//! (default `embed`) and converts each event to the declared `SCHEMA`; the
//! ClickHouse sink creates the table from that schema when it does not
//! exist and inserts in batches. Offsets are committed only for rows
//! ClickHouse accepted, so a restart (or a crash) resumes without losing an
//! event. An undecodable event is logged and skipped. Ctrl-C or SIGTERM
//! stops after delivering what was read.

use connector_core::{BadDataPolicy, Pipeline, Properties};
use sink_clickhouse::ClickHouseSink;
use source_kafka::KafkaSource;

/// Kafka source properties: (property, environment variable, default).
const KAFKA: &[(&str, &str, &str)] = &[
    ("brokers", "KAFKA_BROKERS", "127.0.0.1:9092"),
    ("topic", "KAFKA_TOPIC", "events"),
    ("group", "KAFKA_GROUP", "embed"),
    ("offset", "KAFKA_OFFSET", "earliest"),
    ("tls.disable", "KAFKA_TLS_DISABLE", "true"),
    ("data_type", "KAFKA_DATA_TYPE", "json"),
    (
        "schema",
        "SCHEMA",
        "device string, number float, time datetime",
    ),
];

/// ClickHouse sink properties: (property, environment variable, default).
const CLICKHOUSE: &[(&str, &str, &str)] = &[
    (
        "dsn",
        "CLICKHOUSE_DSN",
        "clickhouse://default:@127.0.0.1:8123/default",
    ),
    ("table_name", "CLICKHOUSE_TABLE", "events"),
    ("engine", "CLICKHOUSE_ENGINE", "MergeTree"),
    ("suffix", "CLICKHOUSE_SUFFIX", "ORDER BY tuple()"),
    ("batch_count", "CLICKHOUSE_BATCH_COUNT", "10000"),
];

/// The properties of `table`, each from its variable when set.
fn properties(table: &[(&str, &str, &str)]) -> Properties {
    Properties::from_pairs(table.iter().map(|&(property, var, default)| {
        (
            property,
            std::env::var(var).unwrap_or_else(|_| default.to_owned()),
        )
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("info,librdkafka=warn")
        .with_writer(std::io::stderr)
        .init();
    let report = Pipeline::new(KafkaSource::from_properties(&properties(KAFKA))?)
        .to(ClickHouseSink::from_properties(&properties(CLICKHOUSE))?)
        .on_bad_data(BadDataPolicy::Skip)
        .handle_signals(true)
        .run()
        .await?;
    let m = report.metrics;
    println!(
        "delivered {} rows, skipped {} bad events",
        m.records_out, m.bad_records
    );
    Ok(())
}
