//! Runs the `embed` program as its user would, against a mock Kafka cluster
//! hosted by this test and a private ClickHouse server: every event lands
//! in the table once, the bad one is skipped, offsets are committed, and a
//! restart picks up only what was produced since.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_common::testing::{MockKafka, TestMessage};
use testkit::clickhouse::ClickHouse;

const TOPIC: &str = "events";

fn events(from: usize, to: usize) -> Vec<TestMessage> {
    (from..to)
        .map(|i| {
            TestMessage::new(format!(
                r#"{{"device": "device_{}", "number": {}.5, "time": "2024-05-01T00:00:{:02}Z", "extra": true}}"#,
                i % 3,
                i,
                i % 60
            ))
        })
        .collect()
}

fn start(kafka: &MockKafka, clickhouse: &ClickHouse) -> Child {
    Command::new(env!("CARGO_BIN_EXE_embed"))
        .env("KAFKA_BROKERS", kafka.bootstrap())
        .env("KAFKA_TOPIC", TOPIC)
        .env(
            "CLICKHOUSE_DSN",
            format!(
                "clickhouse://default:@127.0.0.1:{}/default",
                clickhouse.http_port()
            ),
        )
        .env("CLICKHOUSE_TABLE", "events")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the embed program")
}

/// Waits until the table holds `rows` rows, then stops the program with
/// SIGTERM and returns what it printed.
fn run_until(mut child: Child, clickhouse: &ClickHouse, rows: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let count = clickhouse
            .try_query("SELECT count() FROM events")
            .unwrap_or_default();
        if count == rows.to_string() {
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the table has {count:?} rows, expected {rows}; program output:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the program failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kafka_events_land_in_clickhouse_once_and_a_restart_resumes() {
    let kafka = MockKafka::start();
    kafka.create_topic(TOPIC, 3);
    let clickhouse = ClickHouse::start();

    let mut first = events(0, 3_000);
    first.insert(1_234, TestMessage::new("{not json"));
    kafka.produce(TOPIC, first);
    let printed = run_until(start(&kafka, &clickhouse), &clickhouse, 3_000);
    assert_eq!(printed.trim(), "delivered 3000 rows, skipped 1 bad events");

    // The table was created from the declared schema; undeclared keys are dropped.
    let columns: Vec<String> = clickhouse
        .query("DESCRIBE TABLE events")
        .lines()
        .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        columns[..2],
        ["device Nullable(String)", "number Nullable(Float64)"]
    );
    // DateTime64(6) where the server has it, DateTime on old servers.
    assert!(
        columns[2].starts_with("time Nullable(DateTime"),
        "{columns:?}"
    );
    let expected_sum: f64 = (0..3_000).map(|i| i as f64 + 0.5).sum();
    assert_eq!(
        clickhouse.query("SELECT sum(number), uniqExact(device), toUnixTimestamp(min(time)), toUnixTimestamp(max(time)) FROM events"),
        format!("{expected_sum}\t3\t1714521600\t1714521659")
    );
    let committed: BTreeMap<i32, i64> = kafka.committed("embed", TOPIC);
    assert_eq!(committed.values().sum::<i64>(), 3_001, "{committed:?}");

    // A restart reads only the new events: no row twice.
    kafka.produce(TOPIC, events(3_000, 3_500));
    let printed = run_until(start(&kafka, &clickhouse), &clickhouse, 3_500);
    assert_eq!(printed.trim(), "delivered 500 rows, skipped 0 bad events");
    assert_eq!(
        clickhouse.query("SELECT count(), uniqExact(number) FROM events"),
        "3500\t3500"
    );
}
