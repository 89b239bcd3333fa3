//! Typed configuration and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{DataFormat, FormatConfig, props};
use connector_core::{Properties, Result};
use pulsar_common::{
    AUTH_PARAMS, AUTH_TYPE, BROKER_URL, ConnectionConfig, TLS_TRUST_CERTS_FILE_PATH, TOPIC,
};

/// The properties of the `pulsar` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "pulsar",
    role: Role::Sink,
    description: "Writes each record as one message to a Pulsar topic, encoded as `data_type` (JSON by default), with the record key as partition key.",
    properties: &[
        TOPIC,
        BROKER_URL,
        AUTH_TYPE,
        AUTH_PARAMS,
        TLS_TRUST_CERTS_FILE_PATH,
        props::DATA_TYPE_DEFAULT_JSON,
        props::SCHEMA_REGISTRY_ADDRESS,
        props::SCHEMA_REGISTRY_API_KEY,
        props::SCHEMA_REGISTRY_API_SECRET,
        props::SCHEMA_SUBJECT,
        props::AVRO_SCHEMA,
        props::DELIMITER,
        props::FIELDS,
        props::PROTO_FILE,
        props::PROTO_MESSAGE,
        props::PROTO_INCLUDE_PATHS,
        props::TEXT_TEMPLATE,
        PropertySpec::optional(
            "batch_count",
            PropertyKind::Integer,
            Some("1000"),
            "Most messages per Pulsar batch (one broker entry); `1` sends every message on its own.",
        ),
        PropertySpec::optional(
            "send_timeout",
            PropertyKind::Duration,
            Some("30s"),
            "How long a message may wait for the broker's receipt, resends after reconnections included; then its batch fails and the source delivers it again.",
        ),
    ],
};

/// Typed configuration of [`PulsarSink`](crate::PulsarSink).
///
/// ```
/// use connector_core::format::{DataFormat, FormatConfig};
/// use pulsar_common::ConnectionConfig;
/// use sink_pulsar::SinkConfig;
///
/// let connection = ConnectionConfig::new("pulsar://localhost:6650".parse().unwrap(), "events");
/// let config = SinkConfig::new(connection).format(FormatConfig::new(DataFormat::TEXT)).batch_count(100);
/// assert_eq!(config.batch_count, 100);
/// ```
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Cluster, auth and topic.
    pub connection: ConnectionConfig,
    /// How records are encoded.
    pub format: FormatConfig,
    /// Most messages per Pulsar batch; 1 turns batching off.
    pub batch_count: usize,
    /// How long a message may wait for its receipt.
    pub send_timeout: Duration,
}

impl SinkConfig {
    /// JSON, batches of up to 1000 messages, 30s send timeout.
    pub fn new(connection: ConnectionConfig) -> Self {
        SinkConfig {
            connection,
            format: FormatConfig::new(DataFormat::JSON).with_component(SPEC.component()),
            batch_count: 1000,
            send_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the format.
    pub fn format(mut self, format: FormatConfig) -> Self {
        self.format = format.with_component(SPEC.component());
        self
    }

    /// Sets the most messages per Pulsar batch.
    pub fn batch_count(mut self, batch_count: usize) -> Self {
        self.batch_count = batch_count.max(1);
        self
    }

    /// Sets the send timeout.
    pub fn send_timeout(mut self, send_timeout: Duration) -> Self {
        self.send_timeout = send_timeout;
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let connection = ConnectionConfig::read(&mut r);
        let format = FormatConfig::read(&mut r);
        let batch_count: usize = r.required("batch_count");
        if batch_count == 0 {
            r.invalid("batch_count", "must be at least 1");
        }
        let send_timeout: Duration = r.required("send_timeout");
        if send_timeout.is_zero() {
            r.invalid("send_timeout", "must be more than zero");
        }
        r.finish()?;
        let format = format.with_default_subject(format!(
            "{}-value",
            connection
                .topic
                .rsplit('/')
                .next()
                .unwrap_or(&connection.topic)
        ));
        Ok(SinkConfig {
            connection,
            format,
            batch_count,
            send_timeout,
        })
    }
}
