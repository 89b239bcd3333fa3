//! The `http` sink (webhooks and any HTTP endpoint), and the HTTP request
//! machinery the `slack` and `timeplus` sinks are built on.
//!
//! The sink renders each record with a `{{ .column }}` template (or as a
//! JSON object) and sends it with the configured method, headers and
//! OAuth2 token; with `batch_format` it sends many records per request as a
//! JSON array or NDJSON. Up to `paralism` requests are in flight; records
//! with the same key go one after the other, in order.
//!
//! Delivery: a `2xx` answer delivers; connection errors, timeouts, `408`,
//! `429` and `5xx` are retried `retries` times, waiting `retry_interval`
//! (doubling up to `retry_max_interval`, and at least what `Retry-After`
//! asks); a `401` with OAuth2 fetches a new token and tries once more; any
//! other `4xx` rejects the records with the server's answer in the error.
//! A batch is acknowledged only when all of its requests ended.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Pipeline, Properties};
//! use sink_http::HttpSink;
//! use source_generator::GeneratorSource;
//!
//! let sink = HttpSink::from_properties(&Properties::from_json("http sink", serde_json::json!({
//!     "url": "https://hooks.example.com/ingest",
//!     "payload_field": r#"{"device": "{{ .device }}", "value": {{ .number }}}"#,
//!     "http_header": {"X-Source": "timeplus"},
//!     "oauth2": {
//!         "enabled": true,
//!         "client_key": "my-client",
//!         "client_secret": "my-secret",
//!         "token_url": "https://auth.example.com/oauth2/token",
//!         "scopes": ["ingest"]
//!     },
//!     "paralism": 8,
//!     "retries": 3,
//!     "retry_interval": "1s",
//! }))?)?;
//! let source = GeneratorSource::from_properties(&Properties::from_pairs([("template", "iot")]))?;
//! Pipeline::new(source).to(sink).max_in_flight(32).check_on_start(std::time::Duration::from_secs(5)).run().await?;
//! # Ok(()) }
//! ```
//!
//! Building another HTTP sink on the machinery: make an [`HttpClient`] from
//! [`ClientSettings`], describe the target as an [`Endpoint`], and send
//! [`Request`]s through a [`Dispatcher`]; [`Delivery::resolve`] resolves
//! the batch's ack. The [`settings`] module has the shared properties and
//! [`check`] the shared connection-check steps.

#![forbid(unsafe_code)]

mod body;
pub mod check;
mod client;
mod config;
mod inflight;
mod oauth2;
mod retry;
pub mod settings;
mod sink;

pub use body::{BatchFormat, Payload};
pub use client::{
    ClientSettings, Delivery, Endpoint, HttpClient, Label, Request, Response, redact_url,
    truncate_body,
};
pub use config::{HttpSinkConfig, SPEC};
pub use connector_core::tls::TlsSettings;
pub use inflight::Dispatcher;
pub use oauth2::OAuth2Config;
pub use retry::{Backoff, MAX_RETRY_AFTER, RetryPolicy, is_retryable_status, retry_after};
pub use settings::is_sensitive_header;
pub use sink::HttpSink;

/// Re-exported so users name methods, headers and URLs with the same types.
pub use reqwest;
