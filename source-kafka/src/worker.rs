//! One partition's reader: a task that reads the partition's own queue,
//! decodes, emits batches and acts on their outcomes.
//!
//! Each assigned partition gets a worker, so partitions are decoded in
//! parallel and each is read by one task only. That makes redelivery
//! simple: a failed batch seeks the partition back and starts a new epoch
//! (see [`offsets`](crate::offsets)), and every message read after the
//! seek belongs to it. Offsets of delivered batches are handed to the
//! [`Group`], whose driver commits them.

use std::sync::Arc;
use std::time::Duration;

use connector_core::check::FailureKind;
use connector_core::format::{Decoder, MessageMeta, Progress, decode_message, stamp};
use connector_core::{
    AckStatus, AckTracker, BadRecord, Batch, CancellationToken, Header, Position, Record, Result,
};
use kafka_common::error::{describe, failure_kind, to_error};
use kafka_common::rdkafka::consumer::{BaseConsumer, Consumer, base_consumer::PartitionQueue};
use kafka_common::rdkafka::error::KafkaError;
use kafka_common::rdkafka::message::{Headers, Message, OwnedMessage};
use kafka_common::rdkafka::topic_partition_list::Offset;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::group::{Group, SourceContext};
use crate::offsets::{Action, PartitionBook, Span};

/// Makes a decoder for each partition worker.
pub(crate) type DecoderFactory = Arc<dyn Fn() -> Result<Box<dyn Decoder>> + Send + Sync>;

/// What every worker of a source shares.
#[derive(Clone)]
pub(crate) struct WorkerSettings {
    pub name: Arc<str>,
    pub topic: Arc<str>,
    pub max_batch: usize,
    pub retry_backoff: Duration,
    pub max_retry_backoff: Duration,
    pub drain_timeout: Duration,
    pub decoders: DecoderFactory,
    pub batches: mpsc::Sender<Result<Batch>>,
    pub group: Arc<Group>,
}

/// A started worker, as its coordinator sees it.
pub(crate) struct WorkerHandle {
    pub stop: CancellationToken,
    /// Disconnects when the worker is gone.
    pub done: std::sync::mpsc::Receiver<()>,
}

/// Starts the worker of `partition` on `runtime`.
pub(crate) fn spawn(
    settings: &WorkerSettings,
    runtime: &tokio::runtime::Handle,
    consumer: Arc<BaseConsumer<SourceContext>>,
    mut queue: PartitionQueue<SourceContext>,
    partition: i32,
) -> Result<WorkerHandle> {
    let decoder = (settings.decoders)()?;
    let notify = Arc::new(Notify::new());
    let wake = notify.clone();
    // librdkafka calls this when the queue goes from empty to non-empty.
    queue.set_nonempty_callback(move || wake.notify_one());
    let stop = CancellationToken::new();
    let (done_tx, done) = std::sync::mpsc::channel();
    let worker = Worker {
        partition,
        settings: settings.clone(),
        stop: stop.clone(),
        notify,
        reader: Reader {
            decoder,
            name: settings.name.clone(),
            // Every record holds the topic: a copy per reader keeps readers
            // on different threads from sharing one reference count.
            topic: Arc::from(&*settings.topic),
            max: settings.max_batch.max(1),
        },
        tracker: AckTracker::new(),
        book: PartitionBook::default(),
        building: Building::default(),
        held: None,
        failures: 0,
        resume_at: None,
        idle_polls: 0,
        queue,
        consumer,
        _done: done_tx,
    };
    runtime.spawn(worker.run());
    Ok(WorkerHandle { stop, done })
}

struct Worker {
    partition: i32,
    settings: WorkerSettings,
    stop: CancellationToken,
    notify: Arc<Notify>,
    reader: Reader,
    tracker: AckTracker<Span>,
    book: PartitionBook,
    building: Building,
    /// A message waiting for the decoder's network work.
    held: Option<OwnedMessage>,
    failures: u32,
    resume_at: Option<Instant>,
    idle_polls: u32,
    queue: PartitionQueue<SourceContext>,
    consumer: Arc<BaseConsumer<SourceContext>>,
    // Dropped last: the coordinator knows the worker is gone (and holds no
    // reference to the consumer any more) when this disconnects.
    _done: std::sync::mpsc::Sender<()>,
}

/// The batch being read.
#[derive(Default)]
struct Building {
    records: Vec<Record>,
    bad: Vec<BadRecord>,
    span: Option<Span>,
    bytes: u64,
    messages: usize,
}

