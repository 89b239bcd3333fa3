//! The [`Source`] implementation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use connector_core::check::{CheckReport, FailureKind};
use connector_core::format::{Decoder, MessageMeta, Progress, decode_message, stamp};
use connector_core::{
    AckStatus, AckTracker, BadRecord, Batch, Error, Header, Position, Properties, Record, Result,
    Source,
};
use futures::{FutureExt, StreamExt};
use kafka_common::check::{Probe, describe_partitions, topic_failure};
use kafka_common::error::{describe, failure_kind, to_error};
use kafka_common::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use kafka_common::rdkafka::error::{KafkaError, KafkaResult};
use kafka_common::rdkafka::message::{BorrowedMessage, Headers, Message, OwnedMessage};
use kafka_common::rdkafka::topic_partition_list::Offset;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{GROUP_PREFIX, KafkaSourceConfig, SPEC};
use crate::group::{Change, Group, SourceContext};
use crate::offsets::{Action, BatchSpans, OffsetBook};

/// Reads a Kafka topic as a member of a consumer group.
///
/// Each record carries its message's key, timestamp, headers and position
/// ([`Position::Offset`]). Offsets are committed only for batches the sink
/// acknowledged, per partition and in order: an undelivered batch holds
/// back the commits after it. A failed batch is read again from its first
/// offset (after a growing pause). When partitions are revoked, what was
/// delivered from them is committed at once; batches still in flight are
/// left to the partitions' next owner, which reads them again from the
/// committed offsets. Payloads that do not decode go to [`Batch::bad`] (the
/// pipeline's bad-data policy decides) and never stop the partition.
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
    name: String,
    topic: Arc<str>,
    decoder: Box<dyn Decoder>,
    running: Option<Running>,
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
    pub fn committed_offsets(&self) -> std::collections::BTreeMap<i32, i64> {
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

/// The consumer and the bookkeeping of a started source.
struct Running {
    consumer: Arc<StreamConsumer<SourceContext>>,
    /// The offset commit in flight, on a blocking thread: librdkafka only
    /// reports the outcome of a commit to the thread that waits for it.
    commit: Option<CommitTask>,
    group: Arc<Group>,
    tracker: AckTracker<BatchSpans>,
    book: OffsetBook,
    seen_generation: u64,
    building: Building,
    /// A message waiting for the decoder's network work.
    held: Option<OwnedMessage>,
    next_commit: Instant,
    failures: u32,
    retry_backoff: Duration,
    max_retry_backoff: Duration,
    resume_at: Option<Instant>,
    actions: Vec<Action>,
}

/// The batch being read. It lives in the source, not in the future of
/// `next_batch`, so that a cancelled call loses nothing it read.
#[derive(Default)]
struct Building {
    records: Vec<Record>,
    bad: Vec<BadRecord>,
    spans: BatchSpans,
    messages: usize,
    bytes: u64,
}

impl Building {
    fn is_empty(&self) -> bool {
        self.messages == 0
    }
}

impl KafkaSource {
    /// A source decoding payloads as `config.format` says.
    pub fn new(config: KafkaSourceConfig) -> Result<Self> {
        let decoder = config.format.decoder()?;
        Ok(KafkaSource::with_decoder(config, decoder))
    }

    /// A source with its own decoder (`config.format` is then unused).
    pub fn with_decoder(config: KafkaSourceConfig, decoder: Box<dyn Decoder>) -> Self {
        let (group, generated_group) = match config.group_id() {
            Some(group) => (group, false),
            None => (format!("{GROUP_PREFIX}{}", uuid::Uuid::new_v4()), true),
        };
        let name = SPEC.component();
        KafkaSource {
            shared: Arc::new(Group::new(&name, &config.topic, &group)),
            name,
            topic: Arc::from(config.topic.as_str()),
            config,
            group,
            generated_group,
            decoder,
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
        let group = self.shared.clone();
        let mut client = self.config.client.client_config();
        client
            .set("group.id", &self.group)
            .set("client.id", "timeplus-connectors-kafka-source")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            .set("auto.offset.reset", self.config.offset.as_str());
        for (key, value) in &self.config.client.options {
            client.set(key.as_str(), value.as_str());
        }
        let consumer: StreamConsumer<SourceContext> = client
            .create_with_context(SourceContext(group.clone()))
            .map_err(|e| to_error(&self.name, "create consumer", &e))?;
        consumer
            .subscribe(&[&self.topic])
            .map_err(|e| to_error(&self.name, format!("subscribe to `{}`", self.topic), &e))?;
        info!(
            topic = %self.topic,
            group = %self.group,
            brokers = %self.config.client.bootstrap_servers(),
            format = self.decoder.format(),
            "kafka source started"
        );
        Ok(Running {
            consumer: Arc::new(consumer),
            commit: None,
            group,
            tracker: AckTracker::new(),
            book: OffsetBook::default(),
            seen_generation: 0,
            building: Building::default(),
            held: None,
            next_commit: Instant::now(),
            failures: 0,
            retry_backoff: self.config.retry_backoff,
            max_retry_backoff: self.config.max_retry_backoff,
            resume_at: None,
            actions: Vec::new(),
        })
    }
}

impl Running {
    /// Applies assignment changes made by the rebalance callbacks.
    fn apply_changes(&mut self) {
        apply_changes(&mut self.book, &self.group, &mut self.seen_generation);
    }

    /// Handles one batch outcome: moves commit points, or seeks back.
    fn outcome(&mut self, spans: BatchSpans, status: AckStatus, topic: &str) {
        self.actions.clear();
        self.book
            .outcome(&spans, status.is_settled(), &mut self.actions);
        if status.is_settled() {
            self.failures = 0;
        }
        for action in std::mem::take(&mut self.actions) {
            match action {
                Action::Commit { partition, next } => {
                    self.group.state().delivered(partition, next);
                }
                Action::Seek { partition, offset } => {
                    self.failures += 1;
                    let shift = (self.failures - 1).min(16);
                    let backoff = self
                        .retry_backoff
                        .saturating_mul(1 << shift)
                        .min(self.max_retry_backoff);
                    warn!(
                        topic,
                        partition,
                        offset,
                        retry_in_ms = backoff.as_millis() as u64,
                        error = %status.error().map(|e| e.to_string()).unwrap_or_default(),
                        "batch not delivered; reading the partition again from its first offset"
                    );
                    self.resume_at = Some(Instant::now() + backoff);
                    // Asynchronous seek: librdkafka drops what it fetched
                    // past this point and fetches again from `offset`.
                    if let Err(e) =
                        self.consumer
                            .seek(topic, partition, Offset::Offset(offset), Duration::ZERO)
                    {
                        // The partition left us meanwhile: its next owner
                        // reads from the committed offset.
                        warn!(topic, partition, error = %e, "seek failed");
                    }
                }
            }
        }
    }

    /// Handles every outcome that is ready.
    fn drain_outcomes(&mut self, topic: &str) {
        while let Some((spans, status)) = self.tracker.try_next() {
            self.outcome(spans, status, topic);
        }
    }

    /// Handles the answer to the commit in flight, if it came.
    fn reap_commit(&mut self) {
        if let Some(task) = self.commit.as_mut()
            && let Some(joined) = (&mut task.handle).now_or_never()
        {
            let offsets = std::mem::take(&mut task.offsets);
            self.commit = None;
            self.group.finish_commit(offsets, flatten_commit(joined));
        }
    }

    /// Starts a commit of the delivered offsets when none is in flight and
    /// the interval allows; returns when the next one may start if offsets
    /// are waiting for it.
    fn maybe_commit(&mut self, interval: Duration) -> Option<Instant> {
        self.reap_commit();
        if self.commit.is_some() {
            return None;
        }
        let now = Instant::now();
        if now < self.next_commit {
            let waiting = !self.group.state().pending.is_empty();
            return waiting.then_some(self.next_commit);
        }
        let offsets = self.group.start_commit()?;
        let consumer = self.consumer.clone();
        let group = self.group.clone();
        let sent = offsets.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let tpl = group.partition_list(&sent);
            consumer.commit(&tpl, CommitMode::Sync)
        });
        self.commit = Some(CommitTask { offsets, handle });
        self.next_commit = now + interval;
        None
    }
}

