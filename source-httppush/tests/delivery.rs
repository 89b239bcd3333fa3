//! Delivery over real sockets: 429 with Retry-After when the pipeline is
//! behind, answers after delivery (200/500/504), redelivery of batches the
//! sink failed, no record lost between a 200 and the sink under concurrent
//! clients and a slow sink, and retained records.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{client, config, post, run, run_with, send};
use connector_core::memory::Outcome;
use connector_core::{BatchLimits, Error, Source, Value};
use reqwest::Method;
use source_httppush::{HttpPushConfig, HttpPushSource, HttpPushTable};

fn one(n: i64) -> String {
    format!(r#"{{"id": {n}}}"#)
}

#[tokio::test]
async fn a_full_pipeline_gets_429_with_retry_after_until_it_catches_up() {
    let mut source = HttpPushSource::new(
        config("/busy")
            .with_max_pending(2, 1 << 20)
            .with_retry_after(Duration::from_millis(2500)),
    )
    .unwrap();
    source.start().await.unwrap();
    let url = source.url().unwrap();
    let http = client();
    assert_eq!(post(&http, &url, one(1)).await.0, 200);
    assert_eq!(post(&http, &url, one(2)).await.0, 200);
    let (status, retry_after, body) = send(&http, Method::POST, &url, one(3)).await;
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("3"), "2.5s rounds up");
    assert_eq!(body, "the pipeline behind `/busy` is full; retry after 3s");

    // Handed to the pipeline but not delivered yet: still pending.
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(post(&http, &url, one(3)).await.0, 429);
    assert_eq!(source.stats().pending_records, 2);
    batch.delivered();
    assert_eq!(source.stats().pending_records, 0);
    assert_eq!(post(&http, &url, one(3)).await.0, 200);

    let stats = source.stats();
    assert_eq!((stats.busy, stats.accepted_records), (2, 3));
}

#[tokio::test]
async fn a_request_larger_than_the_limit_is_admitted_when_nothing_is_pending() {
    let mut source = HttpPushSource::new(config("/big").with_max_pending(2, 16)).unwrap();
    source.start().await.unwrap();
    let url = source.url().unwrap();
    let http = client();
    let array = format!("[{}]", (0..5).map(one).collect::<Vec<_>>().join(","));
    assert_eq!(
        post(&http, &url, array.clone()).await.0,
        200,
        "idle: admitted"
    );
    assert_eq!(
        post(&http, &url, one(9)).await.0,
        429,
        "over both limits now"
    );
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.len(), 5);
    batch.delivered();
    assert_eq!(post(&http, &url, array).await.0, 200);
}

#[tokio::test]
async fn a_shared_endpoint_admits_a_request_into_all_sources_or_none() {
    let addr = common::local();
    let shared = || {
        HttpPushConfig::new("/both")
            .with_address(addr)
            .with_shared(true)
    };
    let reader = run(shared()).await;
    // This one is never read: it fills up after one record.
    let mut stalled = HttpPushSource::new(shared().with_max_pending(1, 1 << 20)).unwrap();
    stalled.start().await.unwrap();
    let http = client();
    assert_eq!(post(&http, &reader.url, one(1)).await.0, 200);
    assert_eq!(post(&http, &reader.url, one(2)).await.0, 429);
    reader.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reader.collected.len(),
        1,
        "the refused record reached no source"
    );

    let batch = stalled.next_batch().await.unwrap().unwrap();
    batch.delivered();
    assert_eq!(post(&http, &reader.url, one(2)).await.0, 200);
    let ids: Vec<Value> = reader
        .wait_for(2)
        .await
        .iter()
        .map(|r| r.values[0].clone())
        .collect();
    assert_eq!(ids, [Value::Int64(1), Value::Int64(2)]);
    reader.stop().await;
}

