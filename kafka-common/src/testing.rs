//! Test helpers (feature `testing`): librdkafka's mock cluster, a real
//! Kafka protocol implementation inside the process, plus a plain producer
//! and reader to prepare and verify topics.
//!
//! The mock cluster keeps at most 100k messages or 5 MiB per partition and
//! has no SASL and no `CreateTopics`; create topics with
//! [`MockKafka::create_topic`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DefaultProducerContext, Producer, ProducerContext,
};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaClientConfig;

/// An in-process Kafka cluster for tests; stops when dropped.
pub struct MockKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
}

impl MockKafka {
    /// A cluster of one broker.
    pub fn start() -> MockKafka {
        MockKafka::with_brokers(1)
    }

    /// A cluster of `brokers` brokers.
    pub fn with_brokers(brokers: i32) -> MockKafka {
        let cluster = MockCluster::new(brokers).expect("start librdkafka's mock cluster");
        let bootstrap = cluster.bootstrap_servers();
        MockKafka { cluster, bootstrap }
    }

    /// The brokers, `127.0.0.1:port,...`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Client settings for this cluster (plain TCP, no SASL).
    pub fn client_config(&self) -> KafkaClientConfig {
        KafkaClientConfig::new(self.bootstrap.split(',')).without_tls()
    }

    /// The underlying mock cluster, for error injection.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.cluster
            .create_topic(topic, partitions, 1)
            .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
    }

    /// Produces `messages` and waits until every one is acknowledged.
    pub fn produce(&self, topic: &str, messages: impl IntoIterator<Item = TestMessage>) -> u64 {
        produce(&self.bootstrap, topic, messages)
    }

    /// Reads `topic` from the beginning (no group) until `count` messages
    /// arrived or `timeout` passed.
    pub fn read(&self, topic: &str, count: usize, timeout: Duration) -> Vec<OwnedMessage> {
        read(&self.bootstrap, topic, count, timeout)
    }

    /// The offsets `group` committed for `topic` (partition → next offset).
    pub fn committed(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        committed(&self.bootstrap, group, topic)
    }
}

/// A message to produce.
#[derive(Debug, Clone, Default)]
pub struct TestMessage {
    /// Payload (`None` is a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Partition; `None` lets the partitioner choose (by key).
    pub partition: Option<i32>,
    /// Timestamp, milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl TestMessage {
    /// A message with this payload.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        TestMessage {
            payload: Some(payload.into()),
            ..TestMessage::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp (milliseconds).
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: Option<&[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.map(<[u8]>::to_vec)));
        self
    }
}

#[derive(Default)]
struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

#[derive(Clone, Default)]
struct CountingContext(Arc<Counting>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.0.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Produces `messages` to `topic` at `bootstrap` with a plain producer and
/// waits until all are acknowledged; returns how many were. Panics if any
/// failed.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    messages: impl IntoIterator<Item = TestMessage>,
) -> u64 {
    let context = CountingContext::default();
    let producer: BaseProducer<CountingContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(context.clone())
        .expect("create test producer");
    let mut sent = 0_u64;
    for m in messages {
        let mut headers = OwnedHeaders::new();
        for (name, value) in &m.headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(p) = &m.payload {
            record = record.payload(p.as_slice());
        }
        if let Some(k) = &m.key {
            record = record.key(k.as_slice());
        }
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        if let Some(t) = m.timestamp {
            record = record.timestamp(t);
        }
        if !m.headers.is_empty() {
            record = record.headers(headers);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("produce to {topic}: {e}"),
            }
        }
        sent += 1;
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush test producer");
    producer.poll(Duration::ZERO);
    let failed = context.0.failed.load(Ordering::Relaxed);
    let first = context
        .0
        .first_error
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    assert_eq!(failed, 0, "{failed} test messages failed: {first:?}");
    assert_eq!(context.0.delivered.load(Ordering::Relaxed), sent);
    sent
}

/// Reads `topic` at `bootstrap` from the beginning of every partition,
/// without a group, until `count` messages arrived or `timeout` passed.
pub fn read(bootstrap: &str, topic: &str, count: usize, timeout: Duration) -> Vec<OwnedMessage> {
    // librdkafka assigns partitions only with a group id; this one never
    // commits.
    static READERS: AtomicU64 = AtomicU64::new(0);
    let group = format!(
        "test-reader-{}-{}",
        std::process::id(),
        READERS.fetch_add(1, Ordering::Relaxed)
    );
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create test consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("add partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(count);
    while out.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(e)) => panic!("read {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// The offsets `group` committed for `topic` at `bootstrap`.
pub fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create test consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            tpl.add_partition(topic, p.id());
        }
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// The payload of a read message as text (empty for none).
pub fn payload_text(message: &OwnedMessage) -> String {
    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned()
}
