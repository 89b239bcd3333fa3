//! The http sink against real HTTP servers on 127.0.0.1 that record what
//! they receive: bodies, headers, methods, OAuth2, retries, parallelism,
//! per-key order, timeouts, batching, TLS.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use common::{Reply, Server, TestCa, batch, numbered, record};
use connector_core::{AckStatus, Batch, Pipeline, Properties, Record, Sink, Value};
use serde_json::json;
use sink_http::HttpSink;

fn sink(props: serde_json::Value) -> HttpSink {
    HttpSink::from_properties(&Properties::from_json("http sink", props).unwrap()).unwrap()
}

fn error_text(status: &AckStatus) -> String {
    status
        .error()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "delivered".into())
}

#[tokio::test]
async fn renders_templates_headers_method_and_content_type() {
    let server = Server::start(|_| Reply::ok()).await;
    let mut sink = sink(json!({
        "url": server.url("/hooks/alert"),
        "http_method": "PUT",
        "content_type": "text/plain; charset=utf-8",
        "payload_field": "{{ .device }} is at {{.number}} ({{ .meta.site }}, {{ .missing }})",
        "http_header": {"X-Source": "timeplus", "X-Api-Key": "k-123"},
    }));
    let (b, outcome) = batch(vec![record(&[
        ("device", Value::from("device_1")),
        ("number", Value::Float64(42.5)),
        ("meta", Value::from_json(json!({"site": "lab"}))),
    ])]);
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());

    let got = server.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/hooks/alert");
    assert_eq!(r.text(), "device_1 is at 42.5 (lab, <no value>)");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-source"), Some("timeplus"));
    assert_eq!(r.header("x-api-key"), Some("k-123"));
    assert!(
        r.header("user-agent")
            .unwrap()
            .starts_with("rust-connectors/")
    );
    assert!(
        !format!("{sink:?}").contains("k-123"),
        "header secrets stay out of Debug"
    );
}

