//! The ably source against a stand-in for Ably's SSE endpoint on a real
//! socket: `GET /sse?channels=..&v=1.2`, HTTP Basic auth with the API key,
//! `message` events whose `data` is an Ably `Message`, `error` events,
//! `:keepalive` comments, `{"error": ErrorInfo}` answers when a stream
//! cannot open, and `lastEvent` resumes that replay what was missed.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use connector_core::check::CheckOutcome;
use connector_core::{FailureKind, Properties, Record, Source, Value};
use futures::StreamExt;
use serde_json::json;
use source_ably::AblySource;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

const KEY: &str = "xVLyHw.h6hu7A:JrJGxkV7AKpO2Fly";
const CHANNEL: &str = "sensors";

/// What a connection does besides streaming messages.
#[derive(Clone, Copy)]
enum Script {
    /// Stream until the client goes away.
    Forever,
    /// Close the connection after this many message events.
    CloseAfter(usize),
    /// Send an `error` event (token expired) after this many message events.
    ErrorAfter(usize),
    /// Send nothing at all, not even keepalives.
    Silent,
}

#[derive(Clone)]
struct Stub {
    history: Arc<Mutex<Vec<(u64, String)>>>,
    live: broadcast::Sender<(u64, String)>,
    /// The `lastEvent` of each connection, in order.
    connections: Arc<Mutex<Vec<Option<String>>>>,
    scripts: Arc<Mutex<VecDeque<Script>>>,
}

fn event_id(seq: u64) -> String {
    format!("cbfKayrzgAXDWM:{seq}-0")
}

fn seq_of(id: &str) -> Option<u64> {
    id.split(':').nth(1)?.split('-').next()?.parse().ok()
}

impl Stub {
    /// Publishes a message (the `Message` fields besides `id` and `timestamp`).
    fn publish(&self, message: serde_json::Value) -> u64 {
        let mut history = self.history.lock().unwrap();
        let seq = history.len() as u64 + 1;
        let mut message = message;
        message["id"] = json!(format!("msg{seq}:0:0"));
        message["timestamp"] = json!(1_556_806_691_000_i64 + seq as i64);
        message["channel"] = json!(CHANNEL);
        let text = message.to_string();
        history.push((seq, text.clone()));
        let _ = self.live.send((seq, text));
        seq
    }

    fn connections(&self) -> Vec<Option<String>> {
        self.connections.lock().unwrap().clone()
    }

    async fn wait_for_connections(&self, n: usize) {
        for _ in 0..500 {
            if self.connections.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the source did not open {n} connections");
    }
}

fn ably_error(status: StatusCode, message: &str, code: u32) -> Response {
    let body = json!({"error": {"message": message, "code": code, "statusCode": status.as_u16(), "href": format!("https://help.ably.io/error/{code}")}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn sse(
    State(stub): State<Stub>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return ably_error(
            StatusCode::UNAUTHORIZED,
            "Invalid key in request: xVLyHw.h6hu7A",
            40101,
        );
    }
    if query.get("v").map(String::as_str) != Some("1.2")
        || query.get("channels").map(String::as_str) != Some(CHANNEL)
    {
        return ably_error(
            StatusCode::BAD_REQUEST,
            "channels and v=1.2 are required",
            40000,
        );
    }
    let last = query.get("lastEvent").cloned();
    stub.connections.lock().unwrap().push(last.clone());
    let script = stub
        .scripts
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Script::Forever);

    // Subscribe first, then read the backlog, so nothing falls in between.
    let live = BroadcastStream::new(stub.live.subscribe()).filter_map(|m| async move { m.ok() });
    let after = last.as_deref().and_then(seq_of).unwrap_or(u64::MAX);
    let backlog: Vec<(u64, String)> = if last.is_some() {
        stub.history
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s > after)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let newest_backlog = backlog.last().map_or(0, |(s, _)| *s);
    let messages = futures::stream::iter(backlog)
        .chain(live.filter(move |(s, _)| std::future::ready(*s > newest_backlog)))
        .map(|(seq, text)| {
            Event::default()
                .id(event_id(seq))
                .event("message")
                .data(text)
        });
    let error = Event::default().event("error").data(
        json!({"message": "Token expired. (See https://help.ably.io/error/40142 for help.)", "code": 40142, "statusCode": 401, "href": "https://help.ably.io/error/40142"}).to_string(),
    );
    let events: futures::stream::BoxStream<'static, Event> = match script {
        Script::Forever => messages.boxed(),
        Script::CloseAfter(n) => messages.take(n).boxed(),
        Script::ErrorAfter(n) => messages
            .take(n)
            .chain(futures::stream::once(async move { error }))
            .boxed(),
        Script::Silent => futures::stream::pending().boxed(),
    };
    let sse = Sse::new(events.map(Ok::<_, Infallible>));
    match script {
        Script::Silent => sse.into_response(),
        _ => sse
            .keep_alive(
                KeepAlive::new()
                    .interval(Duration::from_millis(50))
                    .text("keepalive"),
            )
            .into_response(),
    }
}

async fn serve(scripts: Vec<Script>) -> (String, Stub) {
    let stub = Stub {
        history: Arc::default(),
        live: broadcast::channel(1024).0,
        connections: Arc::default(),
        scripts: Arc::new(Mutex::new(scripts.into())),
    };
    let app = axum::Router::new()
        .route("/sse", get(sse))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), stub)
}

