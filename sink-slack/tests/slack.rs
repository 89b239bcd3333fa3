//! The slack sink against a stand-in for Slack's incoming webhooks on
//! 127.0.0.1 that speaks their documented API: `POST /services/T/B/token`
//! with `{"text": ...}`, `ok` on success, `400 no_text` /
//! `invalid_payload`, `403 invalid_token`, `404 no_service` /
//! `channel_not_found`, and `429` with `Retry-After` beyond one message per
//! second.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::{Ack, AckStatus, Batch, Position, Properties, Record, Sink, Value};
use serde_json::json;
use sink_slack::SlackSink;
use tokio::time::Instant;

const TOKEN: &str = "s3cretWebhookToken";

#[derive(Default)]
struct Workspace {
    /// Messages posted, with when they arrived.
    posted: Vec<(String, Instant)>,
    /// Every request, accepted or not, with the status it got.
    requests: Vec<(String, HeaderMap, Instant, u16)>,
    /// When the last message was accepted, for the rate limit.
    last: Option<Instant>,
    /// `Retry-After` seconds sent with a 429.
    limited: usize,
}

struct Fake {
    workspace: Mutex<Workspace>,
    /// Enforce one message per this interval (none: no limit).
    rate: Option<Duration>,
}

async fn webhook(
    State(fake): State<Arc<Fake>>,
    Path((team, _bot, token)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let response = answer(&fake, &team, &token, &headers, &body, now);
    let mut ws = fake.workspace.lock().unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    ws.requests
        .push((text, headers, now, response.status().as_u16()));
    response
}

fn answer(
    fake: &Fake,
    team: &str,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: Instant,
) -> Response {
    let mut ws = fake.workspace.lock().unwrap();
    let reply = |status: u16, text: &str| {
        (StatusCode::from_u16(status).unwrap(), text.to_owned()).into_response()
    };
    if team != "T000" {
        return reply(404, "no_team");
    }
    if token != TOKEN {
        return reply(403, "invalid_token");
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return reply(400, "invalid_payload");
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
        return reply(400, "invalid_payload");
    };
    let Some(text) = payload
        .get("text")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
    else {
        return reply(400, "no_text");
    };
    if text.contains("#archived") {
        return reply(410, "channel_is_archived");
    }
    if let (Some(rate), Some(last)) = (fake.rate, ws.last)
        && now - last < rate
    {
        ws.limited += 1;
        let mut response = reply(429, "rate_limited");
        response
            .headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        return response;
    }
    ws.last = Some(now);
    ws.posted.push((text.to_owned(), now));
    reply(200, "ok")
}

struct Slack {
    port: u16,
    fake: Arc<Fake>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Slack {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Slack {
    async fn start(rate: Option<Duration>) -> Slack {
        let fake = Arc::new(Fake {
            workspace: Mutex::default(),
            rate,
        });
        let app = axum::Router::new()
            .route(
                "/services/{team}/{bot}/{token}",
                axum::routing::post(webhook),
            )
            .fallback(|| async { (StatusCode::NOT_FOUND, "no_service") })
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Slack { port, fake, task }
    }

    fn url(&self, token: &str) -> String {
        format!("http://127.0.0.1:{}/services/T000/B000/{token}", self.port)
    }

    fn posted(&self) -> Vec<(String, Instant)> {
        self.fake.workspace.lock().unwrap().posted.clone()
    }

    fn requests(&self) -> Vec<(String, HeaderMap, Instant, u16)> {
        self.fake.workspace.lock().unwrap().requests.clone()
    }
}

fn slack_sink(props: serde_json::Value) -> SlackSink {
    SlackSink::from_properties(&Properties::from_json("slack sink", props).unwrap()).unwrap()
}

async fn deliver(sink: &mut SlackSink, records: Vec<Record>) -> AckStatus {
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(records, ack)).await.unwrap();
    sink.flush().await.unwrap();
    outcome.await
}

fn reading(device: &str, number: f64) -> Record {
    Record::from_pairs([
        ("device", Value::from(device)),
        ("number", Value::Float64(number)),
    ])
}

#[tokio::test]
async fn posts_the_rendered_template_as_text_with_headers() {
    let slack = Slack::start(None).await;
    let mut sink = slack_sink(json!({
        "url": slack.url(TOKEN),
        "template": "Sensor {{ .device }} reads {{ .number }} ({{ .note }})",
        "header": {"X-Team": "ops"},
        "min_interval": "0ms",
    }));
    let status = deliver(&mut sink, vec![reading("device_1", 95.5)]).await;
    assert!(status.is_delivered(), "{status:?}");
    let requests = slack.requests();
    assert_eq!(requests.len(), 1);
    let (body, headers, _, _) = &requests[0];
    assert_eq!(
        body,
        r#"{"text":"Sensor device_1 reads 95.5 (<no value>)"}"#
    );
    assert_eq!(headers["x-team"], "ops");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        slack.posted()[0].0,
        "Sensor device_1 reads 95.5 (<no value>)"
    );
}

#[tokio::test]
async fn without_a_template_the_record_is_the_text() {
    let slack = Slack::start(None).await;
    let mut sink = slack_sink(json!({"url": slack.url(TOKEN), "min_interval": "0ms"}));
    let status = deliver(&mut sink, vec![reading("device_2", 1.0)]).await;
    assert!(status.is_delivered());
    assert_eq!(slack.posted()[0].0, r#"{"device":"device_2","number":1.0}"#);
}

#[tokio::test]
async fn messages_are_paced_and_keep_their_order() {
    let slack = Slack::start(None).await;
    let mut sink = slack_sink(
        json!({"url": slack.url(TOKEN), "template": "{{ .device }}", "min_interval": "300ms"}),
    );
    let records = (0..4).map(|n| reading(&format!("d{n}"), 0.0)).collect();
    assert!(deliver(&mut sink, records).await.is_delivered());
    let posted = slack.posted();
    let texts: Vec<&str> = posted.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["d0", "d1", "d2", "d3"]);
    // Spaced on the client side; arrival allows for a little transit jitter.
    for pair in posted.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= Duration::from_millis(250),
            "{:?}",
            pair[1].1 - pair[0].1
        );
    }
}

