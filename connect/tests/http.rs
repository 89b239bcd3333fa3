//! `connect run` with the http sink against a loopback webhook, and the
//! Slack sink against a stand-in of Slack's incoming-webhook API.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::run;

const T: Duration = Duration::from_secs(60);

/// Received (path, authorization header, body).
type Received = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// A webhook on 127.0.0.1 that records every request and answers 200
/// (`ok` as Slack does).
fn webhook() -> (u16, Received, std::thread::JoinHandle<()>) {
    let received: Received = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = received.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new().route(
                "/{*path}",
                post(
                    move |axum::extract::Path(path): axum::extract::Path<String>,
                          headers: HeaderMap,
                          body: String| {
                        let store = store.clone();
                        async move {
                            let auth = headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            store.lock().unwrap().push((path, auth, body));
                            (StatusCode::OK, "ok")
                        }
                    },
                ),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // Serves until the test process ends.
            let _ = axum::serve(listener, app).await;
        });
    });
    (port, received, thread)
}

#[test]
fn generator_to_a_webhook_with_a_body_template_and_headers() {
    let (port, received, _server) = webhook();
    let out = run(
        &[
            "run",
            "--source",
            "stream_generator",
            "-p",
            "template=user_logins",
            "-p",
            "interval=0ms",
            "-p",
            "count=20",
            "--sink",
            "http",
            "-p",
            &format!("url=http://127.0.0.1:{port}/hooks/logins"),
            "-p",
            "payload_field={\"who\": \"{{ .username }}\", \"where\": \"{{ .city }}\"}",
            "-p",
            "http_header={\"Authorization\": \"Bearer t0ken-value\"}",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 20, "{}", out.all());
    for (path, auth, body) in &got {
        assert_eq!(path, "hooks/logins");
        assert_eq!(auth.as_deref(), Some("Bearer t0ken-value"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            ["user1", "user2"].contains(&v["who"].as_str().unwrap()),
            "{body}"
        );
        assert!(
            ["Shanghai", "Beijing"].contains(&v["where"].as_str().unwrap()),
            "{body}"
        );
    }
    assert!(!out.stderr.contains("t0ken-value"), "{}", out.all());
    assert!(out.stderr.contains("), 20 out ("), "{}", out.all());
}

#[test]
fn generator_to_slack_through_its_webhook_api() {
    let (port, received, _server) = webhook();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write(
        dir.path(),
        "slack.toml",
        "[source]\ntype = \"stream_generator\"\ntemplate = \"iot\"\ninterval = \"0ms\"\ncount = 3\n\
         [[sinks]]\ntype = \"slack\"\nurl = \"${SLACK_URL}\"\ntemplate = \"{{ .device }} reads {{ .number }}\"\nmin_interval = \"0ms\"\n",
    );
    let mut command = common::connect();
    command.args(["run", common::s(&path)]).env(
        "SLACK_URL",
        format!("http://127.0.0.1:{port}/services/T0/B0/secret-part"),
    );
    let out = common::Running::start(command).wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{}", out.all());
    for (path, _, body) in &got {
        assert_eq!(path, "services/T0/B0/secret-part");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with("device_") && text.contains(" reads "),
            "{body}"
        );
    }
    assert!(!out.stderr.contains("secret-part"), "{}", out.all());
}
