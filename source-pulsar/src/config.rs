//! Typed configuration and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{FormatConfig, props};
use connector_core::{Properties, Result};
use pulsar_common::pulsar::SubType;
use pulsar_common::pulsar::consumer::InitialPosition as PulsarPosition;
use pulsar_common::{
    AUTH_PARAMS, AUTH_TYPE, BROKER_URL, ConnectionConfig, TLS_TRUST_CERTS_FILE_PATH, TOPIC,
};

/// The properties of the `pulsar` source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "pulsar",
    role: Role::Source,
    description: "Reads a Pulsar topic through a subscription, decoding payloads as `data_type`; messages are acknowledged once the sink delivered them and negatively acknowledged (redelivered) when it failed.",
    properties: &[
        TOPIC,
        BROKER_URL,
        AUTH_TYPE,
        AUTH_PARAMS,
        TLS_TRUST_CERTS_FILE_PATH,
        props::DATA_TYPE,
        props::SCHEMA_REGISTRY_ADDRESS,
        props::SCHEMA_REGISTRY_API_KEY,
        props::SCHEMA_REGISTRY_API_SECRET,
        props::AVRO_SCHEMA,
        props::SCHEMA,
        props::STRICT_VALIDATION,
        props::TIMESTAMP,
        props::TIMESTAMP_FORMAT,
        props::DELIMITER,
        props::FIELDS,
        props::PROTO_FILE,
        props::PROTO_MESSAGE,
        props::PROTO_INCLUDE_PATHS,
        PropertySpec::optional(
            "id",
            PropertyKind::String,
            None,
            "Stable id of this source; the default subscription is `timeplus-source-<id>`.",
        ),
        PropertySpec::optional(
            "subscription_name",
            PropertyKind::String,
            None,
            "Subscription to read through (default `timeplus-source-<id>`; without an id, a random one, and what was read is not resumed after a restart).",
        ),
        PropertySpec::optional(
            "subscription_type",
            PropertyKind::Choice(&["shared", "exclusive", "failover", "key_shared"]),
            Some("shared"),
            "How consumers of the subscription share the topic: `shared` (any consumer, any message), `exclusive` (one consumer), `failover` (one active, others standing by), `key_shared` (by message key).",
        ),
        PropertySpec::optional(
            "initial_position",
            PropertyKind::Choice(&["latest", "earliest"]),
            Some("latest"),
            "Where a new subscription starts: `latest` (new messages only) or `earliest` (everything retained).",
        ),
        PropertySpec::optional(
            "nack_redelivery_delay",
            PropertyKind::Duration,
            Some("1s"),
            "How long after a failed delivery its messages are negatively acknowledged, so the broker sends them again.",
        ),
        PropertySpec::optional(
            "receiver_queue_size",
            PropertyKind::Integer,
            Some("1000"),
            "Messages the broker may push ahead of reading (flow permits); also the most messages per batch.",
        ),
    ],
};

/// How the consumers of a subscription share the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionType {
    /// Any consumer gets any message (the default).
    #[default]
    Shared,
    /// One consumer only.
    Exclusive,
    /// One active consumer, the others take over when it goes.
    Failover,
    /// Messages of one key go to one consumer.
    KeyShared,
}

impl SubscriptionType {
    /// The property value: `shared`, `exclusive`, `failover`, `key_shared`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionType::Shared => "shared",
            SubscriptionType::Exclusive => "exclusive",
            SubscriptionType::Failover => "failover",
            SubscriptionType::KeyShared => "key_shared",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "exclusive" => SubscriptionType::Exclusive,
            "failover" => SubscriptionType::Failover,
            "key_shared" => SubscriptionType::KeyShared,
            _ => SubscriptionType::Shared,
        }
    }

    pub(crate) fn to_pulsar(self) -> SubType {
        match self {
            SubscriptionType::Shared => SubType::Shared,
            SubscriptionType::Exclusive => SubType::Exclusive,
            SubscriptionType::Failover => SubType::Failover,
            SubscriptionType::KeyShared => SubType::KeyShared,
        }
    }
}

/// Where a new subscription starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialPosition {
    /// Only messages published from now on (the default).
    #[default]
    Latest,
    /// Everything the topic retains.
    Earliest,
}

