//! The source itself: consume, decode, and acknowledge what was delivered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use connector_core::check::CheckReport;
use connector_core::format::{Decoder, MessageMeta, decode_message};
use connector_core::{
    AckStatus, AckTracker, BadRecord, Batch, Header, Position, Properties, Record, Result, Source,
};
use futures::{FutureExt as _, StreamExt as _};
use pulsar_common::pulsar::consumer::{Message, data::MessageData};
use pulsar_common::pulsar::proto::MessageIdData;
use pulsar_common::pulsar::{Consumer, ConsumerOptions, TokioExecutor};
use pulsar_common::{PulsarClient, pulsar_error};
use tokio::time::Instant;

use crate::config::{SPEC, SourceConfig};

type PulsarConsumer = Consumer<Vec<u8>, TokioExecutor>;

/// Longest wait between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long `close` waits for emitted batches to resolve.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// A message handed out in a batch, kept until its outcome is known.
#[derive(Debug, Clone)]
struct Delivered {
    topic: Arc<str>,
    id: MessageData,
}

/// Outcomes of the messages of one batched entry (producer-side batching),
/// which the broker acknowledges as a whole.
#[derive(Debug, Default)]
struct EntryState {
    seen: i32,
    failed: bool,
}

/// A batch being assembled; kept in the source so that a cancelled
/// `next_batch` loses nothing.
#[derive(Default)]
struct Building {
    records: Vec<Record>,
    bad: Vec<BadRecord>,
    delivered: Vec<Delivered>,
    bytes: u64,
}

/// Reads a Pulsar topic through a subscription.
///
/// Each message becomes the records its payload decodes to, carrying the
/// message key (the partition key's bytes), the message properties as
/// headers, the event time (or else the publish time) and the message id
/// as [`Position::MessageId`] (`ledger:entry:partition[:batch_index]`).
/// Payloads that do not decode go to [`Batch::bad`] under the batch's ack.
///
/// Messages are acknowledged only when their batch is delivered (or
/// rejected as bad data), and negatively acknowledged, so that the broker
/// sends them again, `nack_redelivery_delay` after their batch failed. A
/// message of a producer-side batch is acknowledged with the rest of its
/// entry, once all of them are settled, because the broker acknowledges
/// entries whole. The `pulsar` client reconnects by itself; when its
/// consumer gives up (a broker gone for long), the source subscribes again
/// with backoff.
pub struct PulsarSource {
    config: SourceConfig,
    name: String,
    subscription: String,
    decoder: Box<dyn Decoder>,
    client: Option<PulsarClient>,
    consumer: Option<PulsarConsumer>,
    connected_once: bool,
    backoff: Duration,
    tracker: AckTracker<Vec<Delivered>>,
    entries: HashMap<(Arc<str>, u64, u64, i32), EntryState>,
    to_ack: Vec<Delivered>,
    to_nack: VecDeque<(Instant, Delivered)>,
    pending: VecDeque<Message<Vec<u8>>>,
    building: Building,
    topics: HashMap<String, Arc<str>>,
}

impl std::fmt::Debug for PulsarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarSource")
            .field("config", &self.config)
            .field("subscription", &self.subscription)
            .field("connected", &self.consumer.is_some())
            .field("unresolved_batches", &self.tracker.outstanding())
            .finish()
    }
}

impl PulsarSource {
    /// A source from a typed config; subscribes on the first `next_batch`.
    pub fn new(config: SourceConfig) -> Result<Self> {
        let decoder = config.format.decoder()?;
        let subscription = match config.subscription() {
            Some(name) => name,
            None => {
                let name = format!("timeplus-source-{}", uuid::Uuid::new_v4());
                tracing::warn!(
                    subscription = %name,
                    "pulsar source: no `id` or `subscription_name`; using a random subscription, so what is read now will not be resumed after a restart"
                );
                name
            }
        };
        Ok(PulsarSource {
            name: SPEC.component(),
            subscription,
            decoder,
            client: None,
            consumer: None,
            connected_once: false,
            backoff: Duration::from_millis(100),
            tracker: AckTracker::new(),
            entries: HashMap::new(),
            to_ack: Vec::new(),
            to_nack: VecDeque::new(),
            pending: VecDeque::new(),
            building: Building::default(),
            topics: HashMap::new(),
            config,
        })
    }

