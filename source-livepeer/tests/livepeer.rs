//! The livepeer source against a stand-in for Livepeer Studio's realtime
//! viewership API (`GET /api/data/views/now`, Bearer auth, JSON array of
//! metrics, `{"errors": [...]}` bodies on failure) on a real socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use connector_core::check::CheckOutcome;
use connector_core::memory::CollectSink;
use connector_core::{FailureKind, Pipeline, Properties, Source, Value};
use serde_json::json;
use source_livepeer::LivepeerSource;

const KEY: &str = "lp-test-key-0123456789";

#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    retry_after: Option<u64>,
}

fn ok(body: serde_json::Value) -> Reply {
    Reply {
        status: 200,
        body: body.to_string(),
        retry_after: None,
    }
}

fn error(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.to_owned(),
        retry_after: None,
    }
}

#[derive(Clone, Default)]
struct Stub {
    script: Arc<Mutex<VecDeque<Reply>>>,
    last: Arc<Mutex<Option<Reply>>>,
    queries: Arc<Mutex<Vec<Option<String>>>>,
}

impl Stub {
    fn requests(&self) -> usize {
        self.queries.lock().unwrap().len()
    }
}

async fn views_now(
    State(stub): State<Stub>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    stub.queries.lock().unwrap().push(query);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"errors": ["Unauthorized"]}).to_string(),
        )
            .into_response();
    }
    let reply = {
        let mut script = stub.script.lock().unwrap();
        let mut last = stub.last.lock().unwrap();
        if let Some(next) = script.pop_front() {
            *last = Some(next.clone());
        }
        last.clone().unwrap_or_else(|| ok(json!([])))
    };
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response();
    if let Some(secs) = reply.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
    }
    response
}

/// A stand-in API answering `script` in order (then the last answer again).
async fn serve(script: Vec<Reply>) -> (String, Stub) {
    let stub = Stub {
        script: Arc::new(Mutex::new(script.into())),
        ..Stub::default()
    };
    let app = axum::Router::new()
        .route("/api/data/views/now", get(views_now))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/api"), stub)
}

fn props(base: &str, interval: &str, data_type: &str) -> Properties {
    Properties::from_pairs([
        ("interval", interval),
        ("api_key", KEY),
        ("data_type", data_type),
        ("base_url", base),
    ])
}

fn metric(playback: &str, views: i64, error_rate: f64) -> serde_json::Value {
    json!({"playbackId": playback, "device": "iPhone", "browser": "Safari", "country": "United States", "viewCount": views, "errorRate": error_rate})
}

#[tokio::test]
async fn one_record_per_metric_with_columns() {
    let (base, stub) = serve(vec![ok(json!([
        metric("abc", 100, 0.1),
        metric("def", 7, 0.0)
    ]))])
    .await;
    let mut source = LivepeerSource::from_properties(
        &props(&base, "1h", "json").with("breakdown_by", json!(["playbackId", "device"])),
    )
    .unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch.bad.is_empty());
    let first = &batch.records[0];
    assert_eq!(first.get("playbackId"), Some(&Value::from("abc")));
    assert_eq!(first.get("viewCount"), Some(&Value::Int64(100)));
    assert_eq!(first.get("errorRate"), Some(&Value::Float64(0.1)));
    assert_eq!(first.get("country"), Some(&Value::from("United States")));
    assert_eq!(batch.records[1].get("viewCount"), Some(&Value::Int64(7)));
    assert!(first.timestamp.is_some(), "records carry the poll time");
    assert_eq!(
        stub.queries.lock().unwrap()[0].as_deref(),
        Some("breakdownBy%5B%5D=playbackId&breakdownBy%5B%5D=device")
    );
    assert_eq!(source.stats().polls, 1);
}

#[tokio::test]
async fn text_gives_one_raw_record_per_metric() {
    let (base, _stub) = serve(vec![ok(
        json!([metric("abc", 1, 0.5), {"viewCount": 2, "errorRate": 0}]),
    )])
    .await;
    let mut source = LivepeerSource::from_properties(&props(&base, "1h", "text")).unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.len(), 2);
    let raw: Vec<serde_json::Value> = batch
        .records
        .iter()
        .map(|r| serde_json::from_str(r.get("raw").and_then(Value::as_str).unwrap()).unwrap())
        .collect();
    assert_eq!(
        raw,
        [
            metric("abc", 1, 0.5),
            json!({"viewCount": 2, "errorRate": 0})
        ]
    );
    assert_eq!(batch.records[0].schema.len(), 1);
}

