//! The `pulsar` source: reads a topic through a subscription (shared by
//! default; exclusive, failover or key_shared), decodes payloads with any
//! `data_type`, and acknowledges each message only after the sink
//! delivered it — negatively acknowledging it when delivery failed, so the
//! broker sends it again.
//!
//! Connection and auth properties (`topic`, `broker_url`, `auth_type`,
//! `auth_params`) are shared with the sink through `pulsar-common`.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Properties, Source};
//! use source_pulsar::PulsarSource;
//!
//! let props = Properties::from_pairs([
//!     ("topic", "persistent://public/default/events"),
//!     ("broker_url", "pulsar://localhost:6650"),
//!     ("auth_type", ""),
//!     ("data_type", "json"),
//!     ("id", "events-to-clickhouse"), // subscription timeplus-source-events-to-clickhouse
//!     ("initial_position", "earliest"),
//! ]);
//! let mut source = PulsarSource::from_properties(&props)?;
//! while let Some(batch) = source.next_batch().await? {
//!     for record in &batch.records {
//!         println!("{} at {:?}", record.to_json(), record.position);
//!     }
//!     batch.delivered(); // acknowledges the messages
//! }
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
//! source-pulsar = { version = "0.1", default-features = false }                       # no avro, no protobuf
//! # source-pulsar = { version = "0.1", default-features = false, features = ["avro"] } # avro only
//! ```
//!
//! Without a feature, a `data_type` that needs it is a configuration error
//! naming the feature.

#![forbid(unsafe_code)]

mod config;
mod source;

pub use config::{InitialPosition, SPEC, SourceConfig, SubscriptionType};
pub use source::PulsarSource;
