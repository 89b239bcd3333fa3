//! The `livepeer` source: polls Livepeer Studio's realtime viewership API
//! (`GET {base_url}/data/views/now`, Bearer `api_key`) every `interval` and
//! emits one record per metric, decoded as `json` (columns) or `text` (one
//! `raw` column). Failed polls are reported and polling goes on with
//! backoff. See [`LivepeerSource`] for the schedule and [`SPEC`] for every
//! property.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Pipeline, Properties, console::ConsoleSink};
//! use source_livepeer::LivepeerSource;
//!
//! let source = LivepeerSource::from_properties(&Properties::from_pairs([
//!     ("interval", "60s"),
//!     ("api_key", "<your Livepeer Studio API key>"),
//!     ("data_type", "json"),
//!     ("breakdown_by", "playbackId,country"),
//! ]))?;
//! Pipeline::new(source).to(ConsoleSink::stdout()).handle_signals(true).run().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod config;
mod source;

pub use config::{DEFAULT_BASE_URL, LivepeerConfig, SPEC};
pub use source::{LivepeerSource, PollStats};