#[tokio::test]
async fn rate_limits_are_waited_out_without_dropping() {
    // Slack allows one message per second; the sink is told to send faster.
    let slack = Slack::start(Some(Duration::from_secs(1))).await;
    let mut sink = slack_sink(json!({
        "url": slack.url(TOKEN), "template": "{{ .device }}", "min_interval": "0ms",
        "retries": 0, "retry_interval": "50ms",
    }));
    let records = (0..3).map(|n| reading(&format!("d{n}"), 0.0)).collect();
    let status = deliver(&mut sink, records).await;
    assert!(status.is_delivered(), "{status:?}");
    let posted = slack.posted();
    let texts: Vec<&str> = posted.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["d0", "d1", "d2"], "every message once, in order");
    assert!(
        slack.fake.workspace.lock().unwrap().limited >= 2,
        "the limit was hit"
    );
    // After a 429 the sink waited the Retry-After second.
    let requests = slack.requests();
    for pair in requests.windows(2).filter(|p| p[0].3 == 429) {
        assert!(
            pair[1].2 - pair[0].2 >= Duration::from_millis(950),
            "retried too soon"
        );
        assert_eq!(pair[1].0, pair[0].0, "the same message again");
    }
}

#[tokio::test]
async fn slack_errors_are_reported_verbatim() {
    let slack = Slack::start(None).await;
    let mut sink = slack_sink(
        json!({"url": slack.url(TOKEN), "template": "{{ .device }}", "min_interval": "0ms"}),
    );
    let status = deliver(
        &mut sink,
        vec![reading("#archived", 0.0).with_position(Position::Sequence(7))],
    )
    .await;
    assert!(matches!(status, AckStatus::Rejected(_)), "{status:?}");
    assert_eq!(
        status.error().unwrap().to_string(),
        format!(
            "slack sink: rejected record #7: POST Slack webhook at 127.0.0.1:{} answered 410 Gone: channel_is_archived",
            slack.port
        )
    );

    let mut empty = slack_sink(
        json!({"url": slack.url(TOKEN), "template": "{{- .blank -}}", "min_interval": "0ms"}),
    );
    let status = deliver(
        &mut empty,
        vec![Record::from_pairs([("blank", Value::from(""))])],
    )
    .await;
    assert!(
        status
            .error()
            .unwrap()
            .to_string()
            .ends_with("answered 400 Bad Request: no_text")
    );

    let mut wrong =
        slack_sink(json!({"url": slack.url("wrongToken"), "min_interval": "0ms", "retries": 3}));
    let status = deliver(&mut wrong, vec![reading("x", 1.0)]).await;
    let text = status.error().unwrap().to_string();
    assert!(
        text.ends_with("answered 403 Forbidden: invalid_token"),
        "{text}"
    );
    assert_eq!(slack.requests().len(), 3, "4xx answers are not retried");
    assert!(!text.contains("wrongToken"));
}

