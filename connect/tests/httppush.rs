//! `connect run` with the httppush source, driven by an HTTP client over
//! a real socket, writing to a file.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Running, connect, json_lines, s, write};

const T: Duration = Duration::from_secs(60);

/// Sends one HTTP/1.1 request and returns (status, body).
fn post(port: u16, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to httppush");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn pushed_records_reach_the_file_before_the_client_is_answered() {
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("events.jsonl");
    let path = write(
        dir.path(),
        "push.yaml",
        &format!(
            "source:\n  type: httppush\n  http_server_ip: 127.0.0.1\n  http_server_port: {port}\n  endpoint: /api/events\n  wait_for_delivery: true\n\
             transforms:\n  - type: rename\n    fields: {{temperature: temp}}\n\
             sinks:\n  - type: file\n    path: {}\n",
            s(&out_file)
        ),
    );
    let mut command = connect();
    command.args(["run", s(&path)]);
    let running = Running::start(command);
    running.wait_for("the HTTP server", T, |_, _| {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let mut sent = 0;
    for request in 0..20 {
        let body: Vec<String> = (0..5)
            .map(|i| {
                let n = request * 5 + i;
                format!(r#"{{"device": "d{n}", "temperature": {n}.5}}"#)
            })
            .collect();
        let (status, answer) = post(port, "/api/events", &format!("[{}]", body.join(",")));
        assert_eq!((status, answer.as_str()), (200, "ok"));
        sent += 5;
        // Answered only after delivery: the records are already in the file.
        assert_eq!(json_lines(&out_file).len(), sent);
    }

    let (status, answer) = post(port, "/api/events", "[{\"device\": ");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("json"), "{answer}");
    let (status, _) = post(port, "/api/other", "{}");
    assert_eq!(status, 404);

    running.terminate();
    let out = running.wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let lines = json_lines(&out_file);
    assert_eq!(lines.len(), 100);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            serde_json::json!({"device": format!("d{n}"), "temp": n as f64 + 0.5})
        );
    }
    // The port is released when the pipeline stops.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
