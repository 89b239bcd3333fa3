//! Generated IoT events → a Pulsar topic, one JSON message per event, keyed
//! by device.
//!
//! ```text
//! cargo run --example generator_to_pulsar -- pulsar://localhost:6650 iot-events
//! cargo run --example generator_to_pulsar -- pulsar://localhost:6650 iot-events --count 100000 --interval 0ms
//! ```
//!
//! A record counts as delivered once the broker acknowledged it; the final
//! line says how many were.

use std::time::Duration;

use connector_core::config::parse_duration;
use connector_core::{Pipeline, Properties};
use sink_pulsar::PulsarSink;
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let mut args = std::env::args().skip(1);
    let usage = "usage: generator_to_pulsar BROKER_URL TOPIC [--count N] [--interval 10ms]";
    let broker_url = args.next().ok_or(usage)?;
    let topic = args.next().ok_or(usage)?;
    let mut config = GeneratorConfig::new(Template::Iot).interval(Duration::from_millis(100));
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(usage)?;
        match flag.as_str() {
            "--count" => config.count = Some(value.parse()?),
            "--interval" => config.interval = parse_duration(&value)?,
            _ => return Err(usage.into()),
        }
    }

    let sink = PulsarSink::from_properties(&Properties::from_pairs([
        ("broker_url", broker_url.as_str()),
        ("topic", topic.as_str()),
        ("auth_type", ""),
        ("data_type", "json"),
    ]))?;
    let report = Pipeline::new(GeneratorSource::new(config))
        // The device is the message key: Pulsar routes and orders by it.
        .map(|record| {
            let device = record
                .get("device")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            match device {
                Some(device) => record.with_key(device),
                None => record,
            }
        })
        .to(sink)
        .handle_signals(true)
        .run()
        .await?;
    eprintln!(
        "{} records delivered to {topic}",
        report.metrics.records_out
    );
    Ok(())
}
