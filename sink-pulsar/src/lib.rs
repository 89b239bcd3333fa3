//! The `pulsar` sink: each record becomes one message on a Pulsar topic,
//! encoded as `data_type` (JSON unless it says otherwise), with the record
//! key as partition key, grouped into Pulsar batches. A batch's ack resolves
//! as delivered only when the broker acknowledged every message in it.
//!
//! Connection and auth properties (`topic`, `broker_url`, `auth_type`,
//! `auth_params`) are shared with the source through `pulsar-common`.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Batch, Properties, Record, Sink, Value};
//! use sink_pulsar::PulsarSink;
//!
//! let props = Properties::from_pairs([
//!     ("topic", "events"),
//!     ("broker_url", "pulsar://localhost:6650"),
//!     ("auth_type", "token"),
//!     ("auth_params", r#"{"token": "eyJhbGciOiJIUzI1NiJ9..."}"#),
//! ]);
//! let mut sink = PulsarSink::from_properties(&props)?;
//! let (ack, delivered) = connector_core::Ack::channel();
//! let record = Record::from_pairs([("device", Value::from("d1"))]).with_key("d1");
//! sink.send(Batch::with_ack(vec![record], ack)).await?;
//! assert!(delivered.await.is_delivered()); // the broker has it
//! sink.close().await?;
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
//! sink-pulsar = { version = "0.1", default-features = false }                       # no avro, no protobuf
//! # sink-pulsar = { version = "0.1", default-features = false, features = ["avro"] } # avro only
//! ```
//!
//! Without a feature, a `data_type` that needs it is a configuration error
//! naming the feature.

#![forbid(unsafe_code)]

mod config;
mod sink;

pub use config::{SPEC, SinkConfig};
pub use sink::PulsarSink;