#[tokio::test]
async fn waiting_for_delivery_answers_200_after_the_sink_delivered() {
    let running = run_with(
        config("/ack").with_wait_for_delivery(common::WAIT),
        |sink| sink.with_delay(Duration::from_millis(50)),
    )
    .await;
    let http = client();
    let (status, body) = post(&http, &running.url, r#"[{"id": 1}, {"id": 2}]"#).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    // The answer came after delivery: the records are already there.
    assert_eq!(running.collected.len(), 2);
    let stats = running.counters.snapshot();
    assert_eq!((stats.delivered_requests, stats.pending_records), (1, 0));
    running.stop().await;
}

#[tokio::test]
async fn waiting_for_delivery_answers_500_when_the_sink_fails() {
    let running = run_with(
        config("/ack").with_wait_for_delivery(common::WAIT),
        |sink| {
            sink.with_outcome(|_| {
                Outcome::Fail(Error::transient("collect sink", "write", "disk full"))
            })
        },
    )
    .await;
    let http = client();
    let (status, body) = post(&http, &running.url, one(1)).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "records not delivered: collect sink: write: disk full")
    );
    // The client owns the retry: nothing stays behind to be redelivered.
    let stats = running.counters.snapshot();
    assert_eq!(
        (
            stats.failed_requests,
            stats.pending_records,
            stats.redelivered_records
        ),
        (1, 0, 0)
    );
    assert!(running.collected.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn waiting_for_delivery_answers_504_when_no_outcome_comes_in_time() {
    let running = run_with(
        config("/slow").with_wait_for_delivery(Duration::from_millis(300)),
        // Holds acks until a flush, which only comes at shutdown here.
        |sink| sink.with_outcome(|_| Outcome::Hold),
    )
    .await;
    let (status, body) = post(&client(), &running.url, one(1)).await;
    assert_eq!(
        (status, body.as_str()),
        (
            504,
            "delivery not confirmed within 300ms; the records may still be delivered"
        )
    );
    assert_eq!(running.counters.snapshot().timed_out_requests, 1);
    running.stop().await;
}

#[tokio::test]
async fn batches_the_sink_failed_are_delivered_again() {
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = failures.clone();
    let running = run_with(config("/retry"), move |sink| {
        sink.with_outcome(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                Outcome::Fail(Error::transient("collect sink", "write", "try again"))
            } else {
                Outcome::Deliver
            }
        })
    })
    .await;
    let http = client();
    for n in 0..3 {
        assert_eq!(post(&http, &running.url, one(n)).await, (200, "ok".into()));
    }
    let records = running.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ids: Vec<i64> = running
        .collected
        .records()
        .iter()
        .map(|r| r.get("id").and_then(Value::as_i64).unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [0, 1, 2],
        "each record delivered exactly once: {records:?}"
    );
    let stats = running.counters.snapshot();
    assert!(stats.redelivered_records >= 1, "{stats:?}");
    assert_eq!(stats.pending_records, 0);
    running.stop().await;
}