/// An offset commit waiting for the broker.
struct CommitTask {
    offsets: std::collections::BTreeMap<i32, i64>,
    handle: tokio::task::JoinHandle<KafkaResult<()>>,
}

fn flatten_commit(
    joined: std::result::Result<KafkaResult<()>, tokio::task::JoinError>,
) -> KafkaResult<()> {
    joined.unwrap_or_else(|e| {
        Err(KafkaError::Canceled).inspect_err(|_| warn!(error = %e, "commit task failed"))
    })
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
        let KafkaSource {
            config,
            name,
            topic,
            decoder,
            running,
            ..
        } = self;
        let Some(run) = running.as_mut() else {
            return Ok(None);
        };
        let reader = Reader {
            decoder: &mut **decoder,
            name,
            topic,
            max: config.max_batch_messages.max(1),
        };
        let mut reader = reader;
        loop {
            run.apply_changes();
            if run.building.is_empty() {
                // Outcomes may seek partitions back: act on them only
                // between batches.
                run.drain_outcomes(reader.topic);
            }
            let commit_at = run.maybe_commit(config.commit_interval);

            // A message whose decoding needs network work first (a schema
            // registry lookup).
            if run.held.is_some() {
                let Running {
                    building,
                    book,
                    group,
                    seen_generation,
                    held,
                    ..
                } = &mut *run;
                let mut books = Books {
                    book,
                    group,
                    seen: seen_generation,
                };
                if let Some(message) = held.as_ref() {
                    reader.read_resolving(building, &mut books, message).await?;
                }
                *held = None;
            }

            if run.building.is_empty() {
                if let Some(at) = run.resume_at {
                    // Pausing after a failed batch; outcomes still count.
                    if Instant::now() < at {
                        tokio::select! {
                            biased;
                            Some((spans, status)) = run.tracker.next(), if run.tracker.outstanding() > 0 => {
                                run.outcome(spans, status, reader.topic);
                            }
                            _ = tokio::time::sleep_until(at) => {}
                        }
                        continue;
                    }
                    run.resume_at = None;
                }
                // Wait for the first message, serving outcomes and commits.
                let Running {
                    consumer,
                    commit,
                    tracker,
                    building,
                    book,
                    group,
                    seen_generation,
                    held,
                    ..
                } = &mut *run;
                let mut books = Books {
                    book,
                    group,
                    seen: seen_generation,
                };
                let mut stream = consumer.stream();
                let outstanding = tracker.outstanding() > 0;
                let committing = async {
                    match commit.as_mut() {
                        Some(task) => (&mut task.handle).await,
                        None => std::future::pending().await,
                    }
                };
                let waited = tokio::select! {
                    biased;
                    Some(outcome) = tracker.next(), if outstanding => Waited::Outcome(outcome),
                    joined = committing => Waited::Committed(joined),
                    _ = tokio::time::sleep_until(commit_at.unwrap_or_else(Instant::now)), if commit_at.is_some() => Waited::CommitDue,
                    Some(message) = stream.next() => {
                        match reader.read_event(building, &mut books, message)? {
                            Some(owned) => *held = Some(owned),
                            None => reader.fill(building, &mut books, held, &mut stream)?,
                        }
                        Waited::Read
                    }
                };
                drop(stream);
                match waited {
                    Waited::Outcome((spans, status)) => {
                        run.outcome(spans, status, reader.topic);
                        continue;
                    }
                    Waited::CommitDue => continue,
                    Waited::Committed(joined) => {
                        if let Some(task) = run.commit.take() {
                            run.group
                                .finish_commit(task.offsets, flatten_commit(joined));
                        }
                        continue;
                    }
                    Waited::Read => {}
                }
            } else {
                // A batch read before a cancelled call: top it up and send it.
                let Running {
                    consumer,
                    building,
                    book,
                    group,
                    seen_generation,
                    held,
                    ..
                } = &mut *run;
                let mut books = Books {
                    book,
                    group,
                    seen: seen_generation,
                };
                let mut stream = consumer.stream();
                reader.fill(building, &mut books, held, &mut stream)?;
            }
            if run.building.is_empty() {
                continue;
            }
            let building = std::mem::take(&mut run.building);
            let ack = run.tracker.track(building.spans);
            let mut batch = Batch::with_ack(building.records, ack);
            batch.bad = building.bad;
            batch.source_bytes = building.bytes;
            return Ok(Some(batch));
        }
    }

    async fn close(&mut self) -> Result<()> {
        let Some(mut run) = self.running.take() else {
            return Ok(());
        };
        let topic = self.topic.clone();
        run.drain_outcomes(&topic);
        if let Some(task) = run.commit.take() {
            let joined = task.handle.await;
            run.group
                .finish_commit(task.offsets, flatten_commit(joined));
        }
        let name = self.name.clone();
        let outstanding = run.tracker.outstanding();
        // Commit and leave the group off the async threads: both wait for
        // the broker.
        let joined = tokio::task::spawn_blocking(move || {
            let offsets = run.group.state().uncommitted();
            let result = run.group.commit_sync(&*run.consumer, &offsets);
            if outstanding > 0 {
                info!(
                    batches = outstanding,
                    "kafka source closed with batches unresolved; they will be read again"
                );
            }
            let Running {
                consumer, group, ..
            } = run;
            drop(consumer); // leaves the group
            let _ = group;
            result
        })
        .await;
        match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(to_error(&name, "commit offsets at close", &e)),
            Err(e) => Err(Error::permanent(name, "close", e.to_string())),
        }
    }

    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(&self.name);
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