#[tokio::test]
async fn api_errors_are_reported_and_polling_goes_on_with_backoff() {
    let mut limited = error(429, r#"{"errors":["rate limit exceeded"]}"#);
    limited.retry_after = Some(0);
    let (base, stub) = serve(vec![
        error(500, r#"{"errors":["internal error"]}"#),
        limited,
        error(503, "upstream down"),
        ok(json!([metric("abc", 3, 0.0)])),
    ])
    .await;
    let mut source = LivepeerSource::from_properties(&props(&base, "400ms", "json")).unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.records[0].get("viewCount"), Some(&Value::Int64(3)));
    let stats = source.stats();
    assert_eq!((stats.polls, stats.errors), (4, 3));
    let endpoint = format!("GET {base}/data/views/now: ");
    let errors: Vec<&str> = stats
        .recent_errors
        .iter()
        .map(|e| e.strip_prefix(&endpoint).unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "answered 500 Internal Server Error: internal error",
            "answered 429 Too Many Requests: rate limit exceeded (rate limited)",
            "answered 503 Service Unavailable: upstream down",
        ]
    );
    assert_eq!(stub.requests(), 4);
}

#[tokio::test]
async fn wrong_api_key_is_reported_on_every_poll_without_stopping() {
    let (base, stub) = serve(vec![ok(json!([metric("abc", 3, 0.0)]))]).await;
    let mut source =
        LivepeerSource::from_properties(&props(&base, "100ms", "json").with("api_key", "wrong"))
            .unwrap();
    // The source keeps polling; stop waiting after a few failures.
    let waited = tokio::time::timeout(Duration::from_millis(400), source.next_batch()).await;
    assert!(waited.is_err(), "no records come with a wrong key");
    let stats = source.stats();
    assert!(stats.errors >= 2, "{stats:?}");
    assert!(
        stats
            .last_error()
            .unwrap()
            .ends_with("answered 401 Unauthorized: Unauthorized"),
        "{stats:?}"
    );
    assert!(!format!("{stats:?}").contains("wrong"));
    assert_eq!(stub.requests() as u64, stats.polls);
}

#[tokio::test]
async fn an_unchanged_answer_is_not_repeated_within_one_interval() {
    let a = json!([metric("abc", 5, 0.0)]);
    let b = json!([metric("abc", 6, 0.0)]);
    let (base, stub) = serve(vec![
        error(503, "warming up"),
        ok(a.clone()),
        ok(a.clone()),
        ok(b.clone()),
        ok(b.clone()),
    ])
    .await;
    let mut source = LivepeerSource::from_properties(&props(&base, "400ms", "json")).unwrap();
    // 503 at the start of the first interval, then `a` from a retry inside it.
    let first = source.next_batch().await.unwrap().unwrap();
    assert_eq!(first.records[0].get("viewCount"), Some(&Value::Int64(5)));
    // The second interval starts less than an interval after that retry and
    // answers `a` again: skipped. The third answers `b`.
    let second = source.next_batch().await.unwrap().unwrap();
    assert_eq!(second.records[0].get("viewCount"), Some(&Value::Int64(6)));
    assert_eq!(source.stats().duplicates, 1);
    assert_eq!(stub.requests(), 4);
    // A full interval later, the same `b` is a new measurement and is emitted.
    let third = source.next_batch().await.unwrap().unwrap();
    assert_eq!(third.records[0].get("viewCount"), Some(&Value::Int64(6)));
    assert_eq!(source.stats().duplicates, 1);
}

