//! Generated IoT events → a Slack channel, one message per hot reading.
//!
//! ```text
//! SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T.../B.../... cargo run --example generator_to_slack -- --count 20
//! ```
//!
//! The incoming-webhook URL comes from `SLACK_WEBHOOK_URL` (it is a
//! secret: nothing prints it). Only readings above `--threshold` (default
//! 90) are posted, at most one message per second as Slack asks; rate
//! limits are waited out, never dropped.

use std::time::Duration;

use connector_core::{Pipeline, Properties, Value};
use sink_slack::SlackSink;
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let url = std::env::var("SLACK_WEBHOOK_URL")
        .map_err(|_| "set SLACK_WEBHOOK_URL to a Slack incoming-webhook URL")?;
    let mut generator = GeneratorConfig::new(Template::Iot).interval(Duration::from_millis(500));
    let mut threshold = 90.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--count" => generator.count = Some(value.parse()?),
            "--threshold" => threshold = value.parse()?,
            other => {
                return Err(format!("unknown option {other} (use --count, --threshold)").into());
            }
        }
    }

    let sink = SlackSink::from_properties(&Properties::from_pairs([
        ("url", url.as_str()),
        (
            "template",
            ":thermometer: `{{ .device }}` reads *{{ .number }}* at {{ .time }}",
        ),
    ]))?;
    let report = Pipeline::new(GeneratorSource::new(generator))
        .name("generator_to_slack")
        .filter(move |r| {
            r.get("number")
                .and_then(Value::as_f64)
                .is_some_and(|n| n > threshold)
        })
        .to(sink)
        .check_on_start(Duration::from_secs(5))
        .handle_signals(true)
        .run()
        .await?;
    eprintln!(
        "done: {} messages posted in {:.1}s",
        report.metrics.records_out,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
