//! The timeplus sink against a stand-in for the Proton REST API on
//! 127.0.0.1: `POST /proton/v1/ingest/streams/{stream}` with
//! `{"columns": [...], "data": [[...]]}` (checked against the stream's
//! columns), `GET /proton/v1/ddl/streams/{database}/{stream}`, and API-key
//! authentication.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::memory;
use connector_core::{Ack, AckStatus, Batch, Pipeline, Properties, Record, Sink, Value};
use serde_json::json;
use sink_timeplus::TimeplusSink;

const KEY: &str = "tp-s3cret-key";

#[derive(Default)]
struct Proton {
    /// Stream name to its columns.
    streams: HashMap<String, Vec<String>>,
    /// Rows ingested per stream, as JSON objects.
    rows: HashMap<String, Vec<serde_json::Value>>,
    /// Every ingest request: stream, headers, body.
    requests: Vec<(String, HeaderMap, serde_json::Value)>,
    /// Answer the next N ingest requests with 503.
    fail_next: usize,
}

type Shared = Arc<Mutex<Proton>>;

fn error(status: u16, code: u32, message: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        json!({"code": code, "error_msg": message, "request_id": "r-1"}).to_string(),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(KEY)
}

async fn ingest(
    State(proton): State<Shared>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut p = proton.lock().unwrap();
    if !authorized(&headers) {
        return error(
            401,
            516,
            "Authentication failed: password is incorrect or there is no user with such name"
                .into(),
        );
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(400, 26, "Cannot parse JSON payload".into());
    };
    p.requests.push((stream.clone(), headers, payload.clone()));
    if p.fail_next > 0 {
        p.fail_next -= 1;
        return error(503, 999, "server is busy".into());
    }
    let Some(columns) = p.streams.get(&stream).cloned() else {
        return error(404, 60, format!("Stream default.{stream} doesn't exist"));
    };
    let names: Vec<String> = payload["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    if let Some(unknown) = names.iter().find(|n| !columns.contains(n)) {
        return error(
            400,
            16,
            format!("No such column {unknown} in stream default.{stream}"),
        );
    }
    for row in payload["data"].as_array().unwrap() {
        let row = row.as_array().unwrap();
        let object: serde_json::Map<String, serde_json::Value> =
            names.iter().cloned().zip(row.iter().cloned()).collect();
        p.rows
            .entry(stream.clone())
            .or_default()
            .push(object.into());
    }
    (StatusCode::OK, json!({"request_id": "r-2"}).to_string()).into_response()
}

