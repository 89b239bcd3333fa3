//! The [`Sink`] implementation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connector_core::check::{CheckReport, FailureKind};
use connector_core::format::{Encoder, Progress, encode_record};
use connector_core::{Ack, Batch, BatchLimits, Error, Properties, Record, Result, Sink};
use kafka_common::check::{Probe, StepFailure, describe_partitions, topic_failure};
use kafka_common::error::{describe, failure_kind, to_error};
use kafka_common::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use kafka_common::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use kafka_common::rdkafka::message::{Header, OwnedHeaders};
use kafka_common::rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use kafka_common::{ClientEvents, EventsContext};
use tracing::{info, warn};

use crate::config::{KafkaSinkConfig, SPEC};
use crate::delivery::{BatchDelivery, InFlight, SinkContext};

/// How long a created topic may take to show in the metadata.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the controller may take to answer a CreateTopics request.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes one Kafka message per record: the encoded record as payload, the
/// record's key as message key, its event time as message timestamp and its
/// headers as message headers.
///
/// A batch's ack resolves as delivered only when the broker acknowledged
/// every message in it (`acks=all`, idempotent producer). The producer
/// retries failed sends until the delivery timeout; then the batch resolves
/// as failed and the source delivers it again. A record that cannot be
/// encoded (or that the producer refuses, e.g. too large) makes its batch
/// resolve as rejected, for the pipeline's bad-data policy; the other
/// records of the batch are still written.
///
/// The topic is looked up before the first write and created when missing
/// (with `partitions` and `replication_factor`, else the broker's defaults).
///
/// ```no_run
/// # #[tokio::main] async fn main() -> connector_core::Result<()> {
/// use connector_core::{Pipeline, Properties};
/// use sink_kafka::KafkaSink;
/// use source_generator::GeneratorSource;
///
/// let generator = GeneratorSource::from_properties(&Properties::from_pairs([("template", "iot")]))?;
/// let sink = KafkaSink::from_properties(&Properties::from_pairs([
///     ("brokers", "kafka1:9092"),
///     ("topic", "iot"),
///     ("partitions", "6"),
///     ("tls.disable", "true"),
/// ]))?;
/// Pipeline::new(generator).to(sink).handle_signals(true).run().await?;
/// # Ok(()) }
/// ```
pub struct KafkaSink {
    config: KafkaSinkConfig,
    name: Arc<str>,
    topic: Arc<str>,
    encoder: Box<dyn Encoder>,
    producer: Option<ThreadedProducer<SinkContext>>,
    events: Arc<ClientEvents>,
    in_flight: Arc<InFlight>,
    buffer: Vec<u8>,
    topic_ready: bool,
}

impl KafkaSink {
    /// A sink encoding records as `config.format` says.
    pub fn new(config: KafkaSinkConfig) -> Result<Self> {
        let encoder = config.format.encoder()?;
        Ok(KafkaSink::with_encoder(config, encoder))
    }

    /// A sink with its own encoder (`config.format` is then unused).
    pub fn with_encoder(config: KafkaSinkConfig, encoder: Box<dyn Encoder>) -> Self {
        let name: Arc<str> = Arc::from(SPEC.component());
        KafkaSink {
            topic: Arc::from(config.topic.as_str()),
            events: Arc::new(ClientEvents::new(name.to_string())),
            name,
            config,
            encoder,
            producer: None,
            in_flight: Arc::default(),
            buffer: Vec::with_capacity(1024),
            topic_ready: false,
        }
    }