#[tokio::test]
async fn undecodable_metrics_become_bad_records() {
    let (base, _stub) = serve(vec![ok(json!([
        metric("a", 1, 0.0),
        5,
        metric("b", 2, 0.0)
    ]))])
    .await;
    let mut source = LivepeerSource::from_properties(&props(&base, "1h", "json")).unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.bad.len(), 1);
    let bad = &batch.bad[0];
    let text = bad.error.to_string();
    assert!(
        text.starts_with("livepeer source: cannot decode json at element 1, record #0"),
        "{text}"
    );
    assert_eq!(bad.payload.as_deref(), Some(&b"5"[..]));

    let (base, _stub) = serve(vec![Reply {
        status: 200,
        body: r#"{"viewCount": 1}"#.into(),
        retry_after: None,
    }])
    .await;
    let mut source = LivepeerSource::from_properties(&props(&base, "1h", "json")).unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert!(batch.records.is_empty());
    assert!(
        batch.bad[0]
            .error
            .to_string()
            .contains("cannot decode json at answer #0: expected a JSON array of metrics"),
        "{}",
        batch.bad[0].error
    );
}

#[tokio::test]
async fn livepeer_to_a_pipeline() {
    let (base, _stub) = serve(vec![
        ok(json!([metric("checked", 0, 0.0)])), // answers the check at start
        ok(json!([metric("a", 1, 0.0), metric("b", 2, 0.0)])),
        ok(json!([metric("a", 3, 0.0)])),
    ])
    .await;
    let source = LivepeerSource::from_properties(&props(&base, "200ms", "json")).unwrap();
    let (sink, collected) = CollectSink::new();
    let pipeline = Pipeline::new(source)
        .to(sink)
        .check_on_start(Duration::from_secs(5));
    let stop = pipeline.shutdown_token();
    let running = tokio::spawn(pipeline.run());
    assert!(collected.wait_for(3, Duration::from_secs(10)).await);
    stop.cancel();
    let report = running.await.unwrap().unwrap();
    assert!(report.metrics.records_out >= 3);
    let views: Vec<i64> = collected
        .records()
        .iter()
        .map(|r| r.get("viewCount").and_then(Value::as_i64).unwrap())
        .collect();
    assert_eq!(views[..3], [1, 2, 3]);
}

mod check {
    use super::*;

    async fn failure(props: &Properties) -> (String, FailureKind, String) {
        let mut source = LivepeerSource::from_properties(props).unwrap();
        let report = source.check(Duration::from_secs(5)).await;
        assert!(!report.to_string().contains(KEY), "{report}");
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
        let (base, stub) = serve(vec![ok(json!([metric("a", 1, 0.0)]))]).await;
        let mut source = LivepeerSource::from_properties(&props(&base, "1h", "json")).unwrap();
        let report = source.check(Duration::from_secs(5)).await;
        assert!(report.is_ok(), "{report}");
        let text = report.to_string();
        assert!(
            text.contains(&format!("livepeer source: ok     GET {base}/data/views/now with the API key: authenticated; 1 metrics now")),
            "{text}"
        );
        assert_eq!(stub.requests(), 1);
    }

    #[tokio::test]
    async fn wrong_port() {
        let port = testkit::free_port();
        let (step, kind, reason) = failure(&props(
            &format!("http://127.0.0.1:{port}/api"),
            "1h",
            "json",
        ))
        .await;
        assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
        assert_eq!(kind, FailureKind::Unreachable);
        assert!(reason.starts_with("Connection refused"), "{reason}");
    }

    #[tokio::test]
    async fn wrong_credentials() {
        let (base, _stub) = serve(vec![]).await;
        let (step, kind, reason) =
            failure(&props(&base, "1h", "json").with("api_key", "nope")).await;
        assert!(step.ends_with("with the API key"), "{step}");
        assert_eq!(kind, FailureKind::AuthRefused);
        assert_eq!(reason, "answered 401 Unauthorized: Unauthorized");
    }

    #[tokio::test]
    async fn tls_to_a_plain_port() {
        let (base, _stub) = serve(vec![]).await;
        let https = base.replace("http://", "https://");
        let (step, kind, reason) = failure(&props(&https, "1h", "json")).await;
        assert!(step.starts_with("GET https://127.0.0.1:"), "{step}");
        assert_eq!(kind, FailureKind::Tls);
        assert!(
            reason.contains("InvalidContentType")
                && reason
                    .ends_with("(the server does not speak TLS here; use an http:// base_url)"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn wrong_path() {
        let (base, _stub) = serve(vec![]).await;
        let (_, kind, reason) = failure(&props(&base.replace("/api", "/v2"), "1h", "json")).await;
        assert_eq!(kind, FailureKind::NotFound);
        assert_eq!(reason, "answered 404 Not Found");
    }
}
