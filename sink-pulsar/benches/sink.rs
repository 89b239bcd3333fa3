//! Sink throughput against the Python `pulsar-client` on the same broker.
//!
//! `cargo bench -p sink-pulsar --bench sink`
//!
//! Both write the same 20,000 JSON messages (about 90 bytes, keyed) to a
//! `pulsar-lite` broker on loopback and wait until the broker acknowledged
//! every one: `pulsar_sink/ours` through `PulsarSink` (records encoded by
//! the JSON encoder, Pulsar batches of 1000), `pulsar_sink/python_client`
//! with the Python client's asynchronous sends and its default batching
//! (the Python side times itself, without interpreter start-up).

use std::time::Duration;

use connector_core::{Ack, Batch, Properties, Record, Sink, Value};
use criterion::{Criterion, Throughput, criterion_group};
use sink_pulsar::PulsarSink;
use testkit::pulsar::{PulsarBroker, run_python};

const MESSAGES: usize = 20_000;
const BATCH: usize = 1000;

const PYTHON_PRODUCER: &str = r#"
import json, sys, time, pulsar
url, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = pulsar.Client(url)
producer = client.create_producer(topic, batching_enabled=True, batching_max_messages=1000,
                                  batching_max_publish_delay_ms=1, block_if_queue_full=True)
payloads = [json.dumps({"n": n, "device": f"device_{n % 3}", "number": n * 0.5,
                        "time": "2026-01-01T00:00:00Z"}, separators=(",", ":")).encode()
            for n in range(count)]
producer.send(b"warm-up")
start = time.perf_counter()
for n, payload in enumerate(payloads):
    producer.send_async(payload, None, partition_key=f"device_{n % 3}")
producer.flush()
elapsed = time.perf_counter() - start
print(f"ELAPSED {elapsed}")
client.close()
"#;

fn records() -> Vec<Record> {
    (0..MESSAGES)
        .map(|n| {
            Record::from_pairs([
                ("n", Value::Int64(n as i64)),
                ("device", Value::from(format!("device_{}", n % 3))),
                ("number", Value::Float64(n as f64 * 0.5)),
                ("time", Value::from("2026-01-01T00:00:00Z")),
            ])
            .with_key(format!("device_{}", n % 3))
        })
        .collect()
}

fn sink(c: &mut Criterion) {
    let broker = PulsarBroker::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let props = Properties::from_pairs([
        ("topic", "bench-sink-ours"),
        ("broker_url", broker.url().as_str()),
        ("auth_type", ""),
    ]);
    let mut sink = rt.block_on(async {
        let mut sink = PulsarSink::from_properties(&props).unwrap();
        // Connect before measuring.
        let (ack, done) = Ack::channel();
        sink.send(Batch::with_ack(records()[..1].to_vec(), ack))
            .await
            .unwrap();
        assert!(done.await.is_delivered());
        sink
    });
    let all = records();

    let mut group = c.benchmark_group("pulsar_sink");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("ours", |b| {
        b.iter_batched(
            || all.clone(),
            |records| {
                rt.block_on(async {
                    let mut outcomes = Vec::new();
                    let mut records = records.into_iter();
                    loop {
                        let chunk: Vec<Record> = records.by_ref().take(BATCH).collect();
                        if chunk.is_empty() {
                            break;
                        }
                        let (ack, done) = Ack::channel();
                        sink.send(Batch::with_ack(chunk, ack)).await.unwrap();
                        outcomes.push(done);
                    }
                    for done in outcomes {
                        assert!(done.await.is_delivered());
                    }
                })
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("python_client", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = run_python(
                    PYTHON_PRODUCER,
                    &[&broker.url(), "bench-sink-python", &MESSAGES.to_string()],
                );
                let secs: f64 = out
                    .lines()
                    .find_map(|l| l.strip_prefix("ELAPSED "))
                    .expect("python timing")
                    .trim()
                    .parse()
                    .unwrap();
                total += Duration::from_secs_f64(secs);
            }
            total
        })
    });
    group.finish();
    rt.block_on(sink.close()).unwrap();
}

criterion_group!(benches, sink);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    testkit::bench::report_ratio("pulsar_sink", "ours", "python_client");
}