    /// A sink from the properties of [`SPEC`].
    pub fn from_properties(props: &Properties) -> Result<Self> {
        KafkaSink::new(KafkaSinkConfig::from_properties(props)?)
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaSinkConfig {
        &self.config
    }

    /// Batches sent whose messages the broker has not all acknowledged yet.
    pub fn batches_in_flight(&self) -> usize {
        self.in_flight.count()
    }

    fn producer(&mut self) -> Result<ThreadedProducer<SinkContext>> {
        if let Some(p) = &self.producer {
            return Ok(p.clone());
        }
        let c = &self.config;
        let mut client = c.client.client_config();
        client
            .set("client.id", "timeplus-connectors-kafka-sink")
            // The sink creates topics itself, with the configured settings.
            .set("allow.auto.create.topics", "false")
            .set("batch.num.messages", c.batch_count.to_string())
            .set("linger.ms", c.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                c.delivery_timeout.as_millis().to_string(),
            )
            .set("enable.idempotence", c.idempotence.to_string())
            .set("acks", "all");
        for (key, value) in &c.client.options {
            client.set(key.as_str(), value.as_str());
        }
        let producer: ThreadedProducer<SinkContext> = client
            .create_with_context(SinkContext {
                events: self.events.clone(),
            })
            .map_err(|e| to_error(&self.name, "create producer", &e))?;
        info!(
            topic = %self.topic,
            brokers = %c.client.bootstrap_servers(),
            format = self.encoder.format(),
            "kafka sink started"
        );
        self.producer = Some(producer.clone());
        Ok(producer)
    }

    /// Finds the topic, creating it when missing (and allowed).
    async fn prepare_topic(&mut self) -> Result<()> {
        let producer = self.producer()?;
        let topic = self.topic.to_string();
        let exists = {
            let topic = topic.clone();
            let producer = producer.clone();
            tokio::task::spawn_blocking(move || topic_partitions(&producer, &topic))
                .await
                .map_err(|e| {
                    Error::permanent(self.name.to_string(), "look up topic", e.to_string())
                })?
        };
        let operation = format!("look up topic `{topic}`");
        match exists {
            Ok(partitions) => {
                info!(topic, partitions = %describe_partitions(&partitions), "kafka sink found its topic");
                return Ok(());
            }
            Err(TopicLookup::Missing) if self.config.create_topic => {}
            Err(TopicLookup::Missing) => {
                return Err(Error::permanent(
                    self.name.to_string(),
                    operation,
                    format!("topic `{topic}` does not exist and the sink does not create topics"),
                ));
            }
            Err(TopicLookup::Failed(e)) => return Err(to_error(&self.name, operation, &e)),
        }
        let admin = self.admin()?;
        let created = create_topic(&admin, &self.config, false, CREATE_TIMEOUT).await;
        match created {
            Ok(()) => info!(
                topic,
                partitions = ?self.config.partitions,
                replication_factor = ?self.config.replication_factor,
                "kafka sink created its topic"
            ),
            Err((kind, reason)) => {
                let err = format!("topic `{topic}` does not exist and cannot be created: {reason}");
                return Err(match kind {
                    FailureKind::Unreachable | FailureKind::Timeout => Error::transient(
                        self.name.to_string(),
                        format!("create topic `{topic}`"),
                        err,
                    ),
                    _ => Error::permanent(
                        self.name.to_string(),
                        format!("create topic `{topic}`"),
                        err,
                    ),
                });
            }
        }
        // Creation is asynchronous on the brokers: wait until it shows.
        let deadline = tokio::time::Instant::now() + PREPARE_TIMEOUT;
        loop {
            let found = {
                let topic = topic.clone();
                let producer = producer.clone();
                tokio::task::spawn_blocking(move || topic_partitions(&producer, &topic))
                    .await
                    .map_err(|e| {
                        Error::permanent(self.name.to_string(), "look up topic", e.to_string())
                    })?
            };
            match found {
                Ok(_) => return Ok(()),
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(TopicLookup::Missing) => {
                    return Err(Error::transient(
                        self.name.to_string(),
                        format!("create topic `{topic}`"),
                        "created, but not visible in the metadata yet",
                    ));
                }
                Err(TopicLookup::Failed(e)) => {
                    return Err(to_error(&self.name, format!("look up topic `{topic}`"), &e));
                }
            }
        }
    }

    fn admin(&self) -> Result<AdminClient<EventsContext>> {
        self.config
            .client
            .client_config()
            .create_with_context(EventsContext(self.events.clone()))
            .map_err(|e| to_error(&self.name, "create admin client", &e))
    }

    /// Encodes one record into the buffer; `Ok(false)` when it cannot be
    /// encoded (the error goes to `bad`).
    async fn encode(
        &mut self,
        index: usize,
        record: &Record,
        bad: &mut Option<Error>,
    ) -> Result<bool> {
        self.buffer.clear();
        let encoded = match self.encoder.encode(record, &mut self.buffer) {
            Ok(Progress::Done) => Ok(()),
            Ok(Progress::NeedsResolve) => {
                self.buffer.clear();
                encode_record(&mut *self.encoder, record, &mut self.buffer).await
            }
            Err(e) => Err(e),
        };
        match encoded {
            Ok(()) => Ok(true),
            Err(mut e) if e.is_bad_data() => {
                // Records from sources without positions are named by their
                // place in the batch.
                if record.position.is_none()
                    && let Error::Encode { position, .. } = &mut e
                {
                    *position = format!("#{index} of its batch");
                }
                bad.get_or_insert(e.in_component(self.name.to_string()));
                Ok(false)
            }
            // The encoder could not do its network work (schema registry).
            Err(e) => Err(e.in_component(self.name.to_string())),
        }
    }
}

/// What a topic lookup found.
enum TopicLookup {
    Missing,
    Failed(KafkaError),
}

/// The topic's partitions, from a metadata request.
fn topic_partitions(
    producer: &ThreadedProducer<SinkContext>,
    topic: &str,
) -> std::result::Result<Vec<i32>, TopicLookup> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(TopicLookup::Failed)?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(TopicLookup::Missing);
    };
    match t.error().map(RDKafkaErrorCode::from) {
        None => Ok(t.partitions().iter().map(|p| p.id()).collect()),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Err(TopicLookup::Missing)
        }
        Some(code) => Err(TopicLookup::Failed(KafkaError::MetadataFetch(code))),
    }
}