fn props(base: &str) -> Properties {
    Properties::from_pairs([("api_key", KEY), ("channel", CHANNEL), ("base_url", base)])
}

/// Reads records until `n` arrived, acknowledging each batch as delivered
/// (panics after 10 s).
async fn collect(source: &mut AblySource, n: usize) -> Vec<Record> {
    let mut records = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while records.len() < n {
            let batch = source.next_batch().await.unwrap().unwrap();
            assert!(batch.bad.is_empty(), "{:?}", batch.bad);
            let (batch_records, ack) = batch.into_parts();
            ack.delivered();
            records.extend(batch_records);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} records: {source:?}", records.len()));
    records
}

fn ids(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.get("id").and_then(Value::as_str).unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn messages_become_records_with_decoded_data() {
    let (base, stub) = serve(vec![]).await;
    let mut source = AblySource::from_properties(&props(&base)).unwrap();
    let reader = tokio::spawn(async move {
        let records = collect(&mut source, 5).await;
        (records, source)
    });
    stub.wait_for_connections(1).await;
    stub.publish(json!({"name": "reading", "encoding": "json", "data": "{\"device\":\"d1\",\"number\":42.5}", "clientId": "sensor-7"}));
    stub.publish(json!({"name": "blob", "encoding": "base64", "data": "AAEC/w=="}));
    stub.publish(json!({"name": "note", "encoding": "utf-8/base64", "data": "R3LDvMOfZQ=="}));
    stub.publish(json!({"name": "plain", "data": "just text"}));
    stub.publish(
        json!({"name": "packed", "encoding": "json/utf-8/base64", "data": "WzEsMiwzXQ=="}),
    );
    let (records, source) = reader.await.unwrap();

    let first = &records[0];
    assert_eq!(first.get("id"), Some(&Value::from("msg1:0:0")));
    assert_eq!(first.get("name"), Some(&Value::from("reading")));
    assert_eq!(first.get_path("data.device"), Some(&Value::from("d1")));
    assert_eq!(first.get_path("data.number"), Some(&Value::Float64(42.5)));
    assert_eq!(first.get("client_id"), Some(&Value::from("sensor-7")));
    assert_eq!(
        first.get("timestamp"),
        Some(&Value::Timestamp(1_556_806_691_001_000))
    );
    assert_eq!(first.timestamp, Some(1_556_806_691_001_000));
    assert_eq!(
        first.position.as_ref().map(ToString::to_string).as_deref(),
        Some("topic sensors message cbfKayrzgAXDWM:1-0")
    );
    assert_eq!(
        records[1].get("data"),
        Some(&Value::Bytes(vec![0, 1, 2, 255]))
    );
    assert_eq!(records[2].get("data"), Some(&Value::from("Grüße")));
    assert_eq!(records[3].get("data"), Some(&Value::from("just text")));
    assert_eq!(records[3].get("client_id"), Some(&Value::Null));
    assert_eq!(
        records[4].get("data"),
        Some(&Value::from_json(json!([1, 2, 3])))
    );
    assert_eq!(source.stats().messages, 5);
    assert_eq!(source.last_event_id(), Some("cbfKayrzgAXDWM:5-0"));
}

#[tokio::test]
async fn a_dropped_stream_resumes_from_the_last_event_without_loss() {
    // The first connection is cut after 3 messages, the second after 4 more.
    let (base, stub) = serve(vec![Script::CloseAfter(3), Script::CloseAfter(4)]).await;
    let mut source = AblySource::from_properties(&props(&base)).unwrap();
    let reader = tokio::spawn(async move {
        let records = collect(&mut source, 12).await;
        (records, source)
    });
    stub.wait_for_connections(1).await;
    for n in 1..=10 {
        stub.publish(json!({"name": "n", "data": n.to_string()}));
    }
    stub.wait_for_connections(3).await;
    for n in 11..=12 {
        stub.publish(json!({"name": "n", "data": n.to_string()}));
    }
    let (records, source) = reader.await.unwrap();

    let expected: Vec<String> = (1..=12).map(|n| format!("msg{n}:0:0")).collect();
    assert_eq!(ids(&records), expected, "every message once, in order");
    assert_eq!(
        stub.connections(),
        [None, Some(event_id(3)), Some(event_id(7))],
        "each reconnection resumed after the last event received"
    );
    let stats = source.stats();
    assert_eq!((stats.connections, stats.messages), (3, 12));
    assert_eq!(stats.last_error(), Some("the server closed the stream"));
}

/// Reads batches until `n` records arrived; returns the batches.
async fn batches(source: &mut AblySource, n: usize) -> Vec<connector_core::Batch> {
    let mut out = Vec::new();
    let mut count = 0;
    while count < n {
        let batch = tokio::time::timeout(Duration::from_secs(10), source.next_batch())
            .await
            .expect("records in time")
            .unwrap()
            .unwrap();
        count += batch.len();
        out.push(batch);
    }
    out
}

#[tokio::test]
async fn a_failed_batch_is_received_again() {
    let (base, stub) = serve(vec![]).await;
    let mut source = AblySource::from_properties(&props(&base)).unwrap();
    let publisher = stub.clone();
    tokio::spawn(async move {
        publisher.wait_for_connections(1).await;
        publisher.publish(json!({"data": "1"}));
        publisher.publish(json!({"data": "2"}));
    });
    for batch in batches(&mut source, 2).await {
        batch.delivered();
    }
    stub.publish(json!({"data": "3"}));
    stub.publish(json!({"data": "4"}));
    let failed = batches(&mut source, 2).await;
    let failed_ids: Vec<String> = failed.iter().flat_map(|b| ids(&b.records)).collect();
    assert_eq!(failed_ids, ["msg3:0:0", "msg4:0:0"]);
    for batch in failed {
        batch.failed(connector_core::Error::transient(
            "test sink",
            "write",
            "disk full",
        ));
    }
    // The stream is reopened after message 2, the last one delivered.
    let again: Vec<String> = batches(&mut source, 2)
        .await
        .iter()
        .flat_map(|b| ids(&b.records))
        .collect();
    assert_eq!(again, ["msg3:0:0", "msg4:0:0"]);
    assert_eq!(stub.connections(), [None, Some(event_id(2))]);
    assert_eq!(source.stats().rewinds, 1);
}

#[tokio::test]
async fn an_error_event_is_reported_and_the_stream_resumes() {
    let (base, stub) = serve(vec![Script::ErrorAfter(2)]).await;
    let mut source = AblySource::from_properties(&props(&base)).unwrap();
    let reader = tokio::spawn(async move {
        let records = collect(&mut source, 4).await;
        (records, source)
    });
    stub.wait_for_connections(1).await;
    for n in 1..=4 {
        stub.publish(json!({"data": n.to_string()}));
    }
    let (records, source) = reader.await.unwrap();
    assert_eq!(
        ids(&records),
        ["msg1:0:0", "msg2:0:0", "msg3:0:0", "msg4:0:0"]
    );
    assert_eq!(stub.connections(), [None, Some(event_id(2))]);
    assert_eq!(
        source.stats().last_error(),
        Some(
            "Ably sent an error: Token expired. (See https://help.ably.io/error/40142 for help.) (code 40142, status 401)"
        )
    );
}

#[tokio::test]
async fn a_silent_stream_is_reopened_after_the_idle_timeout() {
    let (base, stub) = serve(vec![Script::Silent]).await;
    let mut source =
        AblySource::from_properties(&props(&base).with("idle_timeout", "300ms")).unwrap();
    let reader = tokio::spawn(async move {
        let records = collect(&mut source, 1).await;
        (records, source)
    });
    stub.wait_for_connections(2).await;
    stub.publish(json!({"data": "after the silence"}));
    let (records, source) = reader.await.unwrap();
    assert_eq!(
        records[0].get("data"),
        Some(&Value::from("after the silence"))
    );
    let error = source.stats().recent_errors[0].clone();
    assert!(
        error.starts_with("stream broken:") && error.ends_with("nothing received for 300ms"),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_key_is_reported_and_retried() {
    let (base, stub) = serve(vec![]).await;
    let mut source =
        AblySource::from_properties(&props(&base).with("api_key", "xVLyHw.h6hu7A:wrong")).unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(500), source.next_batch()).await;
    assert!(waited.is_err(), "no records with a refused key");
    let stats = source.stats();
    assert!(stats.errors >= 2, "{stats:?}");
    assert_eq!(
        stats.last_error(),
        Some(
            "subscribe to `sensors`: answered 401 Unauthorized: Invalid key in request: xVLyHw.h6hu7A (code 40101, status 401)"
        )
    );
    assert!(!format!("{stats:?} {source:?}").contains("wrong"));
    assert!(stub.connections().is_empty(), "refused before streaming");
}

#[tokio::test]
async fn undecodable_messages_become_bad_records() {
    let (base, stub) = serve(vec![]).await;
    let mut source = AblySource::from_properties(&props(&base)).unwrap();
    let reader = tokio::spawn(async move {
        let batch = source.next_batch().await.unwrap().unwrap();
        (batch, source)
    });
    stub.wait_for_connections(1).await;
    stub.publish(json!({"encoding": "cipher+aes-128-cbc/base64", "data": "c2VjcmV0"}));
    let (batch, _source) = reader.await.unwrap();
    assert!(batch.records.is_empty());
    let bad = &batch.bad[0];
    assert_eq!(
        bad.error.to_string(),
        "ably source: cannot decode ably message at topic sensors message cbfKayrzgAXDWM:1-0: `data` is encrypted (`cipher+aes-128-cbc` in encoding `cipher+aes-128-cbc/base64`); this source has no cipher key"
    );
    assert!(bad.payload.is_some());
}

mod check {
    use super::*;

    async fn failure(props: &Properties) -> (String, FailureKind, String) {
        let mut source = AblySource::from_properties(props).unwrap();
        let report = source.check(Duration::from_secs(5)).await;
        assert!(!report.to_string().contains("JrJGxkV7AKpO2Fly"), "{report}");
        let step = report
            .failure()
            .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
        match &step.outcome {
            CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
            CheckOutcome::Passed(_) => unreachable!(),
        }
    }

    #[tokio::test]
    async fn success() {
        let (base, stub) = serve(vec![]).await;
        let mut source = AblySource::from_properties(&props(&base)).unwrap();
        let report = source.check(Duration::from_secs(5)).await;
        assert!(report.is_ok(), "{report}");
        assert!(
            report.to_string().contains(
                "ably source: ok     subscribe to channel `sensors` with the API key: stream opened"
            ),
            "{report}"
        );
        stub.wait_for_connections(1).await;
    }

    #[tokio::test]
    async fn wrong_port() {
        let port = testkit::free_port();
        let (step, kind, reason) = failure(&props(&format!("http://127.0.0.1:{port}"))).await;
        assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
        assert_eq!(kind, FailureKind::Unreachable);
        assert!(reason.starts_with("Connection refused"), "{reason}");
    }

    #[tokio::test]
    async fn wrong_credentials() {
        let (base, _stub) = serve(vec![]).await;
        let (step, kind, reason) =
            failure(&props(&base).with("api_key", "xVLyHw.h6hu7A:nope")).await;
        assert_eq!(step, "subscribe to channel `sensors` with the API key");
        assert_eq!(kind, FailureKind::AuthRefused);
        assert_eq!(
            reason,
            "answered 401 Unauthorized: Invalid key in request: xVLyHw.h6hu7A (code 40101, status 401)"
        );
    }

    #[tokio::test]
    async fn tls_to_a_plain_port() {
        let (base, _stub) = serve(vec![]).await;
        let (_, kind, reason) = failure(&props(&base.replace("http://", "https://"))).await;
        assert_eq!(kind, FailureKind::Tls);
        assert!(
            reason.ends_with("(the server does not speak TLS here; use an http:// base_url)"),
            "{reason}"
        );
    }
}
