//! The `timeplus` sink: sends query results to another Timeplus/Proton
//! stream through the ingest REST API,
//! `POST {url}/proton/v1/ingest/streams/{stream_name}` with
//! `{"columns": [...], "data": [[...], ...]}`, many rows per request.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Pipeline, Properties};
//! use sink_timeplus::TimeplusSink;
//! use source_generator::GeneratorSource;
//!
//! let sink = TimeplusSink::from_properties(&Properties::from_pairs([
//!     ("stream_name", "iot_readings"),
//!     ("url", "http://localhost:3218"),
//! ]))?;
//! let source = GeneratorSource::from_properties(&Properties::from_pairs([("template", "iot")]))?;
//! Pipeline::new(source).to(sink).check_on_start(std::time::Duration::from_secs(5)).run().await?;
//! # Ok(()) }
//! ```
//!
//! # Chaining pipelines inside one process
//!
//! To feed one pipeline's output into another without a server in
//! between, use the in-memory channel pair of the core crate,
//! [`connector_core::memory::channel`]: its sink end is the first
//! pipeline's sink, its source end the second pipeline's source. The
//! channel is bounded (a full channel makes the first pipeline wait, so
//! memory stays bounded) and batches keep their acknowledgements as they
//! cross: the first pipeline's source learns that a record was delivered
//! only when the second pipeline's sink delivered it. Closing the first
//! pipeline ends the second one's source.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> connector_core::Result<()> {
//! use connector_core::memory::{self, CollectSink};
//! use connector_core::{Pipeline, Properties, Value};
//! use source_generator::GeneratorSource;
//!
//! // Upstream: generated readings, keeping only the hot ones.
//! let source = GeneratorSource::from_properties(&Properties::from_pairs([
//!     ("template", "iot"), ("interval", "0ms"), ("count", "1000"), ("seed", "1"),
//! ]))?;
//! let (to_next, from_previous) = memory::channel(8);
//! let upstream = Pipeline::new(source)
//!     .filter(|r| r.get("number").and_then(Value::as_f64).is_some_and(|n| n > 90.0))
//!     .to(to_next);
//!
//! // Downstream: reads what upstream delivered; any sink works here (a
//! // `TimeplusSink`, an `HttpSink`, ...).
//! let (sink, collected) = CollectSink::new();
//! let downstream = Pipeline::new(from_previous).to(sink);
//!
//! let (up, down) = tokio::join!(upstream.run(), downstream.run());
//! let (up, down) = (up?, down?);
//! assert_eq!(up.metrics.records_out, down.metrics.records_out);
//! assert_eq!(collected.len() as u64, down.metrics.records_out);
//! assert!(collected.records().iter().all(|r| r.get("number").and_then(Value::as_f64).unwrap() > 90.0));
//! # Ok(()) }
//! ```
//!
//! The HTTP work (timeouts, retries, `Retry-After`, TLS, parallelism with
//! per-key order) is the `sink-http` crate's machinery.

#![forbid(unsafe_code)]

mod config;
mod sink;

pub use config::{SPEC, TimeplusConfig};
pub use sink::{TimeplusSink, ingest_body};