/// Applies assignment changes made by the rebalance callbacks (which run
/// inside the consumer's poll, so before the message it returns).
fn apply_changes(book: &mut OffsetBook, group: &Group, seen: &mut u64) {
    let generation = group.generation.load(Ordering::Acquire);
    if generation == *seen {
        return;
    }
    *seen = generation;
    let changes = std::mem::take(&mut group.state().changes);
    for change in changes {
        match change {
            Change::Assigned(ps) => book.assigned(&ps),
            Change::Revoked(ps) => book.revoked(&ps),
        }
    }
}

/// The offset bookkeeping a reader updates as it reads.
struct Books<'a> {
    book: &'a mut OffsetBook,
    group: &'a Group,
    seen: &'a mut u64,
}

impl Books<'_> {
    fn epoch(&mut self, partition: i32) -> u64 {
        apply_changes(self.book, self.group, self.seen);
        self.book.epoch(partition)
    }
}

/// What the wait for the first message of a batch ended with.
enum Waited {
    Outcome((BatchSpans, AckStatus)),
    Committed(std::result::Result<KafkaResult<()>, tokio::task::JoinError>),
    CommitDue,
    Read,
}

/// Decodes messages into the batch being read.
struct Reader<'a> {
    decoder: &'a mut dyn Decoder,
    name: &'a str,
    topic: &'a Arc<str>,
    max: usize,
}

