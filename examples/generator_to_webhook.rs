//! Generated IoT events → an HTTP webhook, one POST per event.
//!
//! ```text
//! WEBHOOK_URL=https://hooks.example.com/in cargo run --example generator_to_webhook
//! WEBHOOK_URL=http://127.0.0.1:8080/in cargo run --example generator_to_webhook -- --count 100 --paralism 8
//! ```
//!
//! The URL comes from `WEBHOOK_URL`. Each event is sent as
//! `{"device": ..., "value": ..., "time": ...}`; failed requests are
//! retried three times. The connection is checked before the first event
//! (DNS, TCP, TLS, and an `OPTIONS` request without a body).

use std::time::Duration;

use connector_core::Pipeline;
use connector_core::config::parse_duration;
use sink_http::{HttpSink, HttpSinkConfig, Payload, RetryPolicy};
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let url = std::env::var("WEBHOOK_URL")
        .map_err(|_| "set WEBHOOK_URL to the webhook's URL, e.g. http://127.0.0.1:8080/in")?;
    let mut generator = GeneratorConfig::new(Template::Iot).interval(Duration::from_millis(200));
    let mut parallelism = 4;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--count" => generator.count = Some(value.parse()?),
            "--interval" => generator.interval = parse_duration(&value)?,
            "--paralism" | "--parallelism" => parallelism = value.parse()?,
            other => {
                return Err(format!(
                    "unknown option {other} (use --count, --interval, --paralism)"
                )
                .into());
            }
        }
    }

    let config = HttpSinkConfig::new(url.parse()?)
        .payload(Payload::parse(
            r#"{"device": {{ json .device }}, "value": {{ .number }}, "time": {{ json .time }}}"#,
        )?)
        .parallelism(parallelism)
        .retry(RetryPolicy::new(3, Duration::from_secs(1)))
        .timeout(Duration::from_secs(10));
    let report = Pipeline::new(GeneratorSource::new(generator))
        .name("generator_to_webhook")
        .to(HttpSink::new(config)?)
        // Enough batches in flight to keep every request slot busy.
        .max_in_flight(parallelism.max(16))
        .check_on_start(Duration::from_secs(5))
        .handle_signals(true)
        .log_progress(Duration::from_secs(5))
        .run()
        .await?;
    eprintln!(
        "done: {} events delivered, {} failed batches, {} rejected, in {:.1}s",
        report.metrics.records_out,
        report.metrics.batches_failed,
        report.metrics.batches_rejected,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
