//! The `ably` source: subscribes to an Ably channel through the
//! server-sent-events API (`GET {base_url}/sse?channels=<channel>&v=1.2`,
//! HTTP Basic auth with `api_key`) and emits one record per message with
//! the columns `id`, `name`, `data` (decoded by the message's `encoding`),
//! `timestamp` and `client_id`. After any disconnect it resumes with
//! `lastEvent`, so no message is skipped; a batch the sink fails is
//! received again the same way (at least once, within Ably's two-minute
//! resume window). See [`AblySource`] and [`SPEC`].
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Pipeline, Properties, console::ConsoleSink};
//! use source_ably::AblySource;
//!
//! let source = AblySource::from_properties(&Properties::from_pairs([
//!     ("api_key", "<appId.keyId:secret>"),
//!     ("channel", "sensors"),
//! ]))?;
//! Pipeline::new(source).to(ConsoleSink::stdout()).handle_signals(true).run().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod config;
mod message;
mod source;

pub use config::{AblyConfig, DEFAULT_BASE_URL, SPEC};
pub use message::{decode_data, schema, to_record};
pub use source::{AblySource, StreamStats};
