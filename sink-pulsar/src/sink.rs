//! The sink itself: encode, produce, resolve acks from the broker's receipts.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use connector_core::check::CheckReport;
use connector_core::format::{Encoder, encode_record};
use connector_core::sink::BatchLimits;
use connector_core::{Ack, Batch, Error, Properties, Record, Result, Sink};
use pulsar_common::pulsar::producer::{Message, ProducerOptions};
use pulsar_common::pulsar::{Producer, TokioExecutor};
use pulsar_common::{PulsarClient, pulsar_error};
use tokio::task::JoinSet;

use crate::config::{SPEC, SinkConfig};

/// Most payload bytes per Pulsar batch (as Pulsar's Java client).
const BATCH_MAX_BYTES: usize = 128 * 1024;

/// Writes records to a Pulsar topic.
///
/// Each record becomes one message: the payload from the encoder, the
/// record key as partition key (Base64 with the key-is-Base64 flag when it
/// is not UTF-8), headers as message properties, the event time as
/// `event_time`. Messages of a batch are grouped into Pulsar batches of up
/// to `batch_count`. A batch's ack resolves when the broker has sent the
/// receipt of every message in it (delivered), when one failed within
/// `send_timeout` (failed: the source delivers it again), or, for records
/// the encoder refused, as rejected; receipts are awaited in the background
/// so batches overlap.
pub struct PulsarSink {
    config: SinkConfig,
    name: String,
    encoder: Box<dyn Encoder>,
    client: Option<PulsarClient>,
    producer: Option<Producer<TokioExecutor>>,
    receipts: JoinSet<()>,
}

impl std::fmt::Debug for PulsarSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarSink")
            .field("config", &self.config)
            .field("connected", &self.producer.is_some())
            .field("batches_in_flight", &self.receipts.len())
            .finish()
    }
}

impl PulsarSink {
    /// A sink from a typed config; connects on the first batch (or check).
    pub fn new(config: SinkConfig) -> Result<Self> {
        let encoder = config.format.encoder()?;
        Ok(PulsarSink {
            name: SPEC.component(),
            config,
            encoder,
            client: None,
            producer: None,
            receipts: JoinSet::new(),
        })
    }

    /// A sink from the `pulsar` sink property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        SinkConfig::from_properties(props).and_then(PulsarSink::new)
    }

    /// The configuration in use.
    pub fn config(&self) -> &SinkConfig {
        &self.config
    }

    async fn producer(&mut self) -> Result<&mut Producer<TokioExecutor>> {
        if self.producer.is_none() {
            let connection = &self.config.connection;
            if self.client.is_none() {
                self.client = Some(
                    pulsar_common::connect(connection, &self.name, self.config.send_timeout)
                        .await?,
                );
            }
            let client = self.client.as_ref().expect("connected above");
            let batching = self.config.batch_count > 1;
            let options = ProducerOptions {
                batch_size: batching.then_some(self.config.batch_count as u32),
                batch_byte_size: batching.then_some(BATCH_MAX_BYTES),
                // Wait for room rather than fail when the broker is slow.
                block_queue_if_full: true,
                ..ProducerOptions::default()
            };
            let producer = client
                .producer()
                .with_topic(&connection.topic)
                .with_options(options)
                .build()
                .await
                .map_err(|e| {
                    pulsar_error(
                        &self.name,
                        format!("create a producer on {}", connection.topic),
                        e,
                    )
                })?;
            tracing::info!(topic = %connection.topic, "pulsar sink: producer ready");
            self.producer = Some(producer);
        }
        Ok(self.producer.as_mut().expect("created above"))
    }

    /// Queues the encoded messages; returns their receipts.
    async fn produce(
        &mut self,
        messages: Vec<Message>,
    ) -> Result<Vec<pulsar_common::pulsar::producer::SendFuture>> {
        let topic = self.config.connection.topic.clone();
        let name = self.name.clone();
        let batching = self.config.batch_count > 1;
        let producer = self.producer().await?;
        let mut receipts = Vec::with_capacity(messages.len());
        for message in messages {
            let receipt = producer
                .send_non_blocking(message)
                .await
                .map_err(|e| pulsar_error(&name, format!("send to {topic}"), e))?;
            receipts.push(receipt);
        }
        if batching {
            // Send the last, partial Pulsar batch now rather than on a timer.
            producer
                .send_batch()
                .await
                .map_err(|e| pulsar_error(&name, format!("send to {topic}"), e))?;
        }
        Ok(receipts)
    }
}

