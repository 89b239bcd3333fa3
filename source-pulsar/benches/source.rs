//! Source throughput against the Python `pulsar-client` on the same broker.
//!
//! `cargo bench -p source-pulsar --bench source`
//!
//! A topic holds 20,000 JSON messages (about 90 bytes, produced by the
//! Python client). Each iteration subscribes anew from the earliest message
//! and reads all of them, acknowledging as it goes: `pulsar_source/ours`
//! through `PulsarSource` (decoded into records by the JSON decoder, every
//! batch delivered, acks sent), `pulsar_source/python_client` with the
//! Python client's `receive` + `acknowledge` (payloads parsed with `json`,
//! timed inside Python, without interpreter start-up). Both read through
//! the same `testkit::pulsar::PulsarProxy`, which adds the checksum that
//! `pulsar-lite` leaves out (the `pulsar` crate requires it; see TESTING.md).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector_core::{Properties, Source};
use criterion::{Criterion, Throughput, criterion_group};
use source_pulsar::PulsarSource;
use testkit::pulsar::{PulsarBroker, PulsarProxy, run_python};

const MESSAGES: usize = 20_000;
const TOPIC: &str = "persistent://public/default/bench-source";

const PYTHON_FILL: &str = r#"
import json, sys, pulsar
url, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = pulsar.Client(url)
producer = client.create_producer(topic, batching_enabled=False, block_if_queue_full=True)
for n in range(count):
    payload = json.dumps({"n": n, "device": f"device_{n % 3}", "number": n * 0.5,
                          "time": "2026-01-01T00:00:00Z"}, separators=(",", ":")).encode()
    producer.send_async(payload, None, partition_key=f"device_{n % 3}")
producer.flush()
client.close()
"#;

const PYTHON_CONSUMER: &str = r#"
import json, sys, time, pulsar
url, topic, subscription, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = pulsar.Client(url)
consumer = client.subscribe(topic, subscription, consumer_type=pulsar.ConsumerType.Shared,
                            initial_position=pulsar.InitialPosition.Earliest, receiver_queue_size=1000)
start = time.perf_counter()
for _ in range(count):
    m = consumer.receive(timeout_millis=30000)
    json.loads(m.data())
    consumer.acknowledge(m)
elapsed = time.perf_counter() - start
print(f"ELAPSED {elapsed}")
client.close()
"#;

fn source(c: &mut Criterion) {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    run_python(PYTHON_FILL, &[&broker.url(), TOPIC, &MESSAGES.to_string()]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let subscriptions = AtomicUsize::new(0);
    let next_subscription = || format!("bench-{}", subscriptions.fetch_add(1, Ordering::Relaxed));

    let mut group = c.benchmark_group("pulsar_source");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let props = Properties::from_pairs([
                    ("topic", TOPIC),
                    ("broker_url", proxy.url()),
                    ("auth_type", ""),
                    ("data_type", "json"),
                    ("subscription_name", next_subscription().as_str()),
                    ("initial_position", "earliest"),
                ]);
                total += rt.block_on(async {
                    let mut source = PulsarSource::from_properties(&props).unwrap();
                    let start = std::time::Instant::now();
                    let mut read = 0;
                    while read < MESSAGES {
                        let batch = source.next_batch().await.unwrap().unwrap();
                        read += batch.records.len();
                        batch.delivered();
                    }
                    let elapsed = start.elapsed();
                    source.close().await.unwrap();
                    elapsed
                });
            }
            total
        })
    });
    group.bench_function("python_client", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = run_python(
                    PYTHON_CONSUMER,
                    &[
                        proxy.url(),
                        TOPIC,
                        &next_subscription(),
                        &MESSAGES.to_string(),
                    ],
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
}

criterion_group!(benches, source);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    testkit::bench::report_ratio("pulsar_source", "ours", "python_client");
}
