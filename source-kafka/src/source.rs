//! The [`Source`] implementation: a driver thread that owns the consumer's
//! group membership and commits offsets, and one reader task per assigned
//! partition (see [`worker`](crate::worker)).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use connector_core::check::CheckReport;
use connector_core::format::Decoder;
use connector_core::{Batch, Error, Properties, Result, Source};
use kafka_common::check::{Probe, describe_partitions, topic_failure};
use kafka_common::error::to_error;
use kafka_common::rdkafka::Message;
use kafka_common::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_common::rdkafka::topic_partition_list::Offset;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::{GROUP_PREFIX, KafkaSourceConfig, SPEC};
use crate::decode::{Decoders, RawBatch};
use crate::group::{Group, SourceContext, Workers};
use crate::worker::{WorkerSettings, consumer_error};

/// Batches read ahead of `next_batch`, across all partitions.
const READ_AHEAD: usize = 8;

/// Reads a Kafka topic as a member of a consumer group.
///
/// Each record carries its message's key, timestamp, headers and position
/// ([`Position::Offset`](connector_core::Position)). Every assigned
/// partition has its own reader; payloads are decoded by
/// [`next_batch`](Source::next_batch), on the task that consumes the
/// records.
/// Offsets are committed only for batches the sink acknowledged, per
/// partition and in order: an undelivered batch holds back the commits
/// after it in its partition. A failed batch is read again from its first
/// offset (after a growing pause). When partitions are revoked, their
/// readers wait (up to [`KafkaSourceConfig::drain_timeout`]) for the
/// batches in flight, and what was delivered is committed before the
/// partitions go; batches still undelivered are read again by the next
/// owner. Payloads that do not decode go to [`Batch::bad`] (the pipeline's
/// bad-data policy decides) and never stop the partition.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> connector_core::Result<()> {
/// use connector_core::{Pipeline, Properties, console::ConsoleSink};
/// use source_kafka::KafkaSource;
///
/// let props = Properties::from_pairs([
///     ("brokers", "kafka1:9092"),
///     ("topic", "orders"),
///     ("offset", "earliest"),
///     ("data_type", "json"),
///     ("id", "orders-to-console"), // the group is `timeplus-source-orders-to-console`
///     ("tls.disable", "true"),
/// ]);
/// Pipeline::new(KafkaSource::from_properties(&props)?)
///     .to(ConsoleSink::stdout())
///     .handle_signals(true)
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
pub struct KafkaSource {
    config: KafkaSourceConfig,
    group: String,
    shared: Arc<Group>,
    generated_group: bool,
    name: Arc<str>,
    topic: Arc<str>,
    decoders: Decoders,
    running: Option<Running>,
}

/// A started source.
struct Running {
    batches: mpsc::Receiver<Result<RawBatch>>,
    stop: Arc<AtomicBool>,
    driver: Option<std::thread::JoinHandle<Result<()>>>,
}

impl KafkaSource {
    /// A source decoding payloads as `config.format` says.
    pub fn new(config: KafkaSourceConfig) -> Result<Self> {
        // Fail now, not at the first assignment, on a bad format.
        config.format.decoder()?;
        let format = config.format.clone();
        Ok(KafkaSource::with_decoders(config, move || format.decoder()))
    }

    /// A source with its own decoders: `make` is called once for each
    /// partition the source reads (`config.format` is then unused).
    pub fn with_decoders(
        config: KafkaSourceConfig,
        make: impl Fn() -> Result<Box<dyn Decoder>> + Send + Sync + 'static,
    ) -> Self {
        let (group, generated_group) = match config.group_id() {
            Some(group) => (group, false),
            None => (format!("{GROUP_PREFIX}{}", uuid::Uuid::new_v4()), true),
        };
        let name: Arc<str> = Arc::from(SPEC.component());
        let topic: Arc<str> = Arc::from(config.topic.as_str());
        KafkaSource {
            shared: Arc::new(Group::new(&name, &config.topic, &group)),
            decoders: Decoders::new(Arc::new(make), name.clone(), topic.clone()),
            name,
            topic,
            config,
            group,
            generated_group,
            running: None,
        }
    }

    /// A source from the properties of [`SPEC`].
    pub fn from_properties(props: &Properties) -> Result<Self> {
        KafkaSource::new(KafkaSourceConfig::from_properties(props)?)
    }

