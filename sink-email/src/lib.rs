//! The `email` sink: one mail per record over SMTP.
//!
//! Properties (see [`SPEC`]): `server`, `port` (587 STARTTLS by default,
//! 465 implicit TLS, 25 plain; `tls.mode` overrides what the port implies),
//! `username` and `password` (AUTH PLAIN or LOGIN), `from` (defaults to
//! `username`), `to` (a list), `subject` and `body` templates with
//! `{{ .column }}` (the body defaults to the record as JSON),
//! `tls.skip_verify_server`, and `tls.ca_file`, `timeout`, `retries`,
//! `retry_interval`, `content_type`.
//!
//! Delivery is at least once: a batch is acknowledged after the server
//! accepted each of its mails; a refused recipient rejects the record with
//! the server's reply and the sink goes on. See [`EmailSink`].
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Pipeline, Properties};
//! use sink_email::EmailSink;
//! use source_generator::GeneratorSource;
//!
//! let sink = EmailSink::from_properties(&Properties::from_pairs([
//!     ("server", "smtp.example.com"),
//!     ("username", "alerts@example.com"),
//!     ("password", "app-password"),
//!     ("to", "ops@example.com, oncall@example.com"),
//!     ("subject", "{{ .device }} reads {{ .number }}"),
//!     ("body", "Device {{ .device }} reported {{ .number }} at {{ .time }}."),
//! ]))?;
//! let source = GeneratorSource::from_properties(&Properties::from_pairs([
//!     ("template", "iot"), ("interval", "1m"), ("count", "3"),
//! ]))?;
//! Pipeline::new(source).to(sink).check_on_start(std::time::Duration::from_secs(10)).run().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod config;
mod sink;
mod stream;

pub use config::{EmailConfig, SPEC, TlsMode};
pub use lettre::message::Mailbox;
pub use sink::EmailSink;
