//! `connect test PIPELINE`: every connector's connection check, one line
//! per step, against a real ClickHouse server.

mod common;

use std::time::Duration;

use common::{run, s, write};
use testkit::clickhouse::ClickHouse;

const T: Duration = Duration::from_secs(120);

fn pipeline(dir: &std::path::Path, hosts: &str, password: &str) -> std::path::PathBuf {
    write(
        dir,
        "to-clickhouse.toml",
        &format!(
            r#"
[source]
type = "stream_generator"
template = "iot"

[[sinks]]
type = "clickhouse"
hosts = ["{hosts}"]
username = "writer"
password = "{password}"
table_name = "events"
engine = "MergeTree()"
suffix = "ORDER BY tuple()"

[[sinks]]
type = "file"
path = "{}"
"#,
            s(&dir.join("copy.jsonl"))
        ),
    )
}

#[test]
fn a_good_pipeline_passes_every_step() {
    let server = ClickHouse::builder().user("writer", "s3cret-pw").start();
    let dir = tempfile::tempdir().unwrap();
    let hosts = format!("127.0.0.1:{}", server.http_port());
    let path = pipeline(dir.path(), &hosts, "s3cret-pw");
    let out = run(&["test", s(&path), "--timeout", "20s"], T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "stream_generator source: ok     nothing to check: this source uses no external service"
    );
    let clickhouse: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("clickhouse sink: "))
        .collect();
    assert!(clickhouse.len() >= 2, "{}", out.all());
    assert!(
        clickhouse
            .iter()
            .all(|l| l.starts_with("clickhouse sink: ok     ")),
        "{}",
        out.all()
    );
    assert!(
        lines.contains(
            &format!(
                "file sink: ok     directory {}: exists",
                dir.path().display()
            )
            .as_str()
        ),
        "{}",
        out.all()
    );
    let steps = lines.len() - 1;
    assert_eq!(
        *lines.last().unwrap(),
        format!("{}: all {steps} checks passed", path.display())
    );
    // A check writes nothing.
    assert!(!dir.path().join("copy.jsonl").exists());
    assert!(!out.stdout.contains("s3cret-pw") && !out.stderr.contains("s3cret-pw"));
}

#[test]
fn a_wrong_port_and_a_wrong_password_fail_with_the_reason() {
    let server = ClickHouse::builder().user("writer", "s3cret-pw").start();
    let dir = tempfile::tempdir().unwrap();

    let closed = testkit::free_port();
    let path = pipeline(dir.path(), &format!("127.0.0.1:{closed}"), "s3cret-pw");
    let out = run(&["test", s(&path), "--timeout", "5s"], T);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let failed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(": FAILED "))
        .collect();
    assert_eq!(failed.len(), 1, "{}", out.all());
    assert!(
        failed[0].starts_with("clickhouse sink: FAILED ") && failed[0].contains(": unreachable: "),
        "{}",
        out.all()
    );
    assert!(failed[0].contains(&closed.to_string()), "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        *lines.last().unwrap(),
        format!("{}: 1 of {} checks failed", path.display(), lines.len() - 1)
    );

    let path = pipeline(
        dir.path(),
        &format!("127.0.0.1:{}", server.http_port()),
        "wrong-pw",
    );
    let out = run(&["test", s(&path), "--timeout", "20s"], T);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let failed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(": FAILED "))
        .collect();
    assert_eq!(failed.len(), 1, "{}", out.all());
    assert!(
        failed[0].starts_with("clickhouse sink: FAILED ") && failed[0].contains(": auth refused: "),
        "{}",
        out.all()
    );
    assert!(!out.stdout.contains("wrong-pw") && !out.stderr.contains("wrong-pw"));
}

#[test]
fn a_configuration_error_exits_with_2_before_any_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        "[source]\ntype = \"stream_generator\"\ntemplate = \"iot\"\n[[sinks]]\ntype = \"clickhouse\"\nhosts = [\"127.0.0.1:1\"]\n",
    );
    let out = run(&["test", s(&path)], T);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "{}: sinks.0: clickhouse sink: property `table_name`: required property is missing\n",
            path.display()
        )
    );
}

#[test]
fn run_check_first_stops_before_reading_when_a_check_fails() {
    let dir = tempfile::tempdir().unwrap();
    let closed = testkit::free_port();
    let path = pipeline(dir.path(), &format!("127.0.0.1:{closed}"), "pw");
    let out = run(&["run", s(&path), "--check-first"], T);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "stream_generator source: ok     nothing to check: this source uses no external service"
    );
    assert!(
        lines[1].starts_with(&format!(
            "clickhouse sink: FAILED connect to http://127.0.0.1:{closed}: unreachable: "
        )),
        "{}",
        out.all()
    );
    assert_eq!(
        *lines.last().unwrap(),
        "connect: 1 of 4 connection checks failed; not starting"
    );
    assert!(!dir.path().join("copy.jsonl").exists());
}
