//! The core of the connector library: the record model, end-to-end
//! acknowledgements, the [`Source`] and [`Sink`] traits, the property-map
//! configuration layer, data formats and a small pipeline runner.
//!
//! Connector crates (`source-kafka`, `sink-clickhouse`, ...) implement the
//! traits; any Rust stream processor can embed them, or run them with
//! [`Pipeline`].
//!
//! ```no_run
//! use connector_core::{Pipeline, console::ConsoleSink, memory};
//!
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! let (_tx, source) = memory::channel(16); // any Source
//! Pipeline::new(source)
//!     .filter(|r| r.get("number").and_then(|v| v.as_f64()).is_some_and(|n| n > 50.0))
//!     .to(ConsoleSink::stdout())
//!     .handle_signals(true)
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

pub mod ack;
#[cfg(feature = "arrow")]
pub mod arrow;
pub mod check;
pub mod config;
pub mod console;
pub mod error;
pub mod format;
#[cfg(feature = "http")]
pub mod http;
pub mod memory;
pub mod pipeline;
pub mod record;
pub mod schema;
pub mod sink;
pub mod source;
#[cfg(feature = "tls")]
pub mod tls;
pub mod value;

pub use ack::{Ack, AckReceiver, AckStatus, AckTracker};
pub use check::{CheckReport, FailureKind};
pub use config::{Properties, Secret};
pub use error::{Error, Result};
pub use pipeline::{BadDataPolicy, Metrics, MetricsSnapshot, Pipeline, PipelineReport};
pub use record::{BadRecord, Batch, ChangeKind, Header, Position, Record};
pub use schema::{DataType, Field, Schema};
pub use sink::{BatchLimits, Sink};
pub use source::Source;
pub use value::{Decimal, StructValue, Value};

/// Re-exported so connectors and users share one version.
pub use async_trait::async_trait;
/// Re-exported so connectors and users share one version.
pub use bytes;
/// Re-exported so users can stop pipelines without a direct dependency.
pub use tokio_util::sync::CancellationToken;
