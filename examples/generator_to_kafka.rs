//! Generated events → a Kafka topic, one message per event, keyed by device
//! (or host, or user), acknowledged once the broker has every message.
//!
//! ```text
//! cargo run --example generator_to_kafka -- localhost:9092 iot-events
//! cargo run --example generator_to_kafka -- localhost:9092 iot-events --count 100000 --interval 0ms
//! cargo run --example generator_to_kafka -- broker:9093 devops --template devops --tls \
//!     --set partitions=6 --set data_type=delimited
//! ```
//!
//! The sink creates the topic if it is missing (`--set partitions=N`,
//! `--set replication_factor=N`). Any property of the kafka sink can be
//! given with `--set key=value`; `KAFKA_SASL`, `KAFKA_USERNAME` and
//! `KAFKA_PASSWORD` set the SASL properties. The final line says how many
//! records the broker acknowledged.

use std::time::Duration;

use connector_core::config::parse_duration;
use connector_core::{Pipeline, Properties};
use sink_kafka::KafkaSink;
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();

    let usage = "usage: generator_to_kafka BROKERS TOPIC [--template iot|user_logins|devops] \
                 [--count N] [--interval 10ms] [--tls] [--set key=value]...";
    let mut args = std::env::args().skip(1);
    let brokers = args.next().ok_or(usage)?;
    let topic = args.next().ok_or(usage)?;
    let mut props = Properties::from_pairs([
        ("brokers", brokers.as_str()),
        ("topic", topic.as_str()),
        ("tls.disable", "true"),
    ]);
    let mut config = GeneratorConfig::new(Template::Iot).interval(Duration::from_millis(100));
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--tls" => {
                props.remove("tls.disable");
            }
            "--template" => config.template = args.next().ok_or(usage)?.parse()?,
            "--count" => config.count = Some(args.next().ok_or(usage)?.parse()?),
            "--interval" => config.interval = parse_duration(&args.next().ok_or(usage)?)?,
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

    let key_column = match config.template {
        Template::Iot => "device",
        Template::UserLogins => "username",
        Template::Devops => "hostname",
    };
    let sink = KafkaSink::from_properties(&props)?;
    let report = Pipeline::new(GeneratorSource::new(config))
        // The key picks the partition: one device's events stay in order.
        .map(move |record| {
            let key = record
                .get(key_column)
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            match key {
                Some(key) => record.with_key(key),
                None => record,
            }
        })
        .to(sink)
        .handle_signals(true)
        .log_progress(Duration::from_secs(5))
        .run()
        .await?;
    eprintln!(
        "{} records delivered to {topic}",
        report.metrics.records_out
    );
    Ok(())
}