    /// A source from the `pulsar` source property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        SourceConfig::from_properties(props).and_then(PulsarSource::new)
    }

    /// The configuration in use.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The subscription the source reads through.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    async fn subscribe(&mut self) -> Result<()> {
        let connection = &self.config.connection;
        if self.client.is_none() {
            self.client = Some(
                pulsar_common::connect(
                    connection,
                    &self.name,
                    pulsar_common::DEFAULT_OPERATION_TIMEOUT,
                )
                .await?,
            );
        }
        let client = self.client.as_ref().expect("connected above");
        let consumer: PulsarConsumer = client
            .consumer()
            .with_topic(&connection.topic)
            .with_subscription(&self.subscription)
            .with_subscription_type(self.config.subscription_type.to_pulsar())
            .with_batch_size(self.config.receiver_queue_size)
            .with_options(
                ConsumerOptions::default()
                    .durable(true)
                    .with_initial_position(self.config.initial_position.to_pulsar()),
            )
            .build()
            .await
            .map_err(|e| {
                pulsar_error(
                    &self.name,
                    format!(
                        "subscribe to {} as `{}`",
                        connection.topic, self.subscription
                    ),
                    e,
                )
            })?;
        tracing::info!(
            topic = %connection.topic,
            subscription = %self.subscription,
            kind = self.config.subscription_type.as_str(),
            "pulsar source: subscribed"
        );
        self.consumer = Some(consumer);
        self.connected_once = true;
        self.backoff = Duration::from_millis(100);
        Ok(())
    }

    /// Makes sure there is a consumer; after the first success, failures
    /// are retried with backoff rather than returned.
    async fn ensure_consumer(&mut self) -> Result<()> {
        while self.consumer.is_none() {
            match self.subscribe().await {
                Ok(()) => {}
                Err(e) if !self.connected_once => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?self.backoff, "pulsar source: cannot subscribe again");
                    if !e.is_retryable() {
                        // e.g. credentials that expired: a new client may do better.
                        self.client = None;
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        Ok(())
    }

    /// Records what the sink made of a batch: acks now, nacks later.
    fn settle(&mut self, delivered: Vec<Delivered>, status: &AckStatus) {
        let failed = !status.is_settled();
        if let AckStatus::Failed(e) = status {
            tracing::debug!(error = %e, messages = delivered.len(), "pulsar source: batch failed; its messages will be redelivered");
        }
        for message in delivered {
            let id = &message.id.id;
            let whole = match message.id.batch_size {
                Some(size) if size > 1 => {
                    let key = (
                        message.topic.clone(),
                        id.ledger_id,
                        id.entry_id,
                        id.partition.unwrap_or(-1),
                    );
                    let state = self.entries.entry(key.clone()).or_default();
                    state.seen += 1;
                    state.failed |= failed;
                    if state.seen < size {
                        continue;
                    }
                    let state = self.entries.remove(&key).unwrap_or_default();
                    state.failed
                }
                _ => failed,
            };
            if whole {
                let due = Instant::now() + self.config.nack_redelivery_delay;
                self.to_nack.push_back((due, message));
            } else {
                self.to_ack.push(message);
            }
        }
    }

    /// Takes every outcome that is known now.
    fn settle_ready(&mut self) {
        while let Some((delivered, status)) = self.tracker.try_next() {
            self.settle(delivered, &status);
        }
    }

    /// Sends the acks, and the nacks that are due.
    async fn send_acks(&mut self) {
        let Some(consumer) = self.consumer.as_mut() else {
            return;
        };
        for message in self.to_ack.drain(..) {
            if let Err(e) = consumer
                .ack_with_id(&message.topic, message.id.id.clone())
                .await
            {
                // The broker redelivers what was not acknowledged.
                tracing::warn!(error = %e, "pulsar source: acknowledgement not sent");
            }
        }
        let now = Instant::now();
        while self.to_nack.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, message)) = self.to_nack.pop_front() else {
                break;
            };
            if let Err(e) = consumer
                .nack_with_id(&message.topic, message.id.id.clone())
                .await
            {
                tracing::warn!(error = %e, "pulsar source: negative acknowledgement not sent");
            }
        }
    }

    fn topic(&mut self, name: &str) -> Arc<str> {
        if let Some(topic) = self.topics.get(name) {
            return topic.clone();
        }
        let topic: Arc<str> = Arc::from(name);
        self.topics.insert(name.to_owned(), topic.clone());
        topic
    }

    /// Decodes the received messages into a batch.
    async fn build(&mut self) -> Batch {
        while let Some(message) = self.pending.front() {
            let topic_name = message.topic.clone();
            let topic = self.topic(&topic_name);
            let Some(message) = self.pending.front() else {
                break;
            };
            let position = Position::MessageId {
                topic: topic.clone(),
                id: message_id(message.message_id()),
            };
            let metadata = message.metadata();
            let key = match message.key_bytes() {
                Ok(key) => key,
                Err(_) => metadata.partition_key.clone().map(String::into_bytes),
            };
            let headers: Vec<Header> = metadata
                .properties
                .iter()
                .map(|p| Header::new(p.key.clone(), Bytes::from(p.value.clone().into_bytes())))
                .collect();
            let millis = metadata
                .event_time
                .filter(|t| *t > 0)
                .unwrap_or(metadata.publish_time);
            let meta = MessageMeta {
                key: key.as_deref(),
                timestamp: Some((millis as i64).saturating_mul(1000)),
                headers: &headers,
                position: Some(&position),
            };
            let payload = &message.payload.data;
            let start = self.building.records.len();
            if let Err(e) = decode_message(
                &mut self.decoder,
                payload,
                &meta,
                &mut self.building.records,
            )
            .await
            {
                self.building.records.truncate(start);
                self.building.bad.push(BadRecord::undecodable(
                    e.in_component(self.name.clone()),
                    Bytes::copy_from_slice(payload),
                    Some(position),
                ));
            }
            self.building.bytes += payload.len() as u64;
            self.building.delivered.push(Delivered {
                topic,
                id: message.message_id.clone(),
            });
            self.pending.pop_front();
        }
        let building = std::mem::take(&mut self.building);
        let ack = self.tracker.track(building.delivered);
        let mut batch = Batch::with_ack(building.records, ack);
        batch.bad = building.bad;
        batch.source_bytes = building.bytes;
        batch
    }
}