impl Reader<'_> {
    /// Reads what the consumer has ready, without waiting, until the batch
    /// is full or a message needs the decoder's network work.
    fn fill<C: kafka_common::rdkafka::consumer::ConsumerContext>(
        &mut self,
        building: &mut Building,
        books: &mut Books<'_>,
        held: &mut Option<OwnedMessage>,
        stream: &mut kafka_common::rdkafka::consumer::MessageStream<'_, C>,
    ) -> Result<()> {
        while building.messages < self.max && held.is_none() {
            let Some(Some(event)) = stream.next().now_or_never() else {
                break;
            };
            if let Some(owned) = self.read_event(building, books, event)? {
                *held = Some(owned);
            }
        }
        Ok(())
    }

    /// Reads one consumer event. Returns the message detached when the
    /// decoder needs network work before it can decode it.
    fn read_event(
        &mut self,
        building: &mut Building,
        books: &mut Books<'_>,
        event: std::result::Result<BorrowedMessage<'_>, KafkaError>,
    ) -> Result<Option<OwnedMessage>> {
        let message = match event {
            Ok(m) => m,
            Err(e) => {
                consumer_error(&e, self.name, self.topic)?;
                return Ok(None);
            }
        };
        let parts = Parts::of(&message, self.topic);
        let meta = parts.meta();
        let start = building.records.len();
        let decoded = match self
            .decoder
            .decode(parts.payload, &meta, &mut building.records)
        {
            Ok(Progress::Done) => {
                stamp(&mut building.records[start..], &meta);
                Ok(())
            }
            Ok(Progress::NeedsResolve) => {
                building.records.truncate(start);
                return Ok(Some(message.detach()));
            }
            Err(e) => Err(e.at(&parts.position)),
        };
        self.finish(building, books, &parts, start, decoded)?;
        Ok(None)
    }

    /// Reads a held message, waiting for the decoder's network work.
    async fn read_resolving(
        &mut self,
        building: &mut Building,
        books: &mut Books<'_>,
        message: &OwnedMessage,
    ) -> Result<()> {
        let parts = Parts::of(message, self.topic);
        let start = building.records.len();
        let decoded = decode_message(
            self.decoder,
            parts.payload,
            &parts.meta(),
            &mut building.records,
        )
        .await;
        self.finish(building, books, &parts, start, decoded)
    }

    /// Counts the message into the batch; an undecodable payload becomes a
    /// bad record under the batch's ack.
    fn finish(
        &self,
        building: &mut Building,
        books: &mut Books<'_>,
        parts: &Parts<'_>,
        start: usize,
        decoded: Result<()>,
    ) -> Result<()> {
        if let Err(e) = decoded {
            building.records.truncate(start);
            if !e.is_bad_data() {
                // The decoder could not do its network work (registry down):
                // the message is not counted, so nothing past it commits.
                return Err(e.in_component(self.name.to_owned()));
            }
            building.bad.push(BadRecord::undecodable(
                e.in_component(self.name.to_owned()),
                bytes::Bytes::copy_from_slice(parts.payload),
                Some(parts.position.clone()),
            ));
        }
        let epoch = books.epoch(parts.partition);
        building.spans.add(parts.partition, epoch, parts.offset);
        building.messages += 1;
        building.bytes += parts.payload.len() as u64;
        Ok(())
    }
}