impl Worker {
    async fn run(mut self) {
        debug!(topic = %self.settings.topic, partition = self.partition, "partition reader started");
        if let Err(e) = self.read_until_stopped().await {
            // The source cannot go on: tell whoever reads its batches.
            let _ = self.settings.batches.send(Err(e)).await;
        }
        self.drain().await;
        debug!(topic = %self.settings.topic, partition = self.partition, "partition reader stopped");
    }

    async fn read_until_stopped(&mut self) -> Result<()> {
        loop {
            while let Some((span, status)) = self.tracker.try_next() {
                self.outcome(span, &status);
            }
            if self.stop.is_cancelled() {
                return Ok(());
            }
            if let Some(at) = self.resume_at {
                // Pausing after a failed batch; outcomes still count.
                if Instant::now() < at {
                    tokio::select! {
                        biased;
                        _ = self.stop.cancelled() => return Ok(()),
                        Some((span, status)) = self.tracker.next(), if self.tracker.outstanding() > 0 => {
                            self.outcome(span, &status);
                        }
                        _ = tokio::time::sleep_until(at) => {}
                    }
                    continue;
                }
                self.resume_at = None;
            }
            if let Some(message) = self.held.take() {
                let epoch = self.book.epoch();
                self.reader
                    .read_resolving(&mut self.building, &message, epoch)
                    .await?;
            }
            self.fill()?;
            if self.held.is_some() {
                continue;
            }
            if self.building.messages > 0 {
                // Hand the batch over, serving outcomes while there is no room.
                let batches = self.settings.batches.clone();
                tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => return Ok(()),
                    Some((span, status)) = self.tracker.next(), if self.tracker.outstanding() > 0 => {
                        self.outcome(span, &status);
                    }
                    permit = batches.reserve() => match permit {
                        Ok(permit) => permit.send(Ok(self.emit())),
                        // Nobody reads batches any more.
                        Err(_) => return Ok(()),
                    },
                }
                continue;
            }
            // Nothing to read: wait for messages, outcomes or the end.
            let notified = self.notify.notified();
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ok(()),
                Some((span, status)) = self.tracker.next(), if self.tracker.outstanding() > 0 => {
                    self.outcome(span, &status);
                }
                _ = notified => self.idle_polls = 0,
                // The wake-up is edge-triggered and can be missed
                // (rust-rdkafka#665): look again now and then, soon after
                // traffic and rarely when idle.
                _ = tokio::time::sleep(repoll_after(self.idle_polls)) => {
                    self.idle_polls = self.idle_polls.saturating_add(1);
                }
            }
        }
    }

    /// Reads what the queue has now, until the batch is full or a message
    /// needs the decoder's network work.
    fn fill(&mut self) -> Result<()> {
        let epoch = self.book.epoch();
        while self.building.messages < self.reader.max {
            let Some(event) = self.queue.poll(Duration::ZERO) else {
                break;
            };
            let message = match event {
                Ok(m) => m,
                Err(e) => {
                    consumer_error(&e, &self.settings.name, &self.settings.topic)?;
                    continue;
                }
            };
            self.idle_polls = 0;
            if self.reader.read_now(&mut self.building, &message, epoch)? {
                self.held = Some(message.detach());
                break;
            }
        }
        Ok(())
    }

    fn emit(&mut self) -> Batch {
        let building = std::mem::take(&mut self.building);
        let span = building.span.expect("a batch with messages has a span");
        let ack = self.tracker.track(span);
        let mut batch = Batch::with_ack(building.records, ack);
        batch.bad = building.bad;
        batch.source_bytes = building.bytes;
        batch
    }

    /// Acts on a batch's outcome.
    fn outcome(&mut self, span: Span, status: &AckStatus) {
        match self.book.outcome(span, status.is_settled()) {
            Action::Commit { next } => {
                self.failures = 0;
                self.settings.group.delivered(self.partition, next);
            }
            Action::Ignore => {}
            Action::Seek { offset } => {
                self.failures += 1;
                let shift = (self.failures - 1).min(16);
                let backoff = self
                    .settings
                    .retry_backoff
                    .saturating_mul(1 << shift)
                    .min(self.settings.max_retry_backoff);
                warn!(
                    topic = %self.settings.topic,
                    partition = self.partition,
                    offset,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = %status.error().map(|e| e.to_string()).unwrap_or_default(),
                    "batch not delivered; reading the partition again from its first offset"
                );
                self.resume_at = Some(Instant::now() + backoff);
                // What was read past the failed batch is read again.
                self.building = Building::default();
                self.held = None;
                // Synchronous in effect for this reader: librdkafka discards
                // what it fetched before the seek, and fetches again.
                if let Err(e) = self.consumer.seek(
                    &self.settings.topic,
                    self.partition,
                    Offset::Offset(offset),
                    Duration::ZERO,
                ) {
                    warn!(topic = %self.settings.topic, partition = self.partition, error = %e, "seek failed");
                }
            }
        }
    }

    /// After a stop: waits (up to the drain timeout) for the outcomes of the
    /// batches in flight, so that what they delivered is committed before
    /// the partition goes to its next owner.
    async fn drain(&mut self) {
        let deadline = Instant::now() + self.settings.drain_timeout;
        while self.tracker.outstanding() > 0 {
            tokio::select! {
                Some((span, status)) = self.tracker.next() => {
                    if let Action::Commit { next } = self.book.outcome(span, status.is_settled()) {
                        self.settings.group.delivered(self.partition, next);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    debug!(
                        topic = %self.settings.topic,
                        partition = self.partition,
                        batches = self.tracker.outstanding(),
                        "batches still in flight when the partition was given up; they will be read again"
                    );
                    break;
                }
            }
        }
    }
}

