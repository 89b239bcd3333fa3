//! The `kafka` source: reads a topic as a member of a consumer group and
//! decodes each message with the configured `data_type`. Offsets are
//! committed only for records whose batches the sink acknowledged, so a
//! restart resumes from where delivery stopped and a crash repeats at most
//! the records that were in flight. Several processes in one group split
//! the topic's partitions.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Properties, Source};
//! use source_kafka::KafkaSource;
//!
//! let props = Properties::from_pairs([
//!     ("brokers", "kafka1:9092,kafka2:9092"),
//!     ("topic", "events"),
//!     ("offset", "earliest"),
//!     ("data_type", "json"),
//!     ("group", "my-readers"),
//!     ("sasl", "scram-sha-512"),
//!     ("username", "reader"),
//!     ("password", "s3cret"),
//! ]);
//! let mut source = KafkaSource::from_properties(&props)?;
//! println!("{}", source.check(std::time::Duration::from_secs(5)).await);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod config;
mod group;
mod offsets;
mod source;
mod worker;

pub use config::{GROUP_PREFIX, KafkaSourceConfig, SPEC, StartOffset};
pub use source::{KafkaSource, SourceStatus};
