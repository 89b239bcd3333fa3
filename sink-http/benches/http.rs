//! The http sink against a bare reqwest loop, same server, bodies and
//! concurrency, measured in one run.
//!
//! `cargo bench -p sink-http --bench http`
//!
//! For `paralism` 1, 8 and 32, group `http_p<N>` sends 1000 records as
//! JSON bodies (one POST each) to an axum server on 127.0.0.1 (its own
//! thread); the client side runs on one current-thread runtime:
//! - `bare_reqwest`: serialize each record and POST it with one reqwest
//!   client, N requests at a time (`buffer_unordered`), checking for 2xx.
//! - `http_sink`: the same records through `HttpSink::send` in batches of
//!   1024 (as the pipeline hands them over) and `flush`, with acks.
//!
//! Goal: the sink at ≥ 0.9x the bare loop's speed for every N.
//!
//! Each pair is measured twice: `http_p<N>` in wall-clock time, and
//! `http_cpu_p<N>` in CPU time of the client thread (from
//! `/proc/thread-self/schedstat`), which other processes on a busy machine
//! do not disturb. The server's work is the same for both contenders and
//! is left out of the CPU figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connector_core::{Ack, Batch, Properties, Record, Sink, Value};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput};
use futures::StreamExt;
use sink_http::HttpSink;

const RECORDS: usize = 1000;
const PARALLELISM: [usize; 3] = [1, 8, 32];

fn records() -> Vec<Record> {
    (0..RECORDS)
        .map(|n| {
            Record::from_pairs([
                ("device", Value::from(format!("device_{}", n % 3))),
                ("number", Value::Float64(n as f64 * 0.37)),
                ("time", Value::Timestamp(1_700_000_000_000_000 + n as i64)),
            ])
        })
        .collect()
}

/// An axum server on its own thread and runtime, counting the requests.
fn start_server() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().route(
                "/ingest",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::Relaxed);
                        std::hint::black_box(body.len());
                        axum::http::StatusCode::OK
                    }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}/ingest"), count)
}

/// CPU time of the calling thread, in nanoseconds, as the scheduler
/// accounts it (`/proc/thread-self/schedstat`, first field).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux) is readable")
}

/// Criterion measurement: CPU time of the benchmark thread.
struct ThreadCpu;

struct NanosFormatter;

impl ValueFormatter for NanosFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e-3, "µs")
        } else if typical < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        values.iter_mut().for_each(|v| *v = per / (*v * 1e-9) / 1e3);
        "Kelem/cpu-s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosFormatter
    }
}

fn http<M: Measurement>(c: &mut Criterion<M>, prefix: &str, url: &str) {
    // One thread for the client side (the server has its own), so both
    // contenders get the same single core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let input = records();
    for parallelism in PARALLELISM {
        let mut group = c.benchmark_group(format!("{prefix}_p{parallelism}"));
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.sample_size(30);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(8));

        let client = reqwest::Client::new();
        group.bench_function("bare_reqwest", |b| {
            b.iter_batched(
                || input.clone(),
                |records| {
                    rt.block_on(async {
                        let ok = futures::stream::iter(records)
                            .map(|record| {
                                let body = serde_json::to_vec(&record).unwrap();
                                client
                                    .post(url)
                                    .header("content-type", "application/json")
                                    .body(body)
                                    .send()
                            })
                            .buffer_unordered(parallelism)
                            .filter(|r| {
                                std::future::ready(
                                    r.as_ref().is_ok_and(|r| r.status().is_success()),
                                )
                            })
                            .count()
                            .await;
                        assert_eq!(ok, RECORDS);
                    })
                },
                BatchSize::LargeInput,
            )
        });

        let mut sink = rt.block_on(async {
            HttpSink::from_properties(&Properties::from_pairs([
                ("url", url),
                ("paralism", parallelism.to_string().as_str()),
            ]))
            .unwrap()
        });
        group.bench_function("http_sink", |b| {
            b.iter_batched(
                || input.clone(),
                |mut records| {
                    rt.block_on(async {
                        let mut outcomes = Vec::new();
                        while !records.is_empty() {
                            let rest = records.split_off(records.len().min(1024));
                            let (ack, outcome) = Ack::channel();
                            sink.send(Batch::with_ack(std::mem::replace(&mut records, rest), ack))
                                .await
                                .unwrap();
                            outcomes.push(outcome);
                        }
                        sink.flush().await.unwrap();
                        for outcome in outcomes {
                            assert!(outcome.await.is_delivered());
                        }
                    })
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

fn main() {
    // reqwest is built without a default crypto provider; the bare loop
    // uses ring like the sink does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (url, served) = start_server();
    let mut wall = Criterion::default().configure_from_args();
    http(&mut wall, "http", &url);
    let mut cpu = Criterion::default()
        .with_measurement(ThreadCpu)
        .configure_from_args();
    http(&mut cpu, "http_cpu", &url);
    cpu.final_summary();
    assert!(served.load(Ordering::Relaxed) > 0);
    for prefix in ["http", "http_cpu"] {
        for parallelism in PARALLELISM {
            testkit::bench::report_ratio(
                &format!("{prefix}_p{parallelism}"),
                "http_sink",
                "bare_reqwest",
            );
        }
    }
}
