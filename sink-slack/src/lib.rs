//! The `slack` sink: each record becomes a message posted to a Slack
//! incoming webhook, as `{"text": "<rendered template>"}` (the record as
//! JSON when no template is given).
//!
//! Slack allows about one message per second per webhook and answers
//! `429` with `Retry-After` beyond that; the sink spaces its messages
//! `min_interval` apart (1s) and, when limited anyway, waits and sends the
//! same message again instead of dropping it. Messages go out one at a
//! time, in order. Slack's error answers (`invalid_payload`, `no_text`,
//! `channel_not_found`, ...) are reported verbatim.
//!
//! The webhook URL is a secret: it never appears in `Debug` output, logs,
//! errors or connection-check reports.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Pipeline, Properties};
//! use sink_slack::SlackSink;
//! use source_generator::GeneratorSource;
//!
//! let url = std::env::var("SLACK_WEBHOOK_URL").expect("set SLACK_WEBHOOK_URL");
//! let sink = SlackSink::from_properties(&Properties::from_pairs([
//!     ("url", url.as_str()),
//!     ("template", "Sensor {{ .device }} reads {{ .number }} at {{ .time }}"),
//! ]))?;
//! let source = GeneratorSource::from_properties(&Properties::from_pairs([
//!     ("template", "iot"), ("interval", "5s"), ("count", "3"),
//! ]))?;
//! Pipeline::new(source).to(sink).run().await?;
//! # Ok(()) }
//! ```
//!
//! The HTTP work (timeouts, retries, `Retry-After`, TLS, pacing) is the
//! `sink-http` crate's machinery.

#![forbid(unsafe_code)]

mod config;
mod sink;

pub use config::{SPEC, SlackConfig};
pub use sink::SlackSink;