impl InitialPosition {
    pub(crate) fn to_pulsar(self) -> PulsarPosition {
        match self {
            InitialPosition::Latest => PulsarPosition::Latest,
            InitialPosition::Earliest => PulsarPosition::Earliest,
        }
    }
}

/// Typed configuration of [`PulsarSource`](crate::PulsarSource).
///
/// ```
/// use connector_core::format::{DataFormat, FormatConfig};
/// use pulsar_common::ConnectionConfig;
/// use source_pulsar::{InitialPosition, SourceConfig, SubscriptionType};
///
/// let connection = ConnectionConfig::new("pulsar://localhost:6650".parse().unwrap(), "events");
/// let config = SourceConfig::new(connection, FormatConfig::new(DataFormat::JSON))
///     .id("orders-pipeline")
///     .subscription_type(SubscriptionType::KeyShared)
///     .initial_position(InitialPosition::Earliest);
/// assert_eq!(config.subscription().as_deref(), Some("timeplus-source-orders-pipeline"));
/// ```
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Cluster, auth and topic.
    pub connection: ConnectionConfig,
    /// How payloads are decoded.
    pub format: FormatConfig,
    /// The source's stable id (names the default subscription).
    pub id: Option<String>,
    /// The subscription, when not the default.
    pub subscription_name: Option<String>,
    /// How the subscription's consumers share the topic.
    pub subscription_type: SubscriptionType,
    /// Where a new subscription starts.
    pub initial_position: InitialPosition,
    /// Delay before failed messages are negatively acknowledged.
    pub nack_redelivery_delay: Duration,
    /// Flow permits, and the most messages per batch.
    pub receiver_queue_size: u32,
}

impl SourceConfig {
    /// Shared subscription from the latest message, 1s nack delay.
    pub fn new(connection: ConnectionConfig, format: FormatConfig) -> Self {
        SourceConfig {
            connection,
            format: format.with_component(SPEC.component()),
            id: None,
            subscription_name: None,
            subscription_type: SubscriptionType::Shared,
            initial_position: InitialPosition::Latest,
            nack_redelivery_delay: Duration::from_secs(1),
            receiver_queue_size: 1000,
        }
    }

    /// Sets the source's stable id (e.g. the pipeline's name).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the subscription name.
    pub fn subscription_name(mut self, name: impl Into<String>) -> Self {
        self.subscription_name = Some(name.into());
        self
    }

    /// Sets the subscription type.
    pub fn subscription_type(mut self, kind: SubscriptionType) -> Self {
        self.subscription_type = kind;
        self
    }

    /// Sets the initial position.
    pub fn initial_position(mut self, position: InitialPosition) -> Self {
        self.initial_position = position;
        self
    }

    /// Sets the nack delay.
    pub fn nack_redelivery_delay(mut self, delay: Duration) -> Self {
        self.nack_redelivery_delay = delay;
        self
    }

    /// The subscription to use: the given name, else `timeplus-source-<id>`;
    /// `None` when neither is set (a random one is made at start).
    pub fn subscription(&self) -> Option<String> {
        match (&self.subscription_name, &self.id) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(id)) => Some(format!("timeplus-source-{id}")),
            (None, None) => None,
        }
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let connection = ConnectionConfig::read(&mut r);
        let format = FormatConfig::read(&mut r);
        let id: Option<String> = r.optional("id");
        let subscription_name: Option<String> = r.optional("subscription_name");
        for (property, value) in [("id", &id), ("subscription_name", &subscription_name)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                r.invalid(property, "must not be empty");
            }
        }
        let subscription_type: String = r.required("subscription_type");
        let initial_position: String = r.required("initial_position");
        let nack_redelivery_delay = r.required("nack_redelivery_delay");
        let receiver_queue_size: u32 = r.required("receiver_queue_size");
        if receiver_queue_size == 0 {
            r.invalid("receiver_queue_size", "must be at least 1");
        }
        r.finish()?;
        Ok(SourceConfig {
            connection,
            format,
            id,
            subscription_name,
            subscription_type: SubscriptionType::parse(&subscription_type),
            initial_position: if initial_position == "earliest" {
                InitialPosition::Earliest
            } else {
                InitialPosition::Latest
            },
            nack_redelivery_delay,
            receiver_queue_size,
        })
    }
}