    /// The consumer group this source joins.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaSourceConfig {
        &self.config
    }

    /// A handle that reports the source's group membership while it runs
    /// (the source itself usually moves into a pipeline).
    pub fn status(&self) -> SourceStatus {
        SourceStatus {
            group: self.shared.clone(),
        }
    }

    fn start(&mut self) -> Result<Running> {
        if self.generated_group {
            warn!(
                group = %self.group,
                topic = %self.topic,
                "kafka source has neither `group` nor `id`: joined the random group {}; offsets will not be resumed after a restart",
                self.group
            );
        }
        let (tx, batches) = mpsc::channel(READ_AHEAD);
        let settings = WorkerSettings {
            name: self.name.clone(),
            topic: self.topic.clone(),
            max_batch: self.config.max_batch_messages,
            retry_backoff: self.config.retry_backoff,
            max_retry_backoff: self.config.max_retry_backoff,
            drain_timeout: self.config.drain_timeout,
            batches: tx.clone(),
            spares: self.decoders.spares(),
            group: self.shared.clone(),
        };
        let workers = Arc::new(Workers::new(settings, tokio::runtime::Handle::current()));
        let mut client = self.config.client.client_config();
        client
            .set("group.id", &self.group)
            .set("client.id", "timeplus-connectors-kafka-source")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            .set("auto.offset.reset", self.config.offset.as_str())
            // librdkafka pauses fetching for a partition for this long once
            // its local queue holds `queued.min.messages` (100k); the default
            // of 1 s leaves a fast reader idle for most of that second.
            .set("fetch.queue.backoff.ms", "10");
        for (key, value) in &self.config.client.options {
            client.set(key.as_str(), value.as_str());
        }
        let context = SourceContext {
            group: self.shared.clone(),
            workers: workers.clone(),
        };
        let consumer: BaseConsumer<SourceContext> = client
            .create_with_context(context)
            .map_err(|e| to_error(&self.name, "create consumer", &e))?;
        let consumer = Arc::new(consumer);
        let _ = workers.consumer.set(Arc::downgrade(&consumer));
        consumer
            .subscribe(&[&self.topic])
            .map_err(|e| to_error(&self.name, format!("subscribe to `{}`", self.topic), &e))?;
        info!(
            topic = %self.topic,
            group = %self.group,
            brokers = %self.config.client.bootstrap_servers(),
            format = self.config.format.data_format.name(),
            "kafka source started"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            consumer,
            workers,
            group: self.shared.clone(),
            stop: stop.clone(),
            errors: tx,
            name: self.name.clone(),
            commit_interval: self.config.commit_interval,
        };
        let handle = std::thread::Builder::new()
            .name("kafka-source".into())
            .spawn(move || driver.run())
            .map_err(|e| {
                Error::permanent(
                    self.name.to_string(),
                    "start consumer thread",
                    e.to_string(),
                )
            })?;
        Ok(Running {
            batches,
            stop,
            driver: Some(handle),
        })
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        // A source dropped without `close` still leaves its group (on the
        // driver thread, without waiting here).
        if let Some(running) = &self.running {
            running.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// What a running [`KafkaSource`] reports about its group membership.
#[derive(Clone)]
pub struct SourceStatus {
    group: Arc<Group>,
}

impl SourceStatus {
    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group.group
    }

    /// The partitions assigned to this source now.
    pub fn assigned_partitions(&self) -> Vec<i32> {
        self.group.state().assigned.iter().copied().collect()
    }

    /// The offsets this source committed (partition → next offset), as
    /// confirmed by the broker.
    pub fn committed_offsets(&self) -> BTreeMap<i32, i64> {
        self.group.state().committed.clone()
    }
}

impl std::fmt::Debug for SourceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceStatus")
            .field("group", &self.group.group)
            .field("assigned", &self.assigned_partitions())
            .finish()
    }
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("client", &self.config.client)
            .finish()
    }
}

/// The thread that owns the consumer: it serves the group protocol (the
/// rebalance callbacks run here), reports consumer errors and commits the
/// offsets the partition readers delivered.
struct Driver {
    consumer: Arc<BaseConsumer<SourceContext>>,
    workers: Arc<Workers>,
    group: Arc<Group>,
    stop: Arc<AtomicBool>,
    errors: mpsc::Sender<Result<RawBatch>>,
    name: Arc<str>,
    commit_interval: Duration,
}