/// How long to wait before looking at a queue again without a wake-up:
/// 1 ms doubling to 100 ms.
fn repoll_after(idle_polls: u32) -> Duration {
    Duration::from_millis(1 << idle_polls.min(7)).min(Duration::from_millis(100))
}

/// Whether a consumer error stops the source.
pub(crate) fn consumer_error(err: &KafkaError, name: &str, topic: &str) -> Result<()> {
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

/// Decodes messages into a batch.
struct Reader {
    decoder: Box<dyn Decoder>,
    name: Arc<str>,
    topic: Arc<str>,
    max: usize,
}

impl Reader {
    /// Reads one message; `Ok(true)` when the decoder needs network work
    /// first (nothing was added then).
    fn read_now<M: Message>(
        &mut self,
        building: &mut Building,
        message: &M,
        epoch: u64,
    ) -> Result<bool> {
        if building.records.capacity() == 0 {
            // Most messages make one record.
            building.records.reserve(self.max.min(256));
        }
        let parts = Parts::of(message, &self.topic);
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
                return Ok(true);
            }
            Err(e) => Err(e.at(&parts.position)),
        };
        self.finish(building, &parts, start, decoded, epoch)?;
        Ok(false)
    }

    /// Reads a held message, waiting for the decoder's network work.
    async fn read_resolving(
        &mut self,
        building: &mut Building,
        message: &OwnedMessage,
        epoch: u64,
    ) -> Result<()> {
        let parts = Parts::of(message, &self.topic);
        let start = building.records.len();
        let decoded = decode_message(
            &mut *self.decoder,
            parts.payload,
            &parts.meta(),
            &mut building.records,
        )
        .await;
        self.finish(building, &parts, start, decoded, epoch)
    }

    /// Counts the message into the batch; an undecodable payload becomes a
    /// bad record under the batch's ack.
    fn finish(
        &self,
        building: &mut Building,
        parts: &Parts<'_>,
        start: usize,
        decoded: Result<()>,
        epoch: u64,
    ) -> Result<()> {
        if let Err(e) = decoded {
            building.records.truncate(start);
            if !e.is_bad_data() {
                // The decoder could not do its network work (registry down):
                // the message is not counted, so nothing past it commits.
                return Err(e.in_component(self.name.to_string()));
            }
            building.bad.push(BadRecord::undecodable(
                e.in_component(self.name.to_string()),
                bytes::Bytes::copy_from_slice(parts.payload),
                Some(parts.position.clone()),
            ));
        }
        match &mut building.span {
            Some(span) => span.last = parts.offset,
            None => {
                building.span = Some(Span {
                    epoch,
                    first: parts.offset,
                    last: parts.offset,
                });
            }
        }
        building.messages += 1;
        building.bytes += parts.payload.len() as u64;
        Ok(())
    }
}

/// The parts of a message a record needs.
struct Parts<'m> {
    offset: i64,
    payload: &'m [u8],
    key: Option<&'m [u8]>,
    timestamp: Option<i64>,
    headers: Vec<Header>,
    position: Position,
}

impl<'m> Parts<'m> {
    fn of<M: Message>(message: &'m M, topic: &Arc<str>) -> Self {
        let offset = message.offset();
        Parts {
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
                partition: message.partition(),
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