/// Pushes ids `0..n` from `clients` concurrent clients (one record per
/// request), retrying 429 (and 500, 503, 504) until each id was answered
/// 200. Returns how many 429s the clients saw. The clients retry sooner than
/// `Retry-After` says, to keep the test short.
async fn push_all(url: &str, n: i64, clients: i64) -> usize {
    let busy = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let url = url.to_owned();
            let busy = busy.clone();
            tokio::spawn(async move {
                let http = client();
                for id in (c..n).step_by(clients as usize) {
                    loop {
                        let (status, _, body) = send(&http, Method::POST, &url, one(id)).await;
                        match status {
                            200 => break,
                            429 => {
                                busy.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            500 | 503 | 504 => tokio::time::sleep(Duration::from_millis(5)).await,
                            other => panic!("unexpected {other}: {body}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    busy.load(Ordering::Relaxed)
}

fn ids_of(records: &[connector_core::Record]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r.get("id").and_then(Value::as_i64).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_is_lost_between_a_200_and_a_slow_sink() {
    const N: i64 = 2000;
    // The sink takes 20ms per batch of at most 16 records (800 records/s),
    // slower than the clients push.
    let running = run_with(
        config("/load")
            .with_max_pending(64, 1 << 20)
            .with_retry_after(Duration::from_millis(10)),
        |sink| {
            sink.with_delay(Duration::from_millis(20))
                .with_batch_limits(BatchLimits {
                    max_records: 16,
                    max_wait: Duration::ZERO,
                })
        },
    )
    .await;
    let busy = push_all(&running.url, N, 16).await;
    let records = running.wait_for(N as usize).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let records = if running.collected.len() > records.len() {
        running.collected.records()
    } else {
        records
    };
    let ids = ids_of(&records);
    assert_eq!(ids.len(), N as usize, "exactly N delivered, no duplicates");
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        (0..N).collect()
    );
    assert!(busy > 0, "the slow sink must have pushed back with 429");
    let stats = running.counters.snapshot();
    assert_eq!(stats.busy as usize, busy);
    assert_eq!(stats.accepted_records, N as u64);
    assert_eq!(stats.pending_records, 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_for_delivery_every_200_is_already_delivered_even_when_batches_fail() {
    const N: i64 = 1000;
    let batches = Arc::new(AtomicUsize::new(0));
    let counter = batches.clone();
    let running = run_with(
        config("/acked")
            .with_wait_for_delivery(common::WAIT)
            .with_max_pending(32, 1 << 20),
        move |sink| {
            sink.with_delay(Duration::from_millis(2))
                .with_outcome(move |_| {
                    // Every fifth batch fails: its clients get 500 and resend.
                    if counter.fetch_add(1, Ordering::Relaxed) % 5 == 4 {
                        Outcome::Fail(Error::transient("collect sink", "write", "flaky"))
                    } else {
                        Outcome::Deliver
                    }
                })
        },
    )
    .await;
    push_all(&running.url, N, 16).await;
    // Every request was answered 200 only after delivery, so everything is
    // there the moment the clients are done.
    let ids = ids_of(&running.collected.records());
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        (0..N).collect()
    );
    assert_eq!(
        ids.len(),
        N as usize,
        "failed batches were not kept, so no duplicates"
    );
    let stats = running.counters.snapshot();
    assert!(stats.failed_requests > 0, "{stats:?}");
    assert_eq!(stats.delivered_requests, N as u64);
    running.stop().await;
}

#[tokio::test]
async fn the_last_records_are_retained_for_lookup() {
    let running = run(config("/devices").with_retain_size(3)).await;
    let http = client();
    for (id, room) in [
        (1, "lab"),
        (2, "hall"),
        (3, "lab"),
        (4, "office"),
        (5, "lab"),
    ] {
        let body = format!(r#"{{"id": {id}, "room": "{room}"}}"#);
        assert_eq!(post(&http, &running.url, body).await.0, 200);
    }
    running.wait_for(5).await;
    let retained = running.retained.clone().expect("retain_size is set");
    assert_eq!(retained.capacity(), 3);
    assert_eq!(ids_of(&retained.snapshot()), [3, 4, 5]);
    assert_eq!(
        ids_of(&retained.lookup("room", &Value::from("lab"))),
        [5, 3]
    );
    assert_eq!(ids_of(&[retained.latest().unwrap()]), [5]);
    assert!(
        retained.lookup("room", &Value::from("hall")).is_empty(),
        "dropped as the oldest"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_table_retains_without_a_pipeline_and_never_pushes_back() {
    let addr = common::local();
    let table = HttpPushTable::start(
        HttpPushConfig::new("/prices")
            .with_address(addr)
            .with_shared(true)
            .with_retain_size(100)
            .with_max_pending(1, 1),
    )
    .await
    .unwrap();
    let http = client();
    for n in 0..250 {
        let body = format!(r#"{{"id": {n}, "price": {}}}"#, n * 10);
        assert_eq!(post(&http, &table.url(), body).await.0, 200);
    }
    assert_eq!(table.records().len(), 100);
    let found = table.records().lookup("id", &Value::Int64(200));
    assert_eq!(found[0].get("price"), Some(&Value::Int64(2000)));

    // A stream source can share the endpoint with the table.
    let stream = run(HttpPushConfig::new("/prices")
        .with_address(addr)
        .with_shared(true))
    .await;
    assert_eq!(
        post(&http, &stream.url, r#"{"id": 999, "price": 1}"#)
            .await
            .0,
        200
    );
    assert_eq!(ids_of(&stream.wait_for(1).await), [999]);
    assert_eq!(ids_of(&[table.records().latest().unwrap()]), [999]);
    assert_eq!(table.stats().accepted_requests, 251);
    stream.stop().await;

    let err = HttpPushTable::start(config("/t"))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "httppush source: property `retain_size`: a table keeps the last `retain_size` records; set it to at least 1"
    );
    table.close().await;
    assert!(common::port_is_free(addr));
}

#[tokio::test]
async fn closing_the_source_fails_waiting_clients_and_refuses_new_ones() {
    let mut source =
        HttpPushSource::new(config("/closing").with_wait_for_delivery(common::WAIT)).unwrap();
    source.start().await.unwrap();
    let url = source.url().unwrap();
    let waiting = tokio::spawn(async move { post(&client(), &url, one(1)).await });
    // Wait until the request is queued, then close without reading it.
    while source.stats().pending_records == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    source.close().await.unwrap();
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, 500);
    assert!(body.starts_with("records not delivered:"), "{body}");
}
