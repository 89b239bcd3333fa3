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

#![forbid(unsafe_code)]

mod config;
mod source;

pub use config::{InitialPosition, SPEC, SourceConfig, SubscriptionType};
pub use source::PulsarSource;
