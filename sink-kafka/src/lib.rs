//! The `kafka` sink: writes one Kafka message per record, encoded with the
//! configured `data_type` (JSON by default), the record key as message key.
//! A batch is acknowledged only when the broker acknowledged every message
//! in it; delivery errors are retried by the producer and then reported as
//! a failed batch, which the source delivers again. A missing topic is
//! created before the first write.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Properties, Sink};
//! use sink_kafka::KafkaSink;
//!
//! let mut sink = KafkaSink::from_properties(&Properties::from_pairs([
//!     ("brokers", "kafka1:9092"),
//!     ("topic", "events"),
//!     ("data_type", "json"),
//!     ("sasl", "plain"),
//!     ("username", "writer"),
//!     ("password", "s3cret"),
//! ]))?;
//! println!("{}", sink.check(std::time::Duration::from_secs(5)).await);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod config;
mod delivery;
mod sink;

pub use config::{KafkaSinkConfig, SPEC};
pub use sink::KafkaSink;
