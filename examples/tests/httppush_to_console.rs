//! Runs the httppush_to_console example as a user would: start it, push
//! records with plain HTTP requests, stop it with SIGTERM, and check what
//! it printed and answered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sends one HTTP/1.1 request and returns the status code and body.
fn request(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to the example");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn httppush_to_console_prints_pushed_records_and_answers_like_the_spec() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = testkit::example_command("httppush_to_console")
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--token", "s3cret", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the example");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the example ended before listening"
        );
        if line.starts_with("listening:") {
            break;
        }
    }
    assert_eq!(
        line.trim(),
        format!("listening: POST http://127.0.0.1:{port}/api/data (Ctrl-C to stop)")
    );

    let auth = "Authorization: Bearer s3cret\r\n";
    assert_eq!(
        request(
            port,
            "POST",
            "/api/data",
            auth,
            r#"{"device": "d1", "temperature": 21.5}"#
        ),
        (200, "ok".into())
    );
    assert_eq!(
        request(
            port,
            "POST",
            "/api/data",
            auth,
            r#"[{"device": "d2"}, {"device": "d3"}]"#
        )
        .0,
        200
    );
    assert_eq!(request(port, "POST", "/api/data", "", "{}").0, 401);
    let (status, body) = request(port, "POST", "/api/data", auth, r#"{"device": "#);
    assert_eq!(status, 400);
    assert!(body.contains("cannot decode json"), "{body}");
    assert_eq!(request(port, "PUT", "/api/data", auth, "{}").0, 405);
    assert_eq!(request(port, "POST", "/api/other", auth, "{}").0, 404);

    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "the example failed: {rest}");
    let printed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        printed,
        vec![
            serde_json::json!({"device": "d1", "temperature": 21.5}),
            serde_json::json!({"device": "d2"}),
            serde_json::json!({"device": "d3"}),
        ]
    );
    assert!(rest.contains("done: 3 records"), "{rest}");
    // The port is free again.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
}
