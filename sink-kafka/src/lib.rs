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
//!
//! # Cargo features
//!
//! Both are on by default, because Avro with a schema registry is the
//! common way to put records on a topic:
//!
//! | feature | `data_type` | what it adds |
//! | --- | --- | --- |
//! | `avro` | `avro`, `debezium-avro` and `debezium-avro-upsert` | Avro encoding, plain (`avro_schema`) or in the Confluent wire format with the schema registry client (`schema_registry_*`) |
//! | `protobuf` | `protobuf` | Protocol Buffers encoding from a `.proto` file (`proto_file`, `proto_message`), compiled at run time |
//!
//! `json`, `text`, `binary`, `delimited`, `debezium-json` and
//! `debezium-json-upsert` are always available. To build without the heavy
//! formats (and their dependencies: `apache-avro`, an HTTP client,
//! `prost-reflect`, `protox`), turn the defaults off and pick what you need:
//!
//! ```toml
//! [dependencies]
//! sink-kafka = { version = "0.1", default-features = false }                       # no avro, no protobuf
//! # sink-kafka = { version = "0.1", default-features = false, features = ["avro"] } # avro only
//! ```
//!
//! Without a feature, a `data_type` that needs it is a configuration error
//! naming the feature.

#![forbid(unsafe_code)]

mod config;
mod delivery;
mod sink;

pub use config::{KafkaSinkConfig, SPEC};
pub use sink::KafkaSink;
