//! Livepeer Studio's realtime viewership → the console, one JSON line per
//! metric.
//!
//! ```text
//! LIVEPEER_API_KEY=... cargo run --example livepeer_to_console -- --interval 60s
//! LIVEPEER_API_KEY=... cargo run --example livepeer_to_console -- --breakdown-by playbackId,country
//! ```
//!
//! `--base-url` points it at another server (self-hosted, or a test stand-in).
//! Failed polls are logged and polling goes on; Ctrl-C stops.

use std::time::Duration;

use connector_core::console::ConsoleSink;
use connector_core::{Pipeline, Properties};
use source_livepeer::LivepeerSource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let api_key = std::env::var("LIVEPEER_API_KEY")
        .map_err(|_| "set LIVEPEER_API_KEY to a Livepeer Studio API key")?;
    let mut props = Properties::from_pairs([
        ("api_key", api_key.as_str()),
        ("interval", "60s"),
        ("data_type", "json"),
    ]);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--interval" => props.set("interval", value),
            "--data-type" => props.set("data_type", value),
            "--base-url" => props.set("base_url", value),
            "--playback-id" => props.set("playback_id", value),
            "--breakdown-by" => props.set("breakdown_by", value),
            other => {
                return Err(format!(
                    "unknown option {other} (use --interval, --data-type, --base-url, --playback-id, --breakdown-by)"
                )
                .into());
            }
        };
    }

    let source = LivepeerSource::from_properties(&props)?;
    Pipeline::new(source)
        .name("livepeer_to_console")
        .to(ConsoleSink::stdout())
        .check_on_start(Duration::from_secs(10))
        .handle_signals(true)
        .run()
        .await?;
    Ok(())
}
