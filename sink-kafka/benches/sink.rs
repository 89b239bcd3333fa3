//! The Kafka sink against a bare rdkafka producer, writing to the same
//! mock broker in one run.
//!
//! `cargo bench -p sink-kafka --bench sink`
//!
//! Each iteration writes 100k records of about 70 bytes and waits until the
//! broker acknowledged every one. Building the records (or, for the bare
//! producer, the payloads) is not timed.
//!
//! - `kafka_sink/bare_producer`: rdkafka's `ThreadedProducer::send` in a
//!   loop with a delivery callback that counts, then a wait for the last
//!   delivery report; the same
//!   producer settings as the sink (`acks=all`, idempotence, 5 ms linger,
//!   1000 messages per batch).
//! - `kafka_sink/text` and `kafka_sink/json`: `KafkaSink::send` of 100
//!   batches of 1000 records (encoding, key, per-batch acks), then `flush`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use connector_core::format::{DataFormat, FormatConfig};
use connector_core::{Batch, Record, Sink, Value};
use criterion::{Criterion, Throughput, criterion_group};
use kafka_common::rdkafka::producer::{
    BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer,
};
use kafka_common::rdkafka::{ClientConfig, ClientContext};
use kafka_common::testing::MockKafka;
use sink_kafka::{KafkaSink, KafkaSinkConfig};

const RECORDS: u64 = 100_000;
const BATCH: usize = 1000;
const TOPIC: &str = "bench-sink";

fn line(n: u64) -> String {
    format!(
        r#"{{"n":{n},"user":"user-{}","amount":{}.25,"ok":true}}"#,
        n % 1000,
        n % 97
    )
}

#[derive(Default)]
struct Counted {
    delivered: AtomicU64,
    failed: AtomicU64,
}

#[derive(Clone, Default)]
struct CountingContext(Arc<Counted>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.0.delivered
        } else {
            &self.0.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn bare_producer(producer: &ThreadedProducer<CountingContext>, counted: &Counted) -> Duration {
    let payloads: Vec<String> = (0..RECORDS).map(line).collect();
    let before = counted.delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    for payload in &payloads {
        let mut record = BaseRecord::<(), str>::to(TOPIC).payload(payload.as_str());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    // Queue full: wait for deliveries.
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    // Wait for the last delivery report (`flush` would add up to 100 ms of
    // polling granularity).
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted.delivered.load(Ordering::Relaxed) + counted.failed.load(Ordering::Relaxed)
        < before + RECORDS
    {
        assert!(Instant::now() < deadline, "deliveries missing");
        std::thread::sleep(Duration::from_micros(100));
    }
    let elapsed = started.elapsed();
    assert_eq!(counted.delivered.load(Ordering::Relaxed) - before, RECORDS);
    assert_eq!(counted.failed.load(Ordering::Relaxed), 0);
    elapsed
}

fn batches(format: DataFormat) -> Vec<Batch> {
    let text = Arc::new(connector_core::Schema::new(vec![
        connector_core::Field::new("raw", connector_core::DataType::String),
    ]));
    let records: Vec<Record> = (0..RECORDS)
        .map(|n| match format {
            DataFormat::TEXT => Record::new(text.clone(), vec![Value::String(line(n))]),
            _ => Record::from_pairs([
                ("n", Value::Int64(n as i64)),
                ("user", Value::from(format!("user-{}", n % 1000))),
                ("amount", Value::Float64((n % 97) as f64 + 0.25)),
                ("ok", Value::Boolean(true)),
            ]),
        })
        .collect();
    records
        .chunks(BATCH)
        .map(|chunk| Batch::new(chunk.to_vec()))
        .collect()
}

async fn our_sink(sink: &mut KafkaSink, format: DataFormat) -> Duration {
    let batches = batches(format);
    let started = Instant::now();
    for batch in batches {
        sink.send(batch).await.unwrap();
    }
    sink.flush().await.unwrap();
    started.elapsed()
}

fn sink(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kafka = MockKafka::start();
    kafka.create_topic(TOPIC, 4);

    let context = CountingContext::default();
    let producer: ThreadedProducer<CountingContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", BATCH.to_string())
        .create_with_context(context.clone())
        .unwrap();
    let mut sinks: Vec<(&str, DataFormat, KafkaSink)> =
        [("text", DataFormat::TEXT), ("json", DataFormat::JSON)]
            .into_iter()
            .map(|(name, format)| {
                let config = KafkaSinkConfig::new(kafka.client_config(), TOPIC)
                    .with_format(FormatConfig::new(format))
                    .with_batch_count(BATCH);
                (name, format, KafkaSink::new(config).unwrap())
            })
            .collect();

    let mut group = c.benchmark_group("kafka_sink");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bare_producer", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| bare_producer(&producer, &context.0))
                .sum()
        })
    });
    for (name, format, sink) in &mut sinks {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += our_sink(sink, *format).await;
                    }
                    total
                })
            })
        });
    }
    group.finish();
    rt.block_on(async {
        for (_, _, sink) in &mut sinks {
            sink.close().await.unwrap();
        }
    });
}

criterion_group!(benches, sink);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("kafka_sink", "text", "bare_producer");
    testkit::bench::report_ratio("kafka_sink", "json", "bare_producer");
}
