//! What the Pulsar source and sink share: the connection and auth
//! properties (`topic`, `broker_url`, `auth_type`, `auth_params`) read once,
//! the `pulsar` client built from them (rustls with ring for
//! `pulsar+ssl://`), token and OAuth2 client-credentials authentication,
//! error classification, and the connection check.
//!
//! ```
//! use connector_core::config::{ConnectorSpec, PropertyReader, Role};
//! use connector_core::Properties;
//! use pulsar_common::{Auth, ConnectionConfig, CONNECTION_PROPERTIES};
//!
//! static SPEC: ConnectorSpec = ConnectorSpec {
//!     name: "pulsar",
//!     role: Role::Sink,
//!     description: "Writes to a Pulsar topic.",
//!     properties: &CONNECTION_PROPERTIES,
//! };
//!
//! let props = Properties::from_json("pulsar sink", serde_json::json!({
//!     "topic": "orders",
//!     "broker_url": "pulsar+ssl://pulsar.example.com:6651",
//!     "auth_type": "oauth2",
//!     "auth_params": {
//!         "issuerUrl": "https://auth.example.com/",
//!         "privateKey": "file:///etc/pulsar/app-key.json",
//!         "audience": "urn:sn:pulsar:example:cluster"
//!     }
//! })).unwrap();
//! let mut reader = PropertyReader::new(&SPEC, &props);
//! let config = ConnectionConfig::read(&mut reader);
//! reader.finish().unwrap();
//! assert!(config.is_tls());
//! assert_eq!(config.topic, "persistent://public/default/orders");
//! assert!(matches!(config.auth, Auth::OAuth2(_)));
//! ```

#![forbid(unsafe_code)]

mod auth;
mod check;
mod client;
mod config;
mod oauth2;
mod tls;

pub use auth::{Auth, AuthFailure, AuthProvider, OAuth2Config, OAuth2Credentials, TokenSource};
pub use check::check_connection;
pub use client::{
    DEFAULT_OPERATION_TIMEOUT, PulsarClient, build, classify, classify_server, connect, describe,
    pulsar_error, server_message,
};
pub use config::{
    AUTH_PARAMS, AUTH_TYPE, BROKER_URL, CONNECTION_PROPERTIES, ConnectionConfig,
    TLS_TRUST_CERTS_FILE_PATH, TOPIC, full_topic_name,
};
pub use oauth2::{OAuth2Client, TokenError};
pub use tls::{client_config, read_certificates};

/// Re-exported so the connectors and their users share one version.
pub use pulsar;