async fn describe(
    State(proton): State<Shared>,
    Path((database, stream)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let p = proton.lock().unwrap();
    if !authorized(&headers) {
        return error(401, 516, "Authentication failed".into());
    }
    match p.streams.get(&stream) {
        Some(columns) if database == "default" => (
            StatusCode::OK,
            json!({"data": [{"name": stream, "columns": columns}]}).to_string(),
        )
            .into_response(),
        _ => error(
            404,
            60,
            format!("No stream named '{stream}' in database '{database}'"),
        ),
    }
}

struct Server {
    port: u16,
    proton: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Server {
        let proton: Shared = Arc::default();
        {
            let mut p = proton.lock().unwrap();
            let columns = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
            p.streams
                .insert("iot".into(), columns(&["device", "number", "time"]));
            p.streams
                .insert("kv".into(), columns(&["id", "v", "_tp_delta"]));
            p.streams.insert("mixed".into(), columns(&["a", "b"]));
        }
        let app = axum::Router::new()
            .route(
                "/proton/v1/ingest/streams/{stream}",
                axum::routing::post(ingest),
            )
            .route(
                "/proton/v1/ddl/streams/{database}/{stream}",
                axum::routing::get(describe),
            )
            .with_state(proton.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { port, proton, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn rows(&self, stream: &str) -> Vec<serde_json::Value> {
        self.proton
            .lock()
            .unwrap()
            .rows
            .get(stream)
            .cloned()
            .unwrap_or_default()
    }

    fn requests(&self) -> Vec<(String, HeaderMap, serde_json::Value)> {
        self.proton.lock().unwrap().requests.clone()
    }
}

fn timeplus(props: serde_json::Value) -> TimeplusSink {
    TimeplusSink::from_properties(&Properties::from_json("timeplus sink", props).unwrap()).unwrap()
}

async fn deliver(sink: &mut TimeplusSink, records: Vec<Record>) -> AckStatus {
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(records, ack)).await.unwrap();
    sink.flush().await.unwrap();
    outcome.await
}

fn reading(n: i64) -> Record {
    Record::from_pairs([
        ("device", Value::from(format!("device_{}", n % 3))),
        ("number", Value::Float64(n as f64 / 2.0)),
        (
            "time",
            Value::Timestamp(1_642_932_000_123_000 + n * 1_000_000),
        ),
    ])
}

#[tokio::test]
async fn ingest_body_has_columns_and_rows() {
    let server = Server::start().await;
    let mut sink = timeplus(json!({"stream_name": "iot", "url": server.url(), "api_key": KEY}));
    let status = deliver(&mut sink, (0..3).map(reading).collect()).await;
    assert!(status.is_delivered(), "{status:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let (stream, headers, body) = &requests[0];
    assert_eq!(stream, "iot");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-api-key"], KEY);
    assert_eq!(
        body,
        &json!({
            "columns": ["device", "number", "time"],
            "data": [
                ["device_0", 0.0, "2022-01-23T10:00:00.123Z"],
                ["device_1", 0.5, "2022-01-23T10:00:01.123Z"],
                ["device_2", 1.0, "2022-01-23T10:00:02.123Z"],
            ]
        })
    );
    assert_eq!(server.rows("iot").len(), 3);
}

#[tokio::test]
async fn large_batches_are_split_and_mixed_schemas_kept_apart() {
    let server = Server::start().await;
    let mut sink = timeplus(
        json!({"stream_name": "iot", "url": server.url(), "api_key": KEY, "batch_size": 40}),
    );
    assert_eq!(sink.batch_limits().max_records, 40);
    let status = deliver(&mut sink, (0..100).map(reading).collect()).await;
    assert!(status.is_delivered());
    let sizes: Vec<usize> = server
        .requests()
        .iter()
        .map(|(_, _, b)| b["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [40, 40, 20]);
    let numbers: Vec<f64> = server
        .rows("iot")
        .iter()
        .map(|r| r["number"].as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = (0..100).map(|n| n as f64 / 2.0).collect();
    assert_eq!(numbers, expected, "in order, once each");

    let mut mixed = timeplus(json!({"stream_name": "mixed", "url": server.url(), "api_key": KEY}));
    let records = vec![
        Record::from_pairs([("a", Value::Int64(1))]),
        Record::from_pairs([("a", Value::Int64(2))]),
        Record::from_pairs([("b", Value::from("x"))]),
    ];
    assert!(deliver(&mut mixed, records).await.is_delivered());
    let columns: Vec<serde_json::Value> = server
        .requests()
        .iter()
        .filter(|(s, _, _)| s == "mixed")
        .map(|(_, _, b)| b["columns"].clone())
        .collect();
    assert_eq!(columns, [json!(["a"]), json!(["b"])]);
}

#[tokio::test]
async fn changelog_streams_get_tp_delta() {
    let server = Server::start().await;
    let mut sink = timeplus(
        json!({"stream_name": "kv", "url": server.url(), "api_key": KEY, "changelog": true}),
    );
    let row = |v: &str| Record::from_pairs([("id", Value::Int64(1)), ("v", Value::from(v))]);
    let records = vec![
        row("a"),
        row("a").with_kind(connector_core::ChangeKind::UpdateBefore),
        row("b").with_kind(connector_core::ChangeKind::UpdateAfter),
        row("b").with_kind(connector_core::ChangeKind::Delete),
    ];
    assert!(deliver(&mut sink, records).await.is_delivered());
    let deltas: Vec<i64> = server
        .rows("kv")
        .iter()
        .map(|r| r["_tp_delta"].as_i64().unwrap())
        .collect();
    assert_eq!(deltas, [1, -1, 1, -1]);
}

#[tokio::test]
async fn server_errors_are_retried_and_refusals_reported_verbatim() {
    let server = Server::start().await;
    server.proton.lock().unwrap().fail_next = 2;
    let mut sink = timeplus(
        json!({"stream_name": "iot", "url": server.url(), "api_key": KEY, "retry_interval": "10ms"}),
    );
    assert!(deliver(&mut sink, vec![reading(1)]).await.is_delivered());
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.rows("iot").len(), 1, "stored once");

    let mut wrong = timeplus(json!({"stream_name": "iot", "url": server.url(), "api_key": KEY}));
    let status = deliver(
        &mut wrong,
        vec![Record::from_pairs([("devise", Value::from("x"))])],
    )
    .await;
    assert!(matches!(status, AckStatus::Rejected(_)), "{status:?}");
    assert_eq!(
        status.error().unwrap().to_string(),
        format!(
            "timeplus sink: rejected 1 record: POST {}/proton/v1/ingest/streams/iot answered 400 Bad Request: {{\"code\":16,\"error_msg\":\"No such column devise in stream default.iot\",\"request_id\":\"r-1\"}}",
            server.url()
        )
    );

    let mut unauthenticated =
        timeplus(json!({"stream_name": "iot", "url": server.url(), "api_key": "nope-key"}));
    let status = deliver(&mut unauthenticated, vec![reading(1)]).await;
    let text = status.error().unwrap().to_string();
    assert!(
        text.contains("answered 401 Unauthorized: {\"code\":516"),
        "{text}"
    );
    assert!(!text.contains("nope-key") && !format!("{unauthenticated:?}").contains("nope-key"));
}

async fn check_failure(props: serde_json::Value) -> (String, FailureKind, String) {
    let key = props["api_key"].as_str().map(str::to_owned);
    let mut sink = timeplus(props);
    let report = sink.check(Duration::from_secs(5)).await;
    if let Some(key) = key {
        assert!(!report.to_string().contains(&key), "{report}");
    }
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

#[tokio::test]
async fn check_success_ingests_nothing() {
    let server = Server::start().await;
    let mut sink = timeplus(json!({"stream_name": "iot", "url": server.url(), "api_key": KEY}));
    let report = sink.check(Duration::from_secs(5)).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.steps.last().unwrap().name,
        format!(
            "look up stream `iot` (GET {}/proton/v1/ddl/streams/default/iot)",
            server.url()
        )
    );
    assert!(server.requests().is_empty());
    assert!(!report.to_string().contains(KEY));
}

#[tokio::test]
async fn check_wrong_port() {
    let port = testkit::free_port();
    let (step, kind, reason) =
        check_failure(json!({"stream_name": "iot", "url": format!("http://127.0.0.1:{port}")}))
            .await;
    assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Unreachable);
    assert_eq!(
        reason,
        format!("127.0.0.1:{port}: Connection refused (os error 111)")
    );
}

#[tokio::test]
async fn check_wrong_api_key() {
    let server = Server::start().await;
    let (_, kind, reason) = check_failure(
        json!({"stream_name": "iot", "url": server.url(), "api_key": "wrong-api-key"}),
    )
    .await;
    assert_eq!(kind, FailureKind::AuthRefused);
    assert_eq!(
        reason,
        r#"answered 401 Unauthorized: {"code":516,"error_msg":"Authentication failed","request_id":"r-1"}"#
    );
}

#[tokio::test]
async fn check_missing_stream() {
    let server = Server::start().await;
    let (_, kind, reason) =
        check_failure(json!({"stream_name": "nope", "url": server.url(), "api_key": KEY})).await;
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(
        reason,
        r#"answered 404 Not Found: {"code":60,"error_msg":"No stream named 'nope' in database 'default'","request_id":"r-1"}"#
    );
}

#[tokio::test]
async fn check_tls_to_a_plain_port() {
    let server = Server::start().await;
    let (step, kind, reason) = check_failure(
        json!({"stream_name": "iot", "url": format!("https://127.0.0.1:{}", server.port)}),
    )
    .await;
    assert_eq!(step, "TLS handshake with 127.0.0.1");
    assert_eq!(kind, FailureKind::Tls);
    assert!(
        reason.starts_with("received corrupt message of type InvalidContentType"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_chained_in_process_end_in_a_stream() {
    let server = Server::start().await;
    let source = source_generator::GeneratorSource::from_properties(&Properties::from_pairs([
        ("template", "iot"),
        ("interval", "0ms"),
        ("count", "500"),
        ("seed", "5"),
    ]))
    .unwrap();
    let (to_next, from_previous) = memory::channel(4);
    let upstream = Pipeline::new(source)
        .filter(|r| {
            r.get("number")
                .and_then(Value::as_f64)
                .is_some_and(|n| n >= 50.0)
        })
        .to(to_next);
    let sink = timeplus(
        json!({"stream_name": "iot", "url": server.url(), "api_key": KEY, "batch_size": 64}),
    );
    let downstream = Pipeline::new(from_previous)
        .to(sink)
        .check_on_start(Duration::from_secs(5));
    let (up, down) = tokio::join!(upstream.run(), downstream.run());
    let (up, down) = (up.unwrap(), down.unwrap());
    let rows = server.rows("iot");
    assert_eq!(rows.len() as u64, down.metrics.records_out);
    assert_eq!(
        up.metrics.records_out, down.metrics.records_out,
        "acks crossed the channel"
    );
    assert!(
        rows.len() > 150 && rows.len() < 350,
        "about half of 500: {}",
        rows.len()
    );
    assert!(rows.iter().all(|r| r["number"].as_f64().unwrap() >= 50.0));
}
