//! Typed configuration of the Kafka source and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{FormatConfig, props};
use connector_core::{Properties, Result};
use kafka_common::KafkaClientConfig;

/// The properties of the `kafka` source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "kafka",
    role: Role::Source,
    description: "Reads a Kafka topic as a member of a consumer group; offsets are committed only for records the sink delivered.",
    properties: &[
        kafka_common::BROKERS,
        PropertySpec::required("topic", PropertyKind::String, "Topic to read."),
        PropertySpec::required(
            "offset",
            PropertyKind::Choice(&["earliest", "latest"]),
            "Where to start when the group has no committed offset (or it is out of range): `earliest` or `latest`.",
        ),
        props::DATA_TYPE,
        PropertySpec::optional(
            "group",
            PropertyKind::String,
            None,
            "Consumer group (default `timeplus-source-<id>`).",
        ),
        PropertySpec::optional(
            "id",
            PropertyKind::String,
            None,
            "Stable id of this source; names the default group `timeplus-source-<id>` so that a restart resumes from the committed offsets.",
        ),
        kafka_common::SASL,
        kafka_common::USERNAME,
        kafka_common::PASSWORD,
        kafka_common::TLS_DISABLE,
        kafka_common::TLS_SKIP_VERIFY_SERVER,
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
    ],
};

/// The prefix of default group names.
pub const GROUP_PREFIX: &str = "timeplus-source-";

/// Where to start reading a partition that has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The oldest message still in the partition.
    Earliest,
    /// Only messages written from now on.
    Latest,
}

impl StartOffset {
    /// librdkafka's `auto.offset.reset` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StartOffset::Earliest => "earliest",
            StartOffset::Latest => "latest",
        }
    }
}

/// Typed configuration of [`KafkaSource`](crate::KafkaSource).
///
/// ```
/// use connector_core::format::{DataFormat, FormatConfig};
/// use kafka_common::KafkaClientConfig;
/// use source_kafka::{KafkaSourceConfig, StartOffset};
///
/// let config = KafkaSourceConfig::new(
///     KafkaClientConfig::new(["kafka1:9092"]),
///     "orders",
///     StartOffset::Earliest,
///     FormatConfig::new(DataFormat::JSON),
/// )
/// .with_id("orders-to-clickhouse");
/// assert_eq!(config.group_id().as_deref(), Some("timeplus-source-orders-to-clickhouse"));
/// ```
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    /// Brokers, SASL and TLS.
    pub client: KafkaClientConfig,
    /// Topic to read.
    pub topic: String,
    /// Where to start without a committed offset.
    pub offset: StartOffset,
    /// How payloads are decoded (`data_type` and friends).
    pub format: FormatConfig,
    /// Consumer group; `None` derives it from `id`.
    pub group: Option<String>,
    /// Stable id of the source (an `id` property, or given by the
    /// embedding code, e.g. the pipeline's name).
    pub id: Option<String>,
    /// Most messages per batch (what is available now, up to this many).
    pub max_batch_messages: usize,
    /// Shortest time between two offset commits. Offsets are committed as
    /// soon as batches are delivered, at most one commit in flight and at
    /// most one per interval; zero commits as fast as the broker answers.
    pub commit_interval: Duration,
    /// First wait before redelivering after a failed batch; doubles up to
    /// [`KafkaSourceConfig::max_retry_backoff`] while batches keep failing.
    pub retry_backoff: Duration,
    /// Longest wait before redelivering.
    pub max_retry_backoff: Duration,
    /// When partitions are revoked (or the source closes), how long their
    /// readers wait for the batches in flight to be delivered, so that the
    /// next owner does not read them again.
    pub drain_timeout: Duration,
}

impl KafkaSourceConfig {
    /// A config with the defaults for everything else.
    pub fn new(
        client: KafkaClientConfig,
        topic: impl Into<String>,
        offset: StartOffset,
        format: FormatConfig,
    ) -> Self {
        KafkaSourceConfig {
            client,
            topic: topic.into(),
            offset,
            format: format.with_component(SPEC.component()),
            group: None,
            id: None,
            max_batch_messages: 1024,
            commit_interval: Duration::from_millis(100),
            retry_backoff: Duration::from_millis(100),
            max_retry_backoff: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
        }
    }

    /// Sets the consumer group.
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets the source's stable id (the default group becomes
    /// `timeplus-source-<id>`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the id unless one is configured: how embedding code (a pipeline
    /// runner) passes its name.
    pub fn with_default_id(mut self, id: impl Into<String>) -> Self {
        if self.id.is_none() {
            self.id = Some(id.into());
        }
        self
    }

    /// Sets the most messages per batch.
    pub fn with_max_batch_messages(mut self, n: usize) -> Self {
        self.max_batch_messages = n.max(1);
        self
    }

    /// Sets the commit interval.
    pub fn with_commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// The consumer group: `group`, else `timeplus-source-<id>`, else
    /// `None` (the source then makes a random one).
    pub fn group_id(&self) -> Option<String> {
        match (&self.group, &self.id) {
            (Some(group), _) => Some(group.clone()),
            (None, Some(id)) => Some(format!("{GROUP_PREFIX}{id}")),
            (None, None) => None,
        }
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let client = KafkaClientConfig::read(&mut r);
        let topic: String = r.required("topic");
        if r.is_set("topic") && topic.trim().is_empty() {
            r.invalid("topic", "must not be empty");
        }
        let offset: String = r.required("offset");
        let format = FormatConfig::read(&mut r);
        let group: Option<String> = r.optional::<String>("group").filter(|g| !g.is_empty());
        let id: Option<String> = r.optional::<String>("id").filter(|g| !g.is_empty());
        r.finish()?;
        let mut config = KafkaSourceConfig::new(
            client,
            topic,
            if offset == "latest" {
                StartOffset::Latest
            } else {
                StartOffset::Earliest
            },
            format,
        );
        config.group = group;
        config.id = id;
        Ok(config)
    }
}
