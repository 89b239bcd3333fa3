//! Typed configuration of the Kafka sink and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{FormatConfig, props};
use connector_core::{Properties, Result};
use kafka_common::KafkaClientConfig;

/// The properties of the `kafka` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "kafka",
    role: Role::Sink,
    description: "Writes one Kafka message per record (the record key as message key); a batch is acknowledged when the broker acknowledged every message in it.",
    properties: &[
        kafka_common::BROKERS,
        PropertySpec::required(
            "topic",
            PropertyKind::String,
            "Topic to write: an existing topic, or a new name that the sink creates before its first write.",
        ),
        PropertySpec::optional(
            "partitions",
            PropertyKind::Integer,
            None,
            "Partitions of the topic when the sink creates it (default: the broker's default).",
        ),
        PropertySpec::optional(
            "replication_factor",
            PropertyKind::Integer,
            None,
            "Replication factor of the topic when the sink creates it (default: the broker's default).",
        ),
        PropertySpec::optional(
            "batch_count",
            PropertyKind::Integer,
            Some("1000"),
            "Records per produce batch, sent at that count or after a short linger.",
        ),
        props::DATA_TYPE_DEFAULT_JSON,
        kafka_common::SASL,
        kafka_common::USERNAME,
        kafka_common::PASSWORD,
        kafka_common::TLS_DISABLE,
        kafka_common::TLS_SKIP_VERIFY_SERVER,
        props::SCHEMA_REGISTRY_ADDRESS,
        props::SCHEMA_REGISTRY_API_KEY,
        props::SCHEMA_REGISTRY_API_SECRET,
        props::SCHEMA_SUBJECT,
        props::AVRO_SCHEMA,
        props::SCHEMA,
        props::DELIMITER,
        props::FIELDS,
        props::PROTO_FILE,
        props::PROTO_MESSAGE,
        props::PROTO_INCLUDE_PATHS,
        props::TEXT_TEMPLATE,
    ],
};

/// Typed configuration of [`KafkaSink`](crate::KafkaSink).
///
/// ```
/// use connector_core::format::{DataFormat, FormatConfig};
/// use kafka_common::KafkaClientConfig;
/// use sink_kafka::KafkaSinkConfig;
///
/// let config = KafkaSinkConfig::new(KafkaClientConfig::new(["kafka1:9092"]), "events")
///     .with_format(FormatConfig::new(DataFormat::TEXT))
///     .with_new_topic(Some(6), Some(3));
/// assert_eq!(config.batch_count, 1000);
/// ```
#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    /// Brokers, SASL and TLS.
    pub client: KafkaClientConfig,
    /// Topic to write.
    pub topic: String,
    /// Whether a missing topic is created before the first write.
    pub create_topic: bool,
    /// Partitions of a created topic (`None`: the broker's default).
    pub partitions: Option<i32>,
    /// Replication factor of a created topic (`None`: the broker's default).
    pub replication_factor: Option<i32>,
    /// Records per produce batch (librdkafka's `batch.num.messages`, and
    /// the batches the sink asks the pipeline for).
    pub batch_count: usize,
    /// How long the producer waits for more records before sending a
    /// partial batch (librdkafka's `linger.ms`).
    pub linger: Duration,
    /// How long the producer keeps retrying a message before its batch is
    /// reported as failed (librdkafka's `message.timeout.ms`).
    pub delivery_timeout: Duration,
    /// Idempotent producer: retries never duplicate or reorder messages
    /// (needs `IDEMPOTENT_WRITE` on clusters older than Kafka 2.8 with ACLs).
    pub idempotence: bool,
    /// How records are encoded (`data_type` and friends).
    pub format: FormatConfig,
}

impl KafkaSinkConfig {
    /// A config writing JSON to `topic`, with the defaults for everything else.
    pub fn new(client: KafkaClientConfig, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        KafkaSinkConfig {
            client,
            create_topic: true,
            partitions: None,
            replication_factor: None,
            batch_count: 1000,
            linger: Duration::from_millis(5),
            delivery_timeout: Duration::from_secs(120),
            idempotence: true,
            format: FormatConfig::new(connector_core::format::DataFormat::JSON)
                .with_component(SPEC.component())
                .with_default_subject(format!("{topic}-value")),
            topic,
        }
    }

    /// Sets how records are encoded.
    pub fn with_format(mut self, format: FormatConfig) -> Self {
        self.format = format
            .with_component(SPEC.component())
            .with_default_subject(format!("{}-value", self.topic));
        self
    }

    /// Sets the partitions and replication factor of a created topic.
    pub fn with_new_topic(
        mut self,
        partitions: Option<i32>,
        replication_factor: Option<i32>,
    ) -> Self {
        self.partitions = partitions;
        self.replication_factor = replication_factor;
        self
    }

    /// Sets the records per batch.
    pub fn with_batch_count(mut self, batch_count: usize) -> Self {
        self.batch_count = batch_count.max(1);
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let client = KafkaClientConfig::read(&mut r);
        let topic: String = r.required("topic");
        if r.is_set("topic") && topic.trim().is_empty() {
            r.invalid("topic", "must not be empty");
        }
        let partitions: Option<i32> = r.optional("partitions");
        if partitions.is_some_and(|p| p < 1) {
            r.invalid("partitions", "must be at least 1");
        }
        let replication_factor: Option<i32> = r.optional("replication_factor");
        if replication_factor.is_some_and(|p| p < 1) {
            r.invalid("replication_factor", "must be at least 1");
        }
        let batch_count: usize = r.required("batch_count");
        if batch_count == 0 {
            r.invalid("batch_count", "must be at least 1");
        }
        let format = FormatConfig::read(&mut r);
        r.finish()?;
        let mut config = KafkaSinkConfig::new(client, topic)
            .with_new_topic(partitions, replication_factor)
            .with_batch_count(batch_count);
        config = config.with_format(format);
        Ok(config)
    }
}