/// Creates (or, with `validate_only`, asks whether the brokers would
/// create) the configured topic.
async fn create_topic(
    admin: &AdminClient<EventsContext>,
    config: &KafkaSinkConfig,
    validate_only: bool,
    timeout: Duration,
) -> std::result::Result<(), StepFailure> {
    let topic = NewTopic::new(
        &config.topic,
        config.partitions.unwrap_or(-1),
        TopicReplication::Fixed(config.replication_factor.unwrap_or(-1)),
    );
    let options = AdminOptions::new()
        .validate_only(validate_only)
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    match admin.create_topics([&topic], &options).await {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(_)) | None => Ok(()),
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(()),
            Some(Err((_, code))) => Err((failure_kind(code), code.to_string())),
        },
        Err(e) => {
            let code = match &e {
                KafkaError::AdminOp(code) => Some(*code),
                other => other.rdkafka_error_code(),
            };
            let reason = match code {
                Some(
                    RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion,
                ) => "the brokers do not support creating topics (CreateTopics)".to_owned(),
                Some(RDKafkaErrorCode::OperationTimedOut) => format!(
                    "the cluster's controller did not answer the CreateTopics request within {}",
                    connector_core::config::format_duration(timeout)
                ),
                _ => describe(&e),
            };
            Err((code.map_or(FailureKind::Invalid, failure_kind), reason))
        }
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batch_limits(&self) -> BatchLimits {
        // The producer lingers and batches by itself.
        BatchLimits {
            max_records: self.config.batch_count,
            max_wait: Duration::ZERO,
        }
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        if !self.topic_ready {
            match self.prepare_topic().await {
                Ok(()) => self.topic_ready = true,
                Err(e) if e.is_retryable() => {
                    // The source delivers the batch again later.
                    warn!(error = %e, "kafka sink cannot reach its topic yet");
                    batch.failed(e);
                    return Ok(());
                }
                Err(e) => {
                    batch.failed(e.duplicate());
                    return Err(e);
                }
            }
        }
        let producer = self.producer()?;
        let (records, ack) = batch.into_parts();
        // One share of the ack for refused records, one for the messages.
        let refused_share = ack.clone();
        let delivery = BatchDelivery::new(
            ack,
            self.in_flight.clone(),
            self.name.clone(),
            self.topic.clone(),
        );
        let mut bad: Option<Error> = None;
        let topic = self.topic.clone();
        for (index, record) in records.iter().enumerate() {
            match self.encode(index, record, &mut bad).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    // Cannot encode now (e.g. registry down): fail the batch.
                    delivery.fail(e);
                    break;
                }
            }
            let mut message = BaseRecord::with_opaque_to(&topic, delivery.clone())
                .payload(self.buffer.as_slice());
            if let Some(key) = &record.key {
                message = message.key(key.as_ref());
            }
            if let Some(micros) = record.timestamp {
                message = message.timestamp(micros.div_euclid(1000));
            }
            if !record.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
                for h in &record.headers {
                    headers = headers.insert(Header {
                        key: &h.name,
                        value: h.value.as_deref(),
                    });
                }
                message = message.headers(headers);
            }
            delivery.add_message();
            loop {
                match producer.send(message) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for deliveries.
                        message = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, back)) => {
                        drop(back);
                        match e.rdkafka_error_code() {
                            Some(
                                RDKafkaErrorCode::MessageSizeTooLarge
                                | RDKafkaErrorCode::InvalidMessageSize,
                            ) => {
                                bad.get_or_insert(Error::rejected(
                                    self.name.to_string(),
                                    format!(
                                        "record #{index} of its batch ({} bytes)",
                                        self.buffer.len()
                                    ),
                                    describe(&e),
                                ));
                            }
                            _ => delivery.fail(to_error(
                                &self.name,
                                format!("produce to `{topic}`"),
                                &e,
                            )),
                        }
                        delivery.message_done();
                        break;
                    }
                }
            }
        }
        delivery.message_done();
        resolve_refused(refused_share, bad);
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.in_flight.drained().await;
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.flush().await?;
        if let Some(producer) = self.producer.take() {
            // Dropping joins the producer's thread.
            let _ = tokio::task::spawn_blocking(move || drop(producer)).await;
        }
        Ok(())
    }

    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.name.to_string());
        let probe = match Probe::new(&self.config.client, &self.name, None) {
            Ok(p) => p,
            Err((kind, reason)) => {
                report.fail("create client", kind, reason);
                return report;
            }
        };
        let topic = self.topic.to_string();
        let Some(info) = probe.connect_step(&mut report, &topic, timeout).await else {
            return report;
        };
        let step = format!("topic `{topic}`");
        match info.partitions {
            Ok(partitions) => {
                report.pass(
                    step,
                    format!("exists with {}", describe_partitions(&partitions)),
                );
            }
            Err(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
                if self.config.create_topic =>
            {
                let admin = match self.admin() {
                    Ok(a) => a,
                    Err(e) => {
                        report.fail(step, FailureKind::Invalid, e.to_string());
                        return report;
                    }
                };
                let config = &self.config;
                report
                    .step(step, timeout, async {
                        create_topic(&admin, config, true, timeout.mul_f64(0.9))
                            .await
                            .map(|()| {
                                format!(
                                    "does not exist; the brokers accept creating it with {} (validated, not created)",
                                    describe_new_topic(config)
                                )
                            })
                            .map_err(|(kind, reason)| {
                                // The topic is missing, whatever stopped its creation.
                                let kind = match kind {
                                    FailureKind::Invalid | FailureKind::Timeout => FailureKind::NotFound,
                                    other => other,
                                };
                                (kind, format!("topic `{topic}` does not exist and cannot be created: {reason}"))
                            })
                    })
                    .await;
            }
            Err(code) => {
                let (kind, reason) = topic_failure(&topic, code);
                report.fail(step, kind, reason);
            }
        }
        report
    }
}

fn describe_new_topic(config: &KafkaSinkConfig) -> String {
    let partitions = config.partitions.map_or_else(
        || "the default number of partitions".to_owned(),
        |p| format!("{p} partitions"),
    );
    let replication = config.replication_factor.map_or_else(
        || "the default replication factor".to_owned(),
        |r| format!("replication factor {r}"),
    );
    format!("{partitions} and {replication}")
}

/// Resolves the refused records' share of a batch's ack.
fn resolve_refused(share: Ack, bad: Option<Error>) {
    match bad {
        None => share.delivered(),
        Some(e) => share.rejected(e),
    }
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("client", &self.config.client)
            .field("format", &self.encoder.format())
            .finish()
    }
}
