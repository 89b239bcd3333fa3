//! Kafka client settings shared by the `kafka` source (`source-kafka`) and
//! sink (`sink-kafka`): the `brokers`, `sasl`, `username`, `password`,
//! `tls.disable` and `tls.skip_verify_server` properties, their typed form
//! [`KafkaClientConfig`] and its mapping to librdkafka properties, the
//! routing of librdkafka's logs and errors to `tracing`, error
//! classification, and the connection-check steps both connectors run.
//!
//! ```
//! use connector_core::Properties;
//! use connector_core::config::{ConnectorSpec, PropertyReader, Role};
//! use kafka_common::KafkaClientConfig;
//!
//! static SPEC: ConnectorSpec = ConnectorSpec {
//!     name: "kafka",
//!     role: Role::Sink,
//!     description: "example",
//!     properties: kafka_common::CLIENT_PROPERTIES,
//! };
//! let props = Properties::from_pairs([("brokers", "k1:9092"), ("tls.disable", "true")]);
//! let mut reader = PropertyReader::new(&SPEC, &props);
//! let config = KafkaClientConfig::read(&mut reader);
//! reader.finish().unwrap();
//! assert_eq!(config.client_config().get("security.protocol"), Some("plaintext"));
//! ```

#![forbid(unsafe_code)]

pub mod check;
mod config;
mod context;
pub mod error;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{
    BROKERS, KafkaClientConfig, PASSWORD, SASL, SASL_CHOICES, SaslConfig, SaslMechanism,
    TLS_DISABLE, TLS_SKIP_VERIFY_SERVER, USERNAME, redact,
};
pub use context::{ClientError, ClientEvents, EventsContext};

/// Re-exported so the connectors and their users share one version.
pub use rdkafka;

use connector_core::config::PropertySpec;

/// The client properties, in documentation order; a connector's spec lists
/// each of them.
pub const CLIENT_PROPERTIES: &[PropertySpec] = &[
    BROKERS,
    SASL,
    USERNAME,
    PASSWORD,
    TLS_DISABLE,
    TLS_SKIP_VERIFY_SERVER,
];