#[tokio::test]
async fn the_url_never_shows() {
    let port = testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/services/T000/B000/{TOKEN}");
    let mut sink = slack_sink(
        json!({"url": url, "retries": 1, "retry_interval": "10ms", "min_interval": "0ms"}),
    );
    assert!(!format!("{sink:?}").contains(TOKEN));
    let status = deliver(&mut sink, vec![reading("x", 1.0)]).await;
    let text = status.error().unwrap().to_string();
    assert!(text.contains("Connection refused"), "{text}");
    assert!(
        !text.contains(TOKEN) && !text.contains("/services/"),
        "{text}"
    );
    let report = sink.check(Duration::from_secs(2)).await;
    assert!(!report.to_string().contains(TOKEN), "{report}");
}

#[tokio::test]
async fn check_passes_without_posting() {
    let slack = Slack::start(None).await;
    let mut sink = slack_sink(json!({"url": slack.url(TOKEN)}));
    let report = sink.check(Duration::from_secs(5)).await;
    assert!(report.is_ok(), "{report}");
    let last = report.steps.last().unwrap();
    assert_eq!(
        last.name,
        format!(
            "post an empty message to the Slack webhook at 127.0.0.1:{} (nothing is posted)",
            slack.port
        )
    );
    assert_eq!(
        last.outcome,
        CheckOutcome::Passed(
            "the webhook exists (Slack refused the empty message with `no_text`)".into()
        )
    );
    assert!(slack.posted().is_empty());
}

async fn check_failure(url: String) -> (String, FailureKind, String) {
    let mut sink = slack_sink(json!({"url": url}));
    let report = sink.check(Duration::from_secs(5)).await;
    // The webhook URL is the secret: its path never shows.
    let text = report.to_string();
    assert!(
        !text.contains(TOKEN) && !text.contains("revokedToken") && !text.contains("/services/"),
        "{text}"
    );
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

#[tokio::test]
async fn check_wrong_port() {
    let port = testkit::free_port();
    let (step, kind, reason) = check_failure(format!(
        "http://127.0.0.1:{port}/services/T000/B000/{TOKEN}"
    ))
    .await;
    assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Unreachable);
    assert_eq!(
        reason,
        format!("127.0.0.1:{port}: Connection refused (os error 111)")
    );
}

#[tokio::test]
async fn check_wrong_token_is_auth_refused() {
    let slack = Slack::start(None).await;
    let (_, kind, reason) = check_failure(slack.url("revokedToken")).await;
    assert_eq!(kind, FailureKind::AuthRefused);
    assert_eq!(reason, "Slack answered 403 Forbidden: invalid_token");
}

#[tokio::test]
async fn check_unknown_webhook_is_not_found() {
    let slack = Slack::start(None).await;
    let (_, kind, reason) = check_failure(format!(
        "http://127.0.0.1:{}/services/T999/B000/{TOKEN}",
        slack.port
    ))
    .await;
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(reason, "Slack answered 404 Not Found: no_team");
    let (_, kind, reason) =
        check_failure(format!("http://127.0.0.1:{}/hooks/nothing", slack.port)).await;
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(reason, "Slack answered 404 Not Found: no_service");
}

#[tokio::test]
async fn check_tls_to_a_plain_port() {
    let slack = Slack::start(None).await;
    let (step, kind, reason) = check_failure(format!(
        "https://127.0.0.1:{}/services/T000/B000/{TOKEN}",
        slack.port
    ))
    .await;
    assert_eq!(step, "TLS handshake with 127.0.0.1");
    assert_eq!(kind, FailureKind::Tls);
    assert!(
        reason.starts_with("received corrupt message of type InvalidContentType"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_to_slack_through_a_pipeline() {
    let slack = Slack::start(None).await;
    let source = source_generator::GeneratorSource::from_properties(&Properties::from_pairs([
        ("template", "iot"),
        ("interval", "0ms"),
        ("count", "5"),
        ("seed", "9"),
    ]))
    .unwrap();
    let sink = slack_sink(
        json!({"url": slack.url(TOKEN), "template": "{{ .device }}: {{ .number }}", "min_interval": "20ms"}),
    );
    let report = connector_core::Pipeline::new(source)
        .to(sink)
        .check_on_start(Duration::from_secs(5))
        .run()
        .await
        .unwrap();
    assert_eq!(report.metrics.records_out, 5);
    let posted = slack.posted();
    assert_eq!(posted.len(), 5);
    assert!(posted.iter().all(|(t, _)| t.starts_with("device_")));
}