impl Driver {
    fn run(self) -> Result<()> {
        let mut next_commit = Instant::now();
        let mut result = Ok(());
        while !self.stop.load(Ordering::Relaxed) {
            // Offsets published while this thread waits are committed when
            // it wakes: wake about once per commit interval (2 ms to 100 ms).
            let pending = !self.group.state().pending.is_empty();
            let wait = if pending {
                next_commit.saturating_duration_since(Instant::now())
            } else {
                self.commit_interval
            };
            let timeout = wait.clamp(Duration::from_millis(2), Duration::from_millis(100));
            match self.consumer.poll(timeout) {
                None => {}
                Some(Ok(message)) => {
                    // A message fetched before its partition's queue was
                    // split off: fetch it again into that queue.
                    debug!(
                        partition = message.partition(),
                        offset = message.offset(),
                        "message on the main queue"
                    );
                    let _ = self.consumer.seek(
                        &self.group.topic,
                        message.partition(),
                        Offset::Offset(message.offset()),
                        Duration::ZERO,
                    );
                }
                Some(Err(e)) => {
                    if let Err(fatal) = consumer_error(&e, &self.name, &self.group.topic) {
                        let _ = self.errors.blocking_send(Err(fatal.duplicate()));
                        result = Err(fatal);
                        break;
                    }
                }
            }
            let pending = pending || !self.group.state().pending.is_empty();
            if pending && Instant::now() >= next_commit {
                if let Err(e) = self.group.commit(&*self.consumer, None) {
                    warn!(group = %self.group.group, error = %e, "offset commit failed; will retry");
                }
                next_commit = Instant::now() + self.commit_interval;
            }
        }
        self.shut_down();
        result
    }

    /// Stops the readers (they drain), commits what they delivered and
    /// leaves the group.
    fn shut_down(self) {
        self.workers.stop_all();
        if let Err(e) = self.group.commit(&*self.consumer, None) {
            warn!(group = %self.group.group, error = %e, "commit at close failed; a restart may repeat records");
        }
        // The readers are gone, so this is the consumer's last reference:
        // dropping it leaves the group.
        drop(self.consumer);
    }
}

#[async_trait]
impl Source for KafkaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn schema(&self) -> Option<Arc<connector_core::Schema>> {
        self.config.format.record_schema()
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.running.is_none() {
            self.running = Some(self.start()?);
        }
        let Some(running) = self.running.as_mut() else {
            return Ok(None);
        };
        match running.batches.recv().await {
            Some(raw) => self.decoders.decode(raw?).await.map(Some),
            None => Err(Error::permanent(
                self.name.to_string(),
                format!("consume `{}`", self.topic),
                "the consumer stopped",
            )),
        }
    }

    async fn close(&mut self) -> Result<()> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        running.stop.store(true, Ordering::Relaxed);
        // Batches read ahead and never emitted are not committed; they are
        // read again by the next reader.
        running.batches.close();
        let Some(driver) = running.driver.take() else {
            return Ok(());
        };
        let name = self.name.to_string();
        match tokio::task::spawn_blocking(move || driver.join()).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::permanent(
                name,
                "close",
                "the consumer thread panicked",
            )),
            Err(e) => Err(Error::permanent(name, "close", e.to_string())),
        }
    }

    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.name.to_string());
        let probe = match Probe::new(&self.config.client, &self.name, Some(&self.group)) {
            Ok(p) => p,
            Err((kind, reason)) => {
                report.fail("create client", kind, reason);
                return report;
            }
        };
        let Some(info) = probe.connect_step(&mut report, &self.topic, timeout).await else {
            return report;
        };
        let topic = self.topic.to_string();
        let partitions = match info.partitions {
            Ok(p) => {
                report.pass(format!("topic `{topic}`"), describe_partitions(&p));
                p
            }
            Err(code) => {
                let (kind, reason) = topic_failure(&topic, code);
                report.fail(format!("topic `{topic}`"), kind, reason);
                return report;
            }
        };
        let offset = self.config.offset.as_str();
        let group = self.group.clone();
        report
            .step(format!("group `{group}`"), timeout, async {
                let committed = probe
                    .committed_offsets(&topic, &partitions, timeout)
                    .await?;
                let resumed = committed.iter().filter(|(_, o)| o.is_some()).count();
                Ok(match resumed {
                    0 => format!(
                        "coordinator answered; no committed offsets, will start at `{offset}`"
                    ),
                    n => format!(
                        "coordinator answered; committed offsets for {n} of {} partitions",
                        committed.len()
                    ),
                })
            })
            .await;
        report
    }
}
