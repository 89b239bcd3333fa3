//! A Pulsar topic → the console, acknowledging each message once printed.
//!
//! ```text
//! cargo run --example pulsar_to_console -- pulsar://localhost:6650 my-topic
//! cargo run --example pulsar_to_console -- pulsar://localhost:6650 my-topic --data-type text --from earliest
//! PULSAR_TOKEN=eyJ... cargo run --example pulsar_to_console -- pulsar+ssl://broker:6651 my-topic
//! ```
//!
//! Records go to standard output as JSON lines. The subscription is
//! `timeplus-source-pulsar-to-console`, so a restart resumes after the last
//! printed message. Ctrl-C stops after acknowledging what was printed.

use connector_core::console::ConsoleSink;
use connector_core::{BadDataPolicy, Pipeline, Properties};
use source_pulsar::PulsarSource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let mut args = std::env::args().skip(1);
    let usage = "usage: pulsar_to_console BROKER_URL TOPIC [--data-type json|text|...] [--from latest|earliest]";
    let broker_url = args.next().ok_or(usage)?;
    let topic = args.next().ok_or(usage)?;
    let mut props = Properties::from_pairs([
        ("broker_url", broker_url.as_str()),
        ("topic", topic.as_str()),
        ("auth_type", ""),
        ("data_type", "json"),
        ("id", "pulsar-to-console"),
    ]);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(usage)?;
        match flag.as_str() {
            "--data-type" => props.set("data_type", value),
            "--from" => props.set("initial_position", value),
            _ => return Err(usage.into()),
        };
    }
    if let Ok(token) = std::env::var("PULSAR_TOKEN") {
        props.set("auth_type", "token");
        props.set("auth_params", serde_json::json!({ "token": token }));
    }

    let source = PulsarSource::from_properties(&props)?;
    let report = Pipeline::new(source)
        .to(ConsoleSink::stdout())
        // An undecodable message is logged and skipped (and acknowledged).
        .on_bad_data(BadDataPolicy::Skip)
        .handle_signals(true)
        .run()
        .await?;
    eprintln!("{} records printed", report.metrics.records_out);
    Ok(())
}
