//! `connect run` as a user runs it: pipelines from files and from flags,
//! the progress and summary it prints, its metrics endpoint, signals and
//! exit codes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Running, connect, json_lines, run, s, write};

const T: Duration = Duration::from_secs(60);

#[test]
fn generator_to_file_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let path = write(
        dir.path(),
        "gen.yaml",
        &format!(
            "source:\n  type: stream_generator\n  template: iot\n  interval: 0ms\n  count: 1000\n  seed: 7\n  batch_size: 100\n\
             sinks:\n  - type: file\n    path: {}\n",
            s(&out_file)
        ),
    );
    let out = run(&["run", s(&path)], T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let lines = json_lines(&out_file);
    assert_eq!(lines.len(), 1000);
    for line in &lines {
        let object = line.as_object().unwrap();
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            ["device", "number", "time"],
            "{line}"
        );
        assert!(line["device"].as_str().unwrap().starts_with("device_"));
        let n = line["number"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&n));
    }
    assert!(
        out.stderr
            .contains("connect: finished (end of input) after ")
            && out.stderr.contains(": 1000 records in ("),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("), 1000 out ("), "{}", out.all());

    // The same seed gives the same records; a second run appends.
    let out = run(&["run", s(&path)], T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let again = json_lines(&out_file);
    assert_eq!(again.len(), 2000);
    let strip = |v: &serde_json::Value| (v["device"].clone(), v["number"].clone());
    assert_eq!(
        again[..1000].iter().map(strip).collect::<Vec<_>>(),
        again[1000..].iter().map(strip).collect::<Vec<_>>()
    );
}

#[test]
fn a_pipeline_from_flags_with_transforms() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let out = run(
        &[
            "run",
            "--source",
            "stream_generator",
            "-p",
            "template=devops",
            "-p",
            "interval=0ms",
            "-p",
            "count=500",
            "--filter",
            "region == 'eu-central-1'",
            "--filter",
            "usage_user >= 50",
            "--select",
            "hostname,region,usage_user",
            "--rename",
            "usage_user=user",
            "--sink",
            "file",
            "-p",
            &format!("path={}", s(&out_file)),
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let lines = json_lines(&out_file);
    assert!(!lines.is_empty() && lines.len() < 500, "{}", lines.len());
    for line in &lines {
        assert_eq!(
            line.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["hostname", "region", "user"]
        );
        assert_eq!(line["region"], "eu-central-1");
        assert!(line["user"].as_f64().unwrap() >= 50.0);
    }
    assert!(
        out.stderr.contains(": 500 records in (")
            && out.stderr.contains(&format!("), {} out (", lines.len())),
        "{}",
        out.all()
    );
}

#[test]
fn console_sink_prints_to_stdout_and_logs_go_to_stderr() {
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
            "count=3",
            "--sink",
            "console",
            "-p",
            "template={{ .username }}@{{ .city }}",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.all());
    for line in lines {
        let (user, city) = line.split_once('@').unwrap();
        assert!(["user1", "user2"].contains(&user), "{line}");
        assert!(["Shanghai", "Beijing"].contains(&city), "{line}");
    }
    assert!(out.stderr.contains("connect: finished (end of input)"));
}

