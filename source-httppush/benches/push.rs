//! Load benchmark: requests/s of the httppush endpoint against a bare axum
//! handler, both driven by the same keep-alive load generator.
//!
//! `cargo bench -p source-httppush --bench push`
//!
//! - `push_load/bare_axum`: `POST /ingest` to an axum route whose handler
//!   reads the body and answers 200 `ok` (served by `axum::serve`).
//! - `push_load/httppush`: the same requests to an `HttpPushSource`
//!   endpoint (JSON decoding, admission into the bounded queue) running in
//!   a `Pipeline` into a `DiscardSink`, so every record is decoded, batched,
//!   delivered and acknowledged.
//!
//! Each iteration is one request: a 1 KB JSON object posted over one of
//! 64 HTTP/1.1 keep-alive connections, each with one request in flight.
//! Goal: httppush at ≥ 0.8x the bare handler's requests/s. After the
//! criterion runs, the two servers run in alternating rounds (robust to
//! other load on the machine) and the median ratio is printed; then an
//! overload phase pushes into a source whose pipeline
//! never reads, and prints how many requests were refused with 429 and how
//! much the process memory grew (bounded by `max_pending_*`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use connector_core::Pipeline;
use connector_core::memory::DiscardSink;
use criterion::{Criterion, Throughput, criterion_group};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use source_httppush::{HttpPushConfig, HttpPushSource};

const CONNECTIONS: usize = 64;

/// A JSON object of about 1 KB, as an IoT gateway might send.
fn body() -> Bytes {
    let mut object = serde_json::json!({
        "device": "gateway-17/sensor-0042",
        "site": "plant-3",
        "time": "2024-05-01T10:00:00.123Z",
        "temperature": 21.57,
        "humidity": 48.2,
        "pressure": 1013.25,
        "battery": 87,
        "status": "ok",
        "firmware": "4.2.1",
        "tags": ["hall-b", "line-2", "calibrated"],
        "location": {"lat": 48.137154, "lon": 11.576124, "floor": 2},
    });
    object["notes"] = serde_json::Value::String(String::new());
    let so_far = object.to_string().len();
    object["notes"] = serde_json::Value::String("x".repeat(1024 - so_far));
    let text = object.to_string();
    assert_eq!(text.len(), 1024);
    Bytes::from(text)
}

/// `CONNECTIONS` keep-alive HTTP/1.1 connections to `addr`.
async fn connect(addr: SocketAddr) -> Vec<SendRequest<Full<Bytes>>> {
    let mut senders = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(connection);
        senders.push(sender);
    }
    senders
}

/// Sends `total` requests over the connections, retrying 429s; returns the
/// time taken and the connections for the next round.
async fn load(
    senders: Vec<SendRequest<Full<Bytes>>>,
    uri: &'static str,
    body: &Bytes,
    total: u64,
    refused: &Arc<AtomicU64>,
) -> (Duration, Vec<SendRequest<Full<Bytes>>>) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let next = next.clone();
            let body = body.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    loop {
                        sender.ready().await.unwrap();
                        let request = hyper::Request::post(uri)
                            .header("host", "bench")
                            .header("content-type", "application/json")
                            .body(Full::new(body.clone()))
                            .unwrap();
                        let response = sender.send_request(request).await.unwrap();
                        let status = response.status().as_u16();
                        response.into_body().collect().await.unwrap();
                        match status {
                            200 => break,
                            429 => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                            other => panic!("unexpected status {other}"),
                        }
                    }
                }
                sender
            })
        })
        .collect();
    let mut senders = Vec::with_capacity(CONNECTIONS);
    for task in tasks {
        senders.push(task.await.unwrap());
    }
    (start.elapsed(), senders)
}

/// Sends requests over the connections for `duration`; returns how many
/// were answered 200, and the connections.
async fn load_for(
    senders: Vec<SendRequest<Full<Bytes>>>,
    uri: &'static str,
    body: &Bytes,
    duration: Duration,
) -> (u64, Vec<SendRequest<Full<Bytes>>>) {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    sender.ready().await.unwrap();
                    let request = hyper::Request::post(uri)
                        .header("host", "bench")
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    let ok = response.status() == hyper::StatusCode::OK;
                    response.into_body().collect().await.unwrap();
                    done += u64::from(ok);
                }
                (sender, done)
            })
        })
        .collect();
    let mut senders = Vec::with_capacity(CONNECTIONS);
    let mut total = 0;
    for task in tasks {
        let (sender, done) = task.await.unwrap();
        senders.push(sender);
        total += done;
    }
    (total, senders)
}

