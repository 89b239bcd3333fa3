//! One partition's reader: a task that reads the partition's own queue,
//! emits batches of raw messages (decoded by whoever takes them, see
//! [`decode`](crate::decode)) and acts on their outcomes.
//!
//! Each assigned partition gets a worker, so each is read by one task
//! only. That makes redelivery
//! simple: a failed batch seeks the partition back and starts a new epoch
//! (see [`offsets`](crate::offsets)), and every message read after the
//! seek belongs to it. Offsets of delivered batches are handed to the
//! [`Group`], whose driver commits them.

use std::sync::Arc;
use std::time::Duration;

use connector_core::check::FailureKind;
use connector_core::{AckStatus, AckTracker, CancellationToken, Header, Result};
use kafka_common::error::{describe, failure_kind, to_error};
use kafka_common::rdkafka::consumer::{BaseConsumer, Consumer, base_consumer::PartitionQueue};
use kafka_common::rdkafka::error::KafkaError;
use kafka_common::rdkafka::message::{Headers, Message};
use kafka_common::rdkafka::topic_partition_list::Offset;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::decode::{RawBatch, RawMessage, Spares};
use crate::group::{Group, SourceContext};
use crate::offsets::{Action, PartitionBook, Span};

/// What every worker of a source shares.
#[derive(Clone)]
pub(crate) struct WorkerSettings {
    pub name: Arc<str>,
    pub topic: Arc<str>,
    pub max_batch: usize,
    pub retry_backoff: Duration,
    pub max_retry_backoff: Duration,
    pub drain_timeout: Duration,
    pub batches: mpsc::Sender<Result<RawBatch>>,
    /// Buffers to reuse.
    pub spares: Arc<Spares>,
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
) -> WorkerHandle {
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
        max: settings.max_batch.max(1),
        tracker: AckTracker::new(),
        book: PartitionBook::default(),
        building: Building::default(),
        last_size: (0, 0),
        failures: 0,
        resume_at: None,
        idle_polls: 0,
        queue,
        consumer,
        _done: done_tx,
    };
    runtime.spawn(worker.run());
    WorkerHandle { stop, done }
}

struct Worker {
    partition: i32,
    settings: WorkerSettings,
    stop: CancellationToken,
    notify: Arc<Notify>,
    /// Most messages per batch.
    max: usize,
    tracker: AckTracker<Span>,
    book: PartitionBook,
    building: Building,
    /// Messages and buffer bytes of the last batch, to size the next.
    last_size: (usize, usize),
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
    data: Vec<u8>,
    messages: Vec<RawMessage>,
    span: Option<Span>,
    bytes: u64,
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
            self.fill()?;
            if !self.building.messages.is_empty() {
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

    /// Reads what the queue has now, until the batch is full.
    fn fill(&mut self) -> Result<()> {
        let epoch = self.book.epoch();
        if self.building.messages.capacity() == 0 {
            if let Some((data, messages)) = self.settings.spares.take() {
                self.building.data = data;
                self.building.messages = messages;
            }
            // Sized like the last batch: one allocation each, usually.
            let (messages, data) = self.last_size;
            self.building
                .messages
                .reserve(messages.max(16).min(self.max));
            self.building.data.reserve(data.max(1024));
        }
        while self.building.messages.len() < self.max {
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
            push(&mut self.building, &message, epoch);
        }
        Ok(())
    }

    fn emit(&mut self) -> RawBatch {
        let building = std::mem::take(&mut self.building);
        let span = building.span.expect("a batch with messages has a span");
        self.last_size = (building.messages.len(), building.data.len());
        RawBatch {
            partition: self.partition,
            data: building.data,
            messages: building.messages,
            bytes: building.bytes,
            ack: self.tracker.track(span),
        }
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

/// Copies a message into the batch: payload and key into its buffer.
fn push<M: Message>(building: &mut Building, message: &M, epoch: u64) {
    let payload = message.payload().unwrap_or_default();
    // A tombstone (no payload) reaches the decoder as an empty payload.
    let at = building.data.len();
    building.data.extend_from_slice(payload);
    let payload_range = at..building.data.len();
    let key = message.key().map(|key| {
        let at = building.data.len();
        building.data.extend_from_slice(key);
        at..building.data.len()
    });
    let offset = message.offset();
    building.messages.push(RawMessage {
        offset,
        payload: payload_range,
        key,
        timestamp: message
            .timestamp()
            .to_millis()
            .map(|ms| ms.saturating_mul(1000)),
        headers: message.headers().map(copy_headers).unwrap_or_default(),
    });
    match &mut building.span {
        Some(span) => span.last = offset,
        None => {
            building.span = Some(Span {
                epoch,
                first: offset,
                last: offset,
            })
        }
    }
    building.bytes += payload.len() as u64;
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