#[test]
fn progress_lines_metrics_endpoint_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let path = write(
        dir.path(),
        "slow.toml",
        &format!(
            "name = \"metrics-demo\"\n[source]\ntype = \"stream_generator\"\ntemplate = \"iot\"\ninterval = \"5ms\"\n\
             [[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            s(&out_file)
        ),
    );
    let port = testkit::free_port();
    let mut command = connect();
    command.args([
        "run",
        s(&path),
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
        "--status-interval",
        "200ms",
    ]);
    let running = Running::start(command);
    running.wait_for("a status line", T, |_, err| err.contains("status: in "));
    let status = running
        .stderr()
        .lines()
        .find(|l| l.contains("status: in "))
        .unwrap()
        .to_owned();
    assert!(
        status.contains(" delivered · 0 errors · ") && status.contains(" batches in flight · "),
        "{status}"
    );

    let metrics = loop {
        let body = http_get(port, "/metrics");
        if value_of(&body, "connect_records_out_total") > 0.0 {
            break body;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(
        metrics.contains("content-type: text/plain; version=0.0.4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE connect_records_in_total counter\nconnect_records_in_total{pipeline=\"metrics-demo\"} "),
        "{metrics}"
    );
    assert!(metrics.contains("connect_batches_in_flight{pipeline=\"metrics-demo\"} "));
    assert!(http_get(port, "/other").starts_with("HTTP/1.1 404"));

    running.terminate();
    let out = running.wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stderr
            .contains("connect: stopping: draining, flushing and committing"),
        "{}",
        out.all()
    );
    // Everything read was delivered before the exit: the summary's counts
    // match the file.
    let written = json_lines(&out_file).len();
    assert!(
        out.stderr.contains(" records in (") && out.stderr.contains(&format!("), {written} out (")),
        "{written} lines written\n{}",
        out.all()
    );
    assert!(
        out.stderr
            .contains("connect: finished (shutdown requested)")
    );
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics endpoint");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

fn value_of(exposition: &str, metric: &str) -> f64 {
    exposition
        .lines()
        .find(|l| l.starts_with(&format!("{metric}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // 2: a configuration error, before anything runs.
    let out = run(
        &["run", "--source", "stream_generator", "--sink", "console"],
        T,
    );
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert_eq!(
        out.stderr,
        "command line: source: stream_generator source: property `template`: required property is missing\n"
    );
    // 2: a usage error.
    let out = run(&["run", "--sourc", "x"], T);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(
        out.stderr.contains("unexpected argument '--sourc'"),
        "{}",
        out.all()
    );
    let out = run(
        &[
            "run",
            "--source",
            "stream_generator",
            "--sink",
            "console",
            "--status-interval",
            "0s",
        ],
        T,
    );
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(
        out.stderr.contains(
            "invalid value '0s' for '--status-interval <DURATION>': must be longer than 0"
        ),
        "{}",
        out.all()
    );
    // 1: a runtime failure (the file cannot be opened).
    let bad_path = dir.path().join("no/such/dir/out.jsonl");
    let out = run(
        &[
            "run",
            "--source",
            "stream_generator",
            "-p",
            "template=iot",
            "-p",
            "interval=0ms",
            "-p",
            "count=10",
            "--sink",
            "file",
            "-p",
            &format!("path={}", s(&bad_path)),
        ],
        T,
    );
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(
        out.stderr.contains(&format!(
            "connect: pipeline failed: file sink: open {}: No such file or directory",
            bad_path.display()
        )),
        "{}",
        out.all()
    );
    // 1: the metrics address is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(
        &[
            "run",
            "--source",
            "stream_generator",
            "-p",
            "template=iot",
            "--sink",
            "console",
            "--metrics-addr",
            &addr,
        ],
        T,
    );
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(
        out.stderr
            .contains(&format!("connect: cannot serve metrics on {addr}: ")),
        "{}",
        out.all()
    );
    // 0: help.
    let out = run(&["--help"], T);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("Exit codes: 0 success"));
}

#[test]
fn batch_options_shape_the_sink_batches() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let path = write(
        dir.path(),
        "batches.toml",
        &format!(
            "[source]\ntype = \"stream_generator\"\ntemplate = \"iot\"\ninterval = \"0ms\"\ncount = 1000\nbatch_size = 1000\n\
             [[sinks]]\ntype = \"file\"\npath = \"{}\"\n[pipeline]\nbatch_size = 100\n",
            s(&out_file)
        ),
    );
    let out = run(&["run", s(&path)], T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(json_lines(&out_file).len(), 1000);
    // One source batch of 1000 became ten sink batches of 100.
    assert!(
        out.stderr
            .contains("batches: 10 delivered, 0 failed, 0 rejected"),
        "{}",
        out.all()
    );
}