/// `ledger:entry:partition[:batch_index]`, as Pulsar's clients print ids.
fn message_id(id: &MessageIdData) -> String {
    let partition = id.partition.unwrap_or(-1);
    match id.batch_index {
        Some(index) => format!("{}:{}:{partition}:{index}", id.ledger_id, id.entry_id),
        None => format!("{}:{}:{partition}", id.ledger_id, id.entry_id),
    }
}

#[async_trait]
impl Source for PulsarSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        loop {
            self.settle_ready();
            self.send_acks().await;
            if !self.pending.is_empty() {
                return Ok(Some(self.build().await));
            }
            self.ensure_consumer().await?;
            let next_nack = self.to_nack.front().map(|(due, _)| *due);
            let waiting = self.tracker.outstanding() > 0;
            let Some(consumer) = self.consumer.as_mut() else {
                continue;
            };
            let tracker = &mut self.tracker;
            tokio::select! {
                biased;
                outcome = tracker.next(), if waiting => {
                    if let Some((delivered, status)) = outcome {
                        self.settle(delivered, &status);
                    }
                }
                _ = tokio::time::sleep_until(next_nack.unwrap_or_else(Instant::now)), if next_nack.is_some() => {}
                message = consumer.next() => match message {
                    Some(Ok(message)) => {
                        self.pending.push_back(message);
                        // Take what else is already here, up to a batch.
                        let max = self.config.receiver_queue_size as usize;
                        while self.pending.len() < max {
                            match consumer.next().now_or_never() {
                                Some(Some(Ok(message))) => self.pending.push_back(message),
                                Some(Some(Err(e))) => {
                                    tracing::warn!(error = %e, "pulsar source: error from the consumer");
                                    break;
                                }
                                _ => break,
                            }
                        }
                    }
                    Some(Err(e)) => {
                        let e = pulsar_error(&self.name, format!("consume {}", self.config.connection.topic), e);
                        tracing::warn!(error = %e, "pulsar source: error from the consumer");
                    }
                    None => {
                        tracing::warn!(topic = %self.config.connection.topic, "pulsar source: the consumer stopped; subscribing again");
                        self.consumer = None;
                    }
                },
            }
        }
    }

    async fn close(&mut self) -> Result<()> {
        // Every emitted batch should be resolved by now; wait a little for stragglers.
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.tracker.outstanding() > 0 {
            match tokio::time::timeout_at(deadline, self.tracker.next()).await {
                Ok(Some((delivered, status))) => self.settle(delivered, &status),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        batches = self.tracker.outstanding(),
                        "pulsar source: closing with unresolved batches; the broker will redeliver them"
                    );
                    break;
                }
            }
        }
        // Failed messages need no nack now: closing the consumer makes the
        // broker redeliver everything not acknowledged.
        self.to_nack.clear();
        self.send_acks().await;
        if let Some(mut consumer) = self.consumer.take() {
            // The consumer sends acks and pings in order: once the ping is
            // answered, the broker has every ack sent before it.
            if let Err(e) = consumer.check_connection().await {
                tracing::warn!(error = %e, "pulsar source: acknowledgements may not have reached the broker");
            }
            if let Err(e) = consumer.close().await {
                tracing::debug!(error = %e, "pulsar source: closing the consumer failed");
            }
        }
        self.client = None;
        Ok(())
    }

    /// Fetches the OAuth2 token if configured, reaches the broker (TLS for
    /// `pulsar+ssl://`), authenticates, and looks up the topic.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        pulsar_common::check_connection(&self.config.connection, &self.name, timeout, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_like_pulsar() {
        let id = MessageIdData {
            ledger_id: 12,
            entry_id: 3,
            partition: Some(-1),
            ..Default::default()
        };
        assert_eq!(message_id(&id), "12:3:-1");
        let batched = MessageIdData {
            batch_index: Some(4),
            partition: Some(2),
            ..id
        };
        assert_eq!(message_id(&batched), "12:3:2:4");
    }
}
