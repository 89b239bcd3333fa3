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
//!
//! # Cargo features
//!
//! Both are on by default, because Avro with a schema registry is the
//! common way to put records on a topic:
//!
//! | feature | `data_type` | what it adds |
//! | --- | --- | --- |
//! | `avro` | `avro`, `debezium-avro` and `debezium-avro-upsert` | Avro decoding, plain (`avro_schema`) or in the Confluent wire format with the schema registry client (`schema_registry_*`) |
//! | `protobuf` | `protobuf` | Protocol Buffers decoding from a `.proto` file (`proto_file`, `proto_message`), compiled at run time |
//!
//! `json`, `text`, `binary`, `delimited`, `debezium-json` and
//! `debezium-json-upsert` are always available. To build without the heavy
//! formats (and their dependencies: `apache-avro`, an HTTP client,
//! `prost-reflect`, `protox`), turn the defaults off and pick what you need:
//!
//! ```toml
//! [dependencies]
//! source-kafka = { version = "0.1", default-features = false }                       # no avro, no protobuf
//! # source-kafka = { version = "0.1", default-features = false, features = ["avro"] } # avro only
//! ```
//!
//! Without a feature, a `data_type` that needs it is a configuration error
//! naming the feature.

#![forbid(unsafe_code)]

mod config;
mod decode;
mod group;
mod offsets;
mod source;
mod worker;

pub use config::{GROUP_PREFIX, KafkaSourceConfig, SPEC, StartOffset};
pub use source::{KafkaSource, SourceStatus};