/// One record as a Pulsar message.
fn message(record: &Record, payload: Vec<u8>) -> Message {
    let (partition_key, partition_key_b64_encoded) = match &record.key {
        None => (None, None),
        Some(key) => match std::str::from_utf8(key) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (
                Some(base64::engine::general_purpose::STANDARD.encode(key)),
                Some(true),
            ),
        },
    };
    let properties: HashMap<String, String> = record
        .headers
        .iter()
        .map(|h| {
            let value = h
                .value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            (h.name.clone(), value)
        })
        .collect();
    Message {
        payload,
        properties,
        partition_key,
        partition_key_b64_encoded,
        event_time: record
            .timestamp
            .filter(|t| *t > 0)
            .map(|micros| (micros / 1000) as u64),
        ..Message::default()
    }
}

#[async_trait]
impl Sink for PulsarSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: self.config.batch_count.max(1024),
            max_wait: Duration::ZERO,
        }
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        // Reap what finished, so the set does not grow.
        while self.receipts.try_join_next().is_some() {}
        let (records, ack) = batch.into_parts();
        if records.is_empty() {
            ack.delivered();
            return Ok(());
        }
        let total = records.len();
        let mut messages = Vec::with_capacity(total);
        let mut refused: Option<Error> = None;
        let mut refused_count = 0;
        for (index, record) in records.iter().enumerate() {
            let mut payload = Vec::new();
            match encode_record(&mut self.encoder, record, &mut payload).await {
                Ok(()) => messages.push(message(record, payload)),
                Err(e) if e.is_bad_data() => {
                    refused_count += 1;
                    if refused.is_none() {
                        let at = record.position.as_ref().map_or_else(
                            || format!("record {index} of the batch"),
                            |p| p.to_string(),
                        );
                        refused = Some(e.in_component(self.name.clone()).at(at));
                    }
                }
                Err(e) if e.is_retryable() => {
                    // e.g. the schema registry is unreachable: deliver again later.
                    let e = e.in_component(self.name.clone());
                    tracing::warn!(error = %e, "pulsar sink: cannot encode the batch now");
                    ack.failed(e);
                    return Ok(());
                }
                Err(e) => {
                    ack.failed(e.duplicate());
                    return Err(e.in_component(self.name.clone()));
                }
            }
        }
        if let Some(e) = refused {
            // The records that encoded are still written; the batch counts
            // as rejected so the bad-data policy sees the refused ones.
            ack.clone().rejected(Error::rejected(
                self.name.clone(),
                format!("{refused_count} of {total} records"),
                e.to_string(),
            ));
        }
        let receipts = match self.produce(messages).await {
            Ok(receipts) => receipts,
            Err(e) if e.is_retryable() => {
                // The source delivers the batch again; start afresh next time.
                tracing::warn!(error = %e, "pulsar sink: batch not sent");
                self.producer = None;
                ack.failed(e);
                return Ok(());
            }
            Err(e) => {
                ack.failed(e.duplicate());
                return Err(e);
            }
        };
        let name = self.name.clone();
        let topic = self.config.connection.topic.clone();
        self.receipts
            .spawn(wait_for_receipts(receipts, ack, name, topic));
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        while self.receipts.join_next().await.is_some() {}
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.flush().await?;
        if let Some(mut producer) = self.producer.take()
            && let Err(e) = producer.close().await
        {
            tracing::debug!(error = %e, "pulsar sink: closing the producer failed");
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

async fn wait_for_receipts(
    receipts: Vec<pulsar_common::pulsar::producer::SendFuture>,
    ack: Ack,
    name: String,
    topic: String,
) {
    let count = receipts.len();
    let mut failure = None;
    for receipt in receipts {
        if let Err(e) = receipt.await
            && failure.is_none()
        {
            failure = Some(e);
        }
    }
    match failure {
        None => ack.delivered(),
        Some(e) => {
            let error = pulsar_error(&name, format!("send {count} messages to {topic}"), e);
            tracing::warn!(error = %error, "pulsar sink: batch not acknowledged by the broker");
            ack.failed(error);
        }
    }
}
