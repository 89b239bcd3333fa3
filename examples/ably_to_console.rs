//! An Ably channel → the console, one JSON line per message.
//!
//! ```text
//! ABLY_API_KEY=appId.keyId:secret cargo run --example ably_to_console -- --channel sensors
//! ```
//!
//! Message data is decoded by its encoding (json, base64, utf-8); after a
//! disconnect the stream resumes where it stopped. `--rewind 10` also shows
//! the last ten messages; `--base-url` points it at another endpoint.

use std::time::Duration;

use connector_core::console::ConsoleSink;
use connector_core::{Pipeline, Properties};
use source_ably::AblySource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let api_key = std::env::var("ABLY_API_KEY")
        .map_err(|_| "set ABLY_API_KEY to an Ably API key (appId.keyId:secret)")?;
    let mut props = Properties::from_pairs([("api_key", api_key.as_str())]);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--channel" => props.set("channel", value),
            "--rewind" => props.set("rewind", value),
            "--base-url" => props.set("base_url", value),
            other => {
                return Err(format!(
                    "unknown option {other} (use --channel, --rewind, --base-url)"
                )
                .into());
            }
        };
    }

    let source = AblySource::from_properties(&props)?;
    Pipeline::new(source)
        .name("ably_to_console")
        .to(ConsoleSink::stdout())
        .check_on_start(Duration::from_secs(10))
        .handle_signals(true)
        .run()
        .await?;
    Ok(())
}
