//! The Kafka source against a bare rdkafka consumer, reading the same
//! messages from the same mock broker in one run.
//!
//! `cargo bench -p source-kafka --bench source`
//!
//! Each iteration is a new consumer in a new group reading every message
//! of the topic (200k JSON objects of about 70 bytes over 4 partitions)
//! from the beginning. Joining the group (about 3 s on the mock cluster) is
//! not timed: the clock starts when the first message (or batch) arrives
//! and stops at the last.
//!
//! - `kafka_source/bare_consumer`: rdkafka's `BaseConsumer::poll` in a
//!   loop, reading each payload's length; the same fetch settings as the
//!   source.
//! - `kafka_source/text` and `kafka_source/json`: `KafkaSource::next_batch`
//!   (decoding, records with key/time/headers/position, acks and offset
//!   commits) → `DiscardSink`, in a loop, on a two-thread runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use connector_core::format::{DataFormat, FormatConfig};
use connector_core::memory::DiscardSink;
use connector_core::{Sink, Source};
use criterion::{Criterion, Throughput, criterion_group};
use kafka_common::KafkaClientConfig;
use kafka_common::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_common::rdkafka::{ClientConfig, Message};
use kafka_common::testing::{MockKafka, TestMessage};
use source_kafka::{KafkaSource, KafkaSourceConfig, StartOffset};

const PARTITIONS: i32 = 4;
const MESSAGES: u64 = 200_000;

static GROUPS: AtomicU64 = AtomicU64::new(0);

fn new_group() -> String {
    format!("bench-{}", GROUPS.fetch_add(1, Ordering::Relaxed))
}

/// One JSON object per message, about 70 bytes (the mock cluster keeps at
/// most 5 MiB per partition).
fn fill(kafka: &MockKafka, topic: &str) {
    kafka.create_topic(topic, PARTITIONS);
    kafka.produce(
        topic,
        (0..MESSAGES as i64).map(|n| {
            TestMessage::new(format!(
                r#"{{"n":{n},"user":"user-{}","amount":{}.25,"ok":true}}"#,
                n % 1000,
                n % 97
            ))
            .partition((n % PARTITIONS as i64) as i32)
        }),
    );
}

/// A bare consumer: subscribe, wait for the first message (untimed), read
/// the rest.
fn bare_consumer(bootstrap: &str, topic: &str) -> Duration {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", new_group())
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // The source's fetch setting (see `KafkaSource`).
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut read = 0_u64;
    let mut bytes = 0_usize;
    let mut started = None;
    while read < MESSAGES {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap();
            started.get_or_insert_with(Instant::now);
            bytes += message.payload().map_or(0, <[u8]>::len);
            read += 1;
        }
    }
    let elapsed = started.unwrap().elapsed();
    assert!(bytes > 0);
    elapsed
}

/// Our source: a new source per run, its batches to a discarding sink.
async fn our_source(bootstrap: &str, topic: &str, format: DataFormat) -> Duration {
    let config = KafkaSourceConfig::new(
        KafkaClientConfig::new(bootstrap.split(',')).without_tls(),
        topic,
        StartOffset::Earliest,
        FormatConfig::new(format),
    )
    .with_group(new_group());
    let mut source = KafkaSource::new(config).unwrap();
    let mut sink = DiscardSink::new();
    let first = source.next_batch().await.unwrap().unwrap();
    let started = Instant::now();
    let mut read = first.len() as u64;
    sink.send(first).await.unwrap();
    while read < MESSAGES {
        let batch = source.next_batch().await.unwrap().unwrap();
        read += batch.len() as u64;
        sink.send(batch).await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(read, MESSAGES);
    source.close().await.unwrap();
    elapsed
}

fn source(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kafka = MockKafka::start();
    fill(&kafka, "bench");
    let bootstrap = kafka.bootstrap().to_owned();

    let mut group = c.benchmark_group("kafka_source");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bare_consumer", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bare_consumer(&bootstrap, "bench")).sum())
    });
    for (name, format) in [("text", DataFormat::TEXT), ("json", DataFormat::JSON)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += our_source(&bootstrap, "bench", format).await;
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, source);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("kafka_source", "text", "bare_consumer");
    testkit::bench::report_ratio("kafka_source", "json", "bare_consumer");
}