/// Starts the bare axum server; returns its address.
async fn start_bare() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/ingest",
        post(|body: Bytes| async move {
            std::hint::black_box(body.len());
            "ok"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Starts an httppush source at `/ingest` in a pipeline into a discarding
/// sink; returns its address and the pipeline.
async fn start_httppush() -> (SocketAddr, connector_core::pipeline::PipelineHandle) {
    let mut config = HttpPushConfig::new("/ingest").with_address("127.0.0.1:0".parse().unwrap());
    if std::env::var("PUSH_BENCH_FORMAT").as_deref() == Ok("binary") {
        config = config.with_format(connector_core::format::FormatConfig::new(
            connector_core::format::DataFormat::BINARY,
        ));
    }
    let mut source = HttpPushSource::new(config).unwrap();
    let addr = source.start().await.unwrap();
    (addr, Pipeline::new(source).to(DiscardSink::new()).spawn())
}

/// The two servers in alternating rounds of equal length, so that load
/// from other processes on the machine affects both alike; prints each
/// round's ratio and the median.
fn alternating() {
    const ROUNDS: usize = 7;
    const ROUND: Duration = Duration::from_secs(2);
    let rt = runtime();
    let body = body();
    rt.block_on(async {
        let bare = start_bare().await;
        let (ours, pipeline) = start_httppush().await;
        let mut bare_senders = connect(bare).await;
        let mut our_senders = connect(ours).await;
        // Warm both up.
        (_, bare_senders) = load_for(bare_senders, "/ingest", &body, ROUND / 2).await;
        (_, our_senders) = load_for(our_senders, "/ingest", &body, ROUND / 2).await;
        let mut ratios = Vec::with_capacity(ROUNDS);
        let (mut bare_total, mut our_total) = (0, 0);
        for round in 0..ROUNDS {
            let (b, back) = load_for(bare_senders, "/ingest", &body, ROUND).await;
            bare_senders = back;
            let (o, back) = load_for(our_senders, "/ingest", &body, ROUND).await;
            our_senders = back;
            bare_total += b;
            our_total += o;
            let ratio = o as f64 / b as f64;
            println!(
                "round {round}: bare_axum {:.0} req/s, httppush {:.0} req/s, ratio {ratio:.3}",
                b as f64 / ROUND.as_secs_f64(),
                o as f64 / ROUND.as_secs_f64()
            );
            ratios.push(ratio);
        }
        ratios.sort_by(f64::total_cmp);
        let secs = (ROUNDS as f64) * ROUND.as_secs_f64();
        println!(
            "ALTERNATING push_load: httppush runs at {:.3}x the requests/s of bare_axum (median of {ROUNDS} rounds of {}s each; totals {:.0} vs {:.0} req/s)",
            ratios[ROUNDS / 2],
            ROUND.as_secs(),
            our_total as f64 / secs,
            bare_total as f64 / secs
        );
        drop(our_senders);
        pipeline.stop();
        let report = pipeline.join().await.unwrap();
        assert_eq!(report.metrics.records_out, report.metrics.records_in);
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn push_load(c: &mut Criterion) {
    let rt = runtime();
    let body = body();
    let mut group = c.benchmark_group("push_load");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    // The baseline: a bare axum handler that reads the body.
    let bare_addr = rt.block_on(start_bare());
    let refused = Arc::new(AtomicU64::new(0));
    let mut senders = Some(rt.block_on(connect(bare_addr)));
    group.bench_function("bare_axum", |b| {
        b.iter_custom(|iters| {
            let (elapsed, back) = rt.block_on(load(
                senders.take().unwrap(),
                "/ingest",
                &body,
                iters,
                &refused,
            ));
            senders = Some(back);
            elapsed
        })
    });
    drop(senders);

    // Ours: the endpoint feeding a pipeline into a discarding sink.
    let (push_addr, pipeline) = rt.block_on(start_httppush());
    let refused = Arc::new(AtomicU64::new(0));
    let mut senders = Some(rt.block_on(connect(push_addr)));
    let rss_before = rss();
    group.bench_function("httppush", |b| {
        b.iter_custom(|iters| {
            let (elapsed, back) = rt.block_on(load(
                senders.take().unwrap(),
                "/ingest",
                &body,
                iters,
                &refused,
            ));
            senders = Some(back);
            elapsed
        })
    });
    group.finish();
    drop(senders);
    let report = rt.block_on(async {
        pipeline.stop();
        pipeline.join().await.unwrap()
    });
    println!(
        "httppush: {} records delivered in {} batches, {} requests refused with 429, RSS {:.1} MB -> {:.1} MB",
        report.metrics.records_out,
        report.metrics.batches_delivered,
        refused.load(Ordering::Relaxed),
        rss_before as f64 / 1e6,
        rss() as f64 / 1e6
    );
}

/// Pushes for a few seconds into a source whose pipeline never reads: the
/// endpoint must refuse with 429 once `max_pending_*` is reached instead of
/// buffering.
fn overload() {
    let rt = runtime();
    let body = body();
    rt.block_on(async {
        let config = HttpPushConfig::new("/stalled").with_address("127.0.0.1:0".parse().unwrap());
        let (max_records, max_bytes) = (config.max_pending_records, config.max_pending_bytes);
        let mut source = HttpPushSource::new(config).unwrap();
        let addr = source.start().await.unwrap();
        let mut senders = connect(addr).await;
        let before = rss();
        // At least 3s, and on slow (debug, test-mode) builds until the limit
        // was actually reached and refusals were seen.
        let started = Instant::now();
        let min_run = Duration::from_secs(3);
        let (mut accepted, mut refused) = (0u64, 0u64);
        let mut peak = before;
        while started.elapsed() < min_run || (refused == 0 && started.elapsed() < Duration::from_secs(120)) {
            let round: Vec<_> = senders
                .drain(..)
                .map(|mut sender| {
                    let body = body.clone();
                    tokio::spawn(async move {
                        let mut statuses = (0u64, 0u64);
                        for _ in 0..50 {
                            sender.ready().await.unwrap();
                            let request = hyper::Request::post("/stalled")
                                .header("host", "bench")
                                .body(Full::new(body.clone()))
                                .unwrap();
                            let response = sender.send_request(request).await.unwrap();
                            match response.status().as_u16() {
                                200 => statuses.0 += 1,
                                429 => statuses.1 += 1,
                                other => panic!("unexpected status {other}"),
                            }
                            response.into_body().collect().await.unwrap();
                        }
                        (sender, statuses)
                    })
                })
                .collect();
            for task in round {
                let (sender, (ok, busy)) = task.await.unwrap();
                accepted += ok;
                refused += busy;
                senders.push(sender);
            }
            peak = peak.max(rss());
        }
        let stats = source.stats();
        println!(
            "OVERLOAD httppush (pipeline never reads, max_pending_records={max_records}, max_pending_bytes={max_bytes}): \
             {accepted} requests accepted, {refused} refused with 429 in {:.1}s; pending {} records; \
             RSS {:.1} MB before, peak {:.1} MB (+{:.1} MB)",
            started.elapsed().as_secs_f64(),
            stats.pending_records,
            before as f64 / 1e6,
            peak as f64 / 1e6,
            (peak.saturating_sub(before)) as f64 / 1e6
        );
        assert_eq!(accepted, max_records as u64, "exactly the pending limit is accepted");
    });
}

criterion_group!(benches, push_load);

/// `PUSH_BENCH_ONLY=bare_axum|httppush PUSH_BENCH_REQUESTS=N`: sends N
/// requests to one server and exits, for instruction counts that do not
/// depend on other load (`valgrind --tool=callgrind`). With
/// `PUSH_BENCH_FORMAT=binary` the endpoint takes bodies as bytes, which
/// separates the cost of JSON decoding from the rest.
fn only(which: &str, requests: u64) {
    let rt = runtime();
    let body = body();
    rt.block_on(async {
        let (addr, pipeline) = match which {
            "bare_axum" => (start_bare().await, None),
            "httppush" => {
                let (addr, pipeline) = start_httppush().await;
                (addr, Some(pipeline))
            }
            other => panic!("PUSH_BENCH_ONLY: unknown server {other}"),
        };
        let refused = Arc::new(AtomicU64::new(0));
        let senders = connect(addr).await;
        let (elapsed, senders) = load(senders, "/ingest", &body, requests, &refused).await;
        drop(senders);
        println!("{which}: {requests} requests in {elapsed:?}");
        if let Some(pipeline) = pipeline {
            pipeline.stop();
            let report = pipeline.join().await.unwrap();
            assert_eq!(report.metrics.records_out, requests);
        }
    });
}

fn main() {
    if let Ok(which) = std::env::var("PUSH_BENCH_ONLY") {
        let requests = std::env::var("PUSH_BENCH_REQUESTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        only(&which, requests);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("push_load", "httppush", "bare_axum");
    alternating();
    overload();
}
