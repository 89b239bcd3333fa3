//! `Sink::check` of the http sink against real servers on 127.0.0.1:
//! success, wrong port, refused OAuth2 credentials, unknown endpoint, TLS
//! to a plain port, an unresolvable host; never a record sent.

mod common;

use std::time::Duration;

use common::{Reply, Server, TestCa};
use connector_core::check::{CheckOutcome, CheckReport, FailureKind};
use connector_core::{Properties, Sink};
use serde_json::json;
use sink_http::HttpSink;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn check(props: serde_json::Value) -> CheckReport {
    let mut sink =
        HttpSink::from_properties(&Properties::from_json("http sink", props).unwrap()).unwrap();
    sink.check(TIMEOUT).await
}

fn failure(report: &CheckReport) -> (String, FailureKind, String) {
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

/// A webhook that only takes POST on /hook, and an OAuth2 token endpoint.
async fn webhook() -> Server {
    Server::start(|r| match (r.method.as_str(), r.path.as_str()) {
        (_, "/token") if r.header("authorization") == Some("Basic aWQ6cmlnaHQ=") => {
            Reply::ok().body(json!({"access_token": "tok", "expires_in": 60}).to_string())
        }
        (_, "/token") => Reply::status(401).body(r#"{"error":"invalid_client"}"#),
        ("POST", "/hook") => Reply::ok(),
        (_, "/hook") => Reply::status(405),
        _ => Reply::status(404).body("no such webhook"),
    })
    .await
}

#[tokio::test]
async fn success_lists_every_step_and_sends_no_record() {
    let server = webhook().await;
    let report = check(json!({
        "url": server.url("/hook"),
        "oauth2": {"enabled": true, "client_key": "id", "client_secret": "right",
                   "token_url": server.url("/token")},
    }))
    .await;
    assert!(report.is_ok(), "{report}");
    let port = server.addr.port();
    let lines: Vec<String> = report.to_string().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "http sink: ok     resolve 127.0.0.1: 127.0.0.1".to_owned(),
            format!("http sink: ok     connect to 127.0.0.1:{port}: connected to 127.0.0.1:{port}"),
            format!(
                "http sink: ok     fetch an OAuth2 token from http://127.0.0.1:{port}/token: token received"
            ),
            format!(
                "http sink: ok     OPTIONS http://127.0.0.1:{port}/hook (no record sent): answered 405 Method Not Allowed"
            ),
        ]
    );
    let hook = server.received_at("/hook");
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0].method, "OPTIONS");
    assert!(hook[0].body.is_empty());
    assert_eq!(hook[0].header("authorization"), Some("Bearer tok"));
}

#[tokio::test]
async fn https_success_includes_the_handshake() {
    let ca = TestCa::new();
    let server = Server::start_tls(&ca, |_| Reply::status(405)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let report =
        check(json!({"url": server.url("/hook"), "tls.ca_cert": ca_file.to_str().unwrap()})).await;
    assert!(report.is_ok(), "{report}");
    let text = report.to_string();
    assert!(
        text.contains("ok     TLS handshake with 127.0.0.1: TLS 1.3, ALPN h2"),
        "{text}"
    );
}

#[tokio::test]
async fn wrong_port_is_unreachable() {
    let port = testkit::free_port();
    let report = check(json!({"url": format!("http://127.0.0.1:{port}/hook")})).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Unreachable);
    assert_eq!(
        reason,
        format!("127.0.0.1:{port}: Connection refused (os error 111)")
    );
}

#[tokio::test]
async fn refused_oauth2_credentials_are_auth_refused() {
    let server = webhook().await;
    let report = check(json!({
        "url": server.url("/hook"),
        "oauth2": {"enabled": true, "client_key": "id", "client_secret": "wrong-secret",
                   "token_url": server.url("/token")},
    }))
    .await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(
        step,
        format!("fetch an OAuth2 token from {}", server.url("/token"))
    );
    assert_eq!(kind, FailureKind::AuthRefused);
    assert_eq!(
        reason,
        "the token endpoint answered 401 Unauthorized: invalid_client"
    );
    assert!(!report.to_string().contains("wrong-secret"));
    assert!(
        server.received_at("/hook").is_empty(),
        "stops at the first failure"
    );
}

#[tokio::test]
async fn unknown_endpoint_is_not_found() {
    let server = webhook().await;
    let report = check(json!({"url": server.url("/no-such-hook")})).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(
        step,
        format!("OPTIONS {} (no record sent)", server.url("/no-such-hook"))
    );
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(reason, "answered 404 Not Found: no such webhook");
}

#[tokio::test]
async fn missing_token_endpoint_is_not_found() {
    let server = webhook().await;
    let report = check(json!({
        "url": server.url("/hook"),
        "oauth2": {"enabled": true, "client_key": "id", "client_secret": "right",
                   "token_url": server.url("/oauth/tokn")},
    }))
    .await;
    let (_, kind, reason) = failure(&report);
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(
        reason,
        "the token endpoint answered 404 Not Found: no such webhook"
    );
}

#[tokio::test]
async fn tls_to_a_plain_port_is_a_tls_error() {
    let server = webhook().await;
    let url = format!("https://127.0.0.1:{}/hook", server.addr.port());
    let report = check(json!({"url": url})).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "TLS handshake with 127.0.0.1");
    assert_eq!(kind, FailureKind::Tls);
    assert_eq!(
        reason,
        "received corrupt message of type InvalidContentType (is the server speaking plain HTTP? try an http:// URL)"
    );
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error() {
    let ca = TestCa::new();
    let server = Server::start_tls(&ca, |_| Reply::ok()).await;
    let report = check(json!({"url": server.url("/hook")})).await;
    let (_, kind, reason) = failure(&report);
    assert_eq!(kind, FailureKind::Tls);
    assert_eq!(reason, "invalid peer certificate: UnknownIssuer");
}

#[tokio::test]
async fn unresolvable_host_is_unreachable() {
    let report = check(json!({"url": "http://no-such-host.invalid/hook"})).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "resolve no-such-host.invalid");
    assert_eq!(kind, FailureKind::Unreachable);
    assert!(
        reason.starts_with("cannot resolve `no-such-host.invalid`: "),
        "{reason}"
    );
}

#[tokio::test]
async fn refused_credentials_at_the_endpoint_are_auth_refused() {
    let server = Server::start(|r| {
        if r.header("x-api-key") == Some("right") {
            Reply::status(405)
        } else {
            Reply::status(401).body("bad key")
        }
    })
    .await;
    let report =
        check(json!({"url": server.url("/hook"), "http_header": {"X-Api-Key": "wrong-key-4711"}}))
            .await;
    let (_, kind, reason) = failure(&report);
    assert_eq!(kind, FailureKind::AuthRefused);
    assert_eq!(reason, "answered 401 Unauthorized: bad key");
    assert!(!report.to_string().contains("wrong-key-4711"), "{report}");
}