/// The parts of a message a record needs.
struct Parts<'m> {
    partition: i32,
    offset: i64,
    payload: &'m [u8],
    key: Option<&'m [u8]>,
    timestamp: Option<i64>,
    headers: Vec<Header>,
    position: Position,
}

impl<'m> Parts<'m> {
    fn of<M: Message>(message: &'m M, topic: &Arc<str>) -> Self {
        let partition = message.partition();
        let offset = message.offset();
        Parts {
            partition,
            offset,
            // A tombstone (no payload) reaches the decoder as an empty payload.
            payload: message.payload().unwrap_or_default(),
            key: message.key(),
            timestamp: message
                .timestamp()
                .to_millis()
                .map(|ms| ms.saturating_mul(1000)),
            headers: message.headers().map(copy_headers).unwrap_or_default(),
            position: Position::Offset {
                topic: topic.clone(),
                partition,
                offset,
            },
        }
    }

    fn meta(&self) -> MessageMeta<'_> {
        MessageMeta {
            key: self.key,
            timestamp: self.timestamp,
            headers: &self.headers,
            position: Some(&self.position),
        }
    }
}

fn copy_headers<H: Headers>(headers: &H) -> Vec<Header> {
    headers
        .iter()
        .map(|h| Header {
            name: h.key.to_owned(),
            value: h.value.map(bytes::Bytes::copy_from_slice),
        })
        .collect()
}

/// Whether a consumer error stops the source.
fn consumer_error(err: &KafkaError, name: &str, topic: &str) -> Result<()> {
    match err {
        KafkaError::PartitionEOF(_) => Ok(()),
        KafkaError::MessageConsumptionFatal(_) => {
            Err(to_error(name, format!("consume `{topic}`"), err))
        }
        other => match other.rdkafka_error_code().map(failure_kind) {
            Some(FailureKind::AuthRefused | FailureKind::PermissionDenied) => {
                Err(to_error(name, format!("consume `{topic}`"), err))
            }
            _ => {
                // librdkafka retries by itself (broker down, topic missing).
                warn!(topic, error = %describe(err), "kafka consumer error; retrying");
                Ok(())
            }
        },
    }
}
