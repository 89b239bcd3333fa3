//! A Kafka topic → the console, in any `data_type`, committing offsets
//! only for what was printed.
//!
//! ```text
//! cargo run --example kafka_to_console -- localhost:9092 orders
//! cargo run --example kafka_to_console -- localhost:9092 logs --data-type text --offset latest
//! cargo run --example kafka_to_console -- broker:9093 events --tls \
//!     --set data_type=delimited --set fields=id,name --set group=my-readers
//! KAFKA_SASL=scram-sha-512 KAFKA_USERNAME=reader KAFKA_PASSWORD=... \
//!     cargo run --example kafka_to_console -- broker:9093 orders --tls
//! ```
//!
//! Records go to standard output as JSON lines (prefixed with their change
//! kind for Debezium formats). The group is `timeplus-source-kafka-to-console`
//! unless `--set group=...` says otherwise, so a restart resumes after the
//! last printed record. `--count N` stops after N records; Ctrl-C stops
//! after committing what was printed. `--check` only tests the connection.
//! Any property of the kafka source can be given with `--set key=value`.

use std::time::Duration;

use connector_core::console::ConsoleSink;
use connector_core::{BadDataPolicy, Pipeline, Properties, Source};
use source_kafka::KafkaSource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();

    let usage = "usage: kafka_to_console BROKERS TOPIC [--data-type json|text|binary|delimited|...] \
                 [--offset earliest|latest] [--tls] [--count N] [--check] [--set key=value]...";
    let mut args = std::env::args().skip(1);
    let brokers = args.next().ok_or(usage)?;
    let topic = args.next().ok_or(usage)?;
    let mut props = Properties::from_pairs([
        ("brokers", brokers.as_str()),
        ("topic", topic.as_str()),
        ("offset", "earliest"),
        ("data_type", "json"),
        ("id", "kafka-to-console"),
        ("tls.disable", "true"),
    ]);
    let mut count: Option<u64> = None;
    let mut check_only = false;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--tls" => {
                props.remove("tls.disable");
            }
            "--check" => check_only = true,
            "--data-type" => {
                props.set("data_type", args.next().ok_or(usage)?);
            }
            "--offset" => {
                props.set("offset", args.next().ok_or(usage)?);
            }
            "--count" => count = Some(args.next().ok_or(usage)?.parse()?),
            "--set" => {
                let pair = args.next().ok_or(usage)?;
                let (key, value) = pair.split_once('=').ok_or(usage)?;
                props.set(key, value);
            }
            _ => return Err(usage.into()),
        }
    }
    for (var, property) in [
        ("KAFKA_SASL", "sasl"),
        ("KAFKA_USERNAME", "username"),
        ("KAFKA_PASSWORD", "password"),
    ] {
        if let Ok(value) = std::env::var(var) {
            props.set(property, value);
        }
    }

    let mut source = KafkaSource::from_properties(&props)?;
    if check_only {
        let report = source.check(Duration::from_secs(10)).await;
        println!("{report}");
        std::process::exit(if report.is_ok() { 0 } else { 1 });
    }
    let changes = props
        .get("data_type")
        .and_then(|v| v.as_str())
        .is_some_and(|t| t.starts_with("debezium"));
    let pipeline = Pipeline::new(source)
        .name("kafka-to-console")
        .to(ConsoleSink::stdout().with_change_kind(changes))
        // An undecodable message is logged and skipped (its offset is
        // committed with its batch).
        .on_bad_data(BadDataPolicy::Skip)
        .handle_signals(true);
    let metrics = pipeline.metrics();
    let handle = pipeline.spawn();
    if let Some(count) = count {
        while metrics.snapshot().records_out < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle.stop();
    }
    let report = handle.join().await?;
    eprintln!(
        "{} records printed, {} bad records skipped",
        report.metrics.records_out, report.metrics.bad_records
    );
    Ok(())
}