#[tokio::test]
async fn whole_record_as_json_by_default_with_every_method() {
    let server = Server::start(|_| Reply::status(204)).await;
    for method in ["POST", "PUT", "PATCH", "GET", "DELETE"] {
        let mut sink = sink(json!({"url": server.url("/in"), "http_method": method}));
        let (b, outcome) = batch(vec![record(&[
            ("id", Value::Int64(7)),
            ("name", Value::from("ada")),
            ("ok", Value::Boolean(true)),
        ])]);
        sink.send(b).await.unwrap();
        sink.close().await.unwrap();
        assert!(outcome.await.is_delivered(), "{method}");
    }
    let got = server.received();
    let methods: Vec<String> = got.iter().map(|r| r.method.to_string()).collect();
    assert_eq!(methods, ["POST", "PUT", "PATCH", "GET", "DELETE"]);
    for r in &got {
        assert_eq!(
            r.text(),
            r#"{"id":7,"name":"ada","ok":true}"#,
            "{}",
            r.method
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn oauth2_token_fetched_once_reused_and_refreshed_after_expiry() {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let server = Server::start(move |r| {
        if r.path == "/token" {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            // Lives one second: refreshed a tenth of that early.
            return Reply::ok().header("content-type", "application/json").body(
                json!({"access_token": format!("t{n}"), "token_type": "Bearer", "expires_in": 1})
                    .to_string(),
            );
        }
        let current = format!("Bearer t{}", counter.load(Ordering::SeqCst));
        if r.header("authorization") == Some(current.as_str()) {
            Reply::ok()
        } else {
            Reply::status(401)
        }
    })
    .await;
    let mut sink = sink(json!({
        "url": server.url("/api"),
        "oauth2": {"enabled": true, "client_key": "my-client", "client_secret": "my s3cret",
                   "token_url": server.url("/token"), "scopes": ["read", "write"]},
    }));
    let (b, outcome) = batch(numbered(3));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    assert_eq!(
        sink.client().tokens_fetched(),
        1,
        "one token for three requests"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    assert_eq!(sink.client().tokens_fetched(), 2, "expired token replaced");

    let auth: Vec<String> = server
        .received_at("/api")
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(auth, ["Bearer t1", "Bearer t1", "Bearer t1", "Bearer t2"]);

    let token_request = &server.received_at("/token")[0];
    assert_eq!(token_request.method, "POST");
    assert_eq!(
        token_request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: HashMap<String, String> = url::form_urlencoded::parse(&token_request.body)
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "read write");
    // RFC 6749 §2.3.1: form-encoded id and secret in HTTP Basic.
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("my-client:my+s3cret");
    assert_eq!(
        token_request.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
}

#[tokio::test]
async fn oauth2_token_refreshed_once_on_401() {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let server = Server::start(move |r| match r.path.as_str() {
        "/token" => {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::ok()
                .body(json!({"access_token": format!("t{n}"), "expires_in": 3600}).to_string())
        }
        // t1 was revoked on the server before it expired.
        "/api" if r.header("authorization") == Some("Bearer t1") => Reply::status(401),
        "/api" => Reply::ok(),
        // The server that never accepts any token.
        _ => Reply::status(401).body("token not valid for this audience"),
    })
    .await;
    let oauth = json!({"enabled": true, "client_key": "c", "client_secret": "s",
                       "token_url": server.url("/token")});
    let mut good = sink(json!({"url": server.url("/api"), "oauth2": oauth}));
    let (b, outcome) = batch(numbered(1));
    good.send(b).await.unwrap();
    good.flush().await.unwrap();
    let status = outcome.await;
    assert!(status.is_delivered(), "{}", error_text(&status));
    assert_eq!(good.client().tokens_fetched(), 2);
    assert_eq!(server.received_at("/api").len(), 2);

    let mut never = sink(
        json!({"url": server.url("/never"), "oauth2": oauth, "retries": 3, "retry_interval": "10ms"}),
    );
    let (b, outcome) = batch(numbered(1));
    never.send(b).await.unwrap();
    never.flush().await.unwrap();
    let status = outcome.await;
    assert!(matches!(status, AckStatus::Rejected(_)), "{status:?}");
    assert!(
        error_text(&status)
            .contains("answered 401 Unauthorized even with a freshly fetched OAuth2 token"),
        "{}",
        error_text(&status)
    );
    assert_eq!(
        server.received_at("/never").len(),
        2,
        "one refresh, no retries"
    );
}

#[tokio::test]
async fn oauth2_endpoint_refusing_fails_without_sending_or_leaking() {
    let server = Server::start(|r| match r.path.as_str() {
        "/token" => Reply::status(401)
            .header("content-type", "application/json")
            .body(
                r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
            ),
        _ => Reply::ok(),
    })
    .await;
    let mut sink = sink(json!({
        "url": server.url("/api"),
        "oauth2": {"enabled": true, "client_key": "c", "client_secret": "hunter2",
                   "token_url": server.url("/token")},
        "retries": 2, "retry_interval": "10ms",
    }));
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    let status = outcome.await;
    assert!(matches!(status, AckStatus::Failed(_)), "{status:?}");
    let text = error_text(&status);
    assert_eq!(
        text,
        format!(
            "http sink: fetch an OAuth2 token from {}: the token endpoint answered 401 Unauthorized: invalid_client (Client authentication failed)",
            server.url("/token")
        )
    );
    assert!(server.received_at("/api").is_empty());
    // Basic first, then the form parameters, as servers differ; no retries
    // for refused credentials.
    assert_eq!(server.received_at("/token").len(), 2);
    assert!(!text.contains("hunter2"));
}

#[tokio::test]
async fn retries_wait_the_configured_interval() {
    let server = Server::start(|r| {
        if r.n < 2 {
            Reply::status(503).body("warming up")
        } else {
            Reply::ok()
        }
    })
    .await;
    let mut sink = sink(json!({
        "url": server.url("/in"), "retries": 3, "retry_interval": "300ms", "retry_backoff": "constant",
    }));
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    let got = server.received();
    assert_eq!(got.len(), 3);
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(300), "retried after {gap:?}");
    }
    assert!(
        got.iter().all(|r| r.text() == r#"{"n":0}"#),
        "same body each time"
    );
}

#[tokio::test]
async fn exponential_backoff_doubles_the_wait() {
    let server = Server::start(|r| {
        if r.n < 3 {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let mut sink = sink(json!({"url": server.url("/in"), "retries": 3, "retry_interval": "100ms"}));
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    let at: Vec<_> = server.received().iter().map(|r| r.at).collect();
    assert!(at[1] - at[0] >= Duration::from_millis(100));
    assert!(at[2] - at[1] >= Duration::from_millis(200));
    assert!(at[3] - at[2] >= Duration::from_millis(400));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = Server::start(|r| match r.n {
        0 => Reply::status(429)
            .header("retry-after", "1")
            .body("slow down"),
        1 => Reply::status(503).header("retry-after", "0"),
        _ => Reply::ok(),
    })
    .await;
    let mut sink = sink(json!({"url": server.url("/in"), "retries": 2, "retry_interval": "10ms"}));
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    let at: Vec<_> = server.received().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 3);
    assert!(
        at[1] - at[0] >= Duration::from_secs(1),
        "waited {:?}",
        at[1] - at[0]
    );
}

#[tokio::test]
async fn no_retry_on_400_and_the_answer_is_in_the_rejection() {
    let server =
        Server::start(|_| Reply::status(400).body("field `temperature` is required\n")).await;
    let mut sink = sink(json!({"url": server.url("/in"), "retries": 5, "retry_interval": "10ms"}));
    let records = vec![
        Record::from_pairs([("n", Value::Int64(1))])
            .with_position(connector_core::Position::Sequence(41)),
    ];
    let (b, outcome) = batch(records);
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    let status = outcome.await;
    assert!(matches!(status, AckStatus::Rejected(_)), "{status:?}");
    assert_eq!(
        error_text(&status),
        format!(
            "http sink: rejected record #41: POST {} answered 400 Bad Request: field `temperature` is required",
            server.url("/in")
        )
    );
    assert_eq!(server.received().len(), 1, "a 400 is never retried");
}

#[tokio::test]
async fn long_error_answers_are_cut() {
    let server = Server::start(|_| Reply::status(422).body("e".repeat(10_000))).await;
    let mut sink = sink(json!({"url": server.url("/in")}));
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    let text = error_text(&outcome.await);
    assert!(text.ends_with("... (10000 bytes in all)"), "{text}");
    assert!(text.len() < 1300, "{}", text.len());
}

#[tokio::test]
async fn exhausted_retries_fail_the_batch() {
    let server = Server::start(|_| Reply::status(502).body("bad gateway")).await;
    let mut sink = sink(
        json!({"url": server.url("/in?token=s3cret"), "retries": 2, "retry_interval": "10ms"}),
    );
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    let status = outcome.await;
    assert!(matches!(status, AckStatus::Failed(_)), "{status:?}");
    let text = error_text(&status);
    let shown = format!("{}?...", server.url("/in"));
    assert_eq!(
        text,
        format!(
            "http sink: POST {shown} (record 0 of its batch): POST {shown} answered 502 Bad Gateway: bad gateway (gave up after 3 attempts)"
        )
    );
    assert!(!text.contains("s3cret"));
    assert_eq!(server.received().len(), 3);
}

/// Whether the server accepts its request number `n`: a fixed
/// pseudo-random half (SplitMix64) is refused with 503.
fn accepts(n: usize) -> bool {
    let mut z = (n as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 2 == 1
}

#[tokio::test]
async fn a_server_failing_half_the_requests_gets_every_record_once_per_success() {
    let server = Server::start(|r| {
        if accepts(r.n) {
            Reply::ok()
        } else {
            Reply::status(503)
        }
    })
    .await;
    let mut sink = sink(json!({
        "url": server.url("/in"), "paralism": 8, "retries": 30, "retry_interval": "5ms",
        "retry_max_interval": "20ms",
    }));
    let mut outcomes = Vec::new();
    for chunk in numbered(300).chunks(50) {
        let (b, outcome) = batch(chunk.to_vec());
        sink.send(b).await.unwrap();
        outcomes.push(outcome);
    }
    sink.close().await.unwrap();
    for outcome in outcomes {
        assert!(outcome.await.is_delivered());
    }
    // What the server accepted: every record exactly once.
    let all = server.received();
    let refused = all.iter().filter(|r| !accepts(r.n)).count();
    assert!(
        refused > 100,
        "about half refused: {refused} of {}",
        all.len()
    );
    let mut accepted: BTreeMap<i64, usize> = BTreeMap::new();
    for r in all.iter().filter(|r| accepts(r.n)) {
        *accepted.entry(r.json()["n"].as_i64().unwrap()).or_default() += 1;
    }
    assert_eq!(accepted.len(), 300);
    assert!(accepted.values().all(|&c| c == 1), "{accepted:?}");
    assert_eq!(all.len() - refused, 300);
}

#[tokio::test]
async fn parallelism_n_gives_n_in_flight_and_never_more() {
    for n in [1usize, 4, 16] {
        let server = Server::start(|_| Reply::ok().delay(Duration::from_millis(40))).await;
        let mut sink = sink(json!({"url": server.url("/in"), "paralism": n}));
        let (b, outcome) = batch(numbered(4 * n as i64));
        sink.send(b).await.unwrap();
        sink.flush().await.unwrap();
        assert!(outcome.await.is_delivered());
        assert_eq!(server.received().len(), 4 * n);
        assert_eq!(server.peak_in_flight(), n, "paralism {n}");
    }
    // The alias.
    let server = Server::start(|_| Reply::ok().delay(Duration::from_millis(40))).await;
    let mut sink = sink(json!({"url": server.url("/in"), "parallelism": 3}));
    let (b, outcome) = batch(numbered(12));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    assert_eq!(server.peak_in_flight(), 3);
}

#[tokio::test]
async fn records_with_the_same_key_keep_their_order() {
    // Later records are answered sooner, so order can only come from the sink.
    let delay = |seq: u64| Duration::from_millis(40u64.saturating_sub(seq));
    let server = Server::start(move |r| {
        let seq: u64 = r.text().split_once(':').unwrap().1.parse().unwrap();
        Reply::ok().delay(delay(seq))
    })
    .await;
    let mut sink = sink(json!({
        "url": server.url("/in"), "paralism": 8, "payload_field": "{{ .k }}:{{ .seq }}",
    }));
    let records: Vec<Record> = (0..40)
        .map(|seq| {
            let k = format!("k{}", seq % 4);
            Record::from_pairs([("k", Value::from(k.clone())), ("seq", Value::Int64(seq))])
                .with_key(k.into_bytes())
        })
        .collect();
    let (b, outcome) = batch(records);
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    let got = server.received();
    assert_eq!(got.len(), 40);
    let mut per_key: HashMap<String, Vec<(u64, tokio::time::Instant)>> = HashMap::new();
    for r in &got {
        let body = r.text();
        let (key, seq) = body.split_once(':').unwrap();
        per_key
            .entry(key.to_owned())
            .or_default()
            .push((seq.parse().unwrap(), r.at));
    }
    for (key, requests) in &per_key {
        let seqs: Vec<u64> = requests.iter().map(|(s, _)| *s).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "key {key} out of order");
        assert_eq!(seqs.len(), 10);
        // The next request of a key comes only after the previous answer.
        for pair in requests.windows(2) {
            assert!(
                pair[1].1 - pair[0].1 >= delay(pair[0].0),
                "key {key} overlapped"
            );
        }
    }
    // Keys run side by side: 4 keys on 8 slots, one request per key at a time.
    assert_eq!(server.peak_in_flight(), 4);
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let server = Server::start(|_| Reply::ok().delay(Duration::from_secs(3))).await;
    let mut sink = sink(
        json!({"url": server.url("/slow"), "timeout": "200ms", "retries": 1, "retry_interval": "10ms"}),
    );
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    let status = outcome.await;
    assert!(matches!(status, AckStatus::Failed(_)));
    let text = error_text(&status);
    assert!(
        text.ends_with("no answer within 200ms (`timeout`) (gave up after 2 attempts)"),
        "{text}"
    );
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn connection_refused_is_retried_and_reported() {
    let port = testkit::free_port();
    let mut sink = sink(
        json!({"url": format!("http://127.0.0.1:{port}/in"), "retries": 1, "retry_interval": "10ms"}),
    );
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    let text = error_text(&outcome.await);
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.ends_with("(gave up after 2 attempts)"), "{text}");
}

#[tokio::test]
async fn batch_formats_send_several_records_per_request() {
    let server = Server::start(|_| Reply::ok()).await;
    let mut array =
        sink(json!({"url": server.url("/array"), "batch_format": "json_array", "batch_size": 3}));
    assert_eq!(array.batch_limits().max_records, 3);
    let (b, outcome) = batch(numbered(7));
    array.send(b).await.unwrap();
    array.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    let bodies: Vec<serde_json::Value> = server
        .received_at("/array")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(
        bodies,
        [
            json!([{"n": 0}, {"n": 1}, {"n": 2}]),
            json!([{"n": 3}, {"n": 4}, {"n": 5}]),
            json!([{"n": 6}])
        ]
    );

    let mut ndjson = sink(
        json!({"url": server.url("/nd"), "batch_format": "ndjson", "batch_size": 10,
                                 "payload_field": "{\"v\": {{ .n }}}"}),
    );
    let (b, outcome) = batch(numbered(3));
    ndjson.send(b).await.unwrap();
    ndjson.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    let got = server.received_at("/nd");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text(), "{\"v\": 0}\n{\"v\": 1}\n{\"v\": 2}\n");
    assert_eq!(got[0].header("content-type"), Some("application/x-ndjson"));
}

#[tokio::test]
async fn one_bad_record_rejects_its_batch_but_the_others_arrive() {
    let server = Server::start(|r| {
        if r.json()["n"] == 2 {
            Reply::status(400).body("bad n")
        } else {
            Reply::ok()
        }
    })
    .await;
    let mut sink = sink(json!({"url": server.url("/in"), "paralism": 2}));
    let (b, outcome) = batch(numbered(5));
    sink.send(b).await.unwrap();
    sink.flush().await.unwrap();
    let status = outcome.await;
    assert!(matches!(status, AckStatus::Rejected(_)));
    assert!(
        error_text(&status).contains("rejected record 2 of its batch"),
        "{}",
        error_text(&status)
    );
    assert_eq!(server.received().len(), 5);
}

#[tokio::test]
async fn https_with_a_private_ca() {
    let ca = TestCa::new();
    let server = Server::start_tls(&ca, |_| Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());

    let mut trusted =
        sink(json!({"url": server.url("/in"), "tls": {"ca_cert": ca_file.to_str().unwrap()}}));
    let (b, outcome) = batch(numbered(1));
    trusted.send(b).await.unwrap();
    trusted.flush().await.unwrap();
    assert!(outcome.await.is_delivered());

    let mut untrusted = sink(json!({"url": server.url("/in")}));
    let (b, outcome) = batch(numbered(1));
    untrusted.send(b).await.unwrap();
    untrusted.flush().await.unwrap();
    let text = error_text(&outcome.await);
    assert!(
        text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );

    let mut unverified = sink(json!({"url": server.url("/in"), "tls.skip_verify_server": true}));
    let (b, outcome) = batch(numbered(1));
    unverified.send(b).await.unwrap();
    unverified.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn dropping_the_sink_fails_what_is_still_waiting() {
    let server = Server::start(|_| Reply::status(503)).await;
    let mut sink = sink(json!({"url": server.url("/in"), "retries": 100, "retry_interval": "1h"}));
    let (b, outcome) = batch(numbered(1));
    sink.send(b).await.unwrap();
    while server.received().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(sink);
    let text = error_text(&outcome.await);
    assert!(
        text.contains("the sink was shut down before the request was delivered"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_to_webhook_through_a_pipeline() {
    let server = Server::start(|_| Reply::ok().delay(Duration::from_millis(2))).await;
    let source = source_generator::GeneratorSource::from_properties(&Properties::from_pairs([
        ("template", "iot"),
        ("interval", "0ms"),
        ("count", "200"),
        ("seed", "3"),
    ]))
    .unwrap();
    let sink = sink(json!({
        "url": server.url("/hook"),
        "payload_field": "{\"device\": \"{{ .device }}\", \"value\": {{ .number }}}",
        "paralism": 4,
    }));
    let report = Pipeline::new(source)
        .to(sink)
        .check_on_start(Duration::from_secs(5))
        .run()
        .await
        .unwrap();
    assert_eq!(report.metrics.records_out, 200);
    let posts: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 200);
    for r in &posts {
        let v = r.json();
        assert!(v["device"].as_str().unwrap().starts_with("device_"));
        assert!(v["value"].as_f64().unwrap() <= 100.0);
    }
    assert!(server.peak_in_flight() <= 4);
}

#[tokio::test]
async fn an_empty_batch_is_delivered_at_once() {
    let mut sink = sink(json!({"url": "http://127.0.0.1:9/never"}));
    let (b, outcome) = batch(Vec::new());
    sink.send(b).await.unwrap();
    assert!(outcome.await.is_delivered());
    let _ = Batch::default();
}
