//! `connect` with the kafka source and sink against librdkafka's mock
//! cluster (a Kafka protocol implementation listening on loopback):
//! kafka → file compared with what was produced, SIGTERM and resume from
//! the committed offsets, `connect test` steps and failures, the check at
//! start of `connect run`, and generator → kafka.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Output, Running, connect, json_lines, run, s, write};
use kafka_common::testing::{MockKafka, TestMessage, payload_text};
use serde_json::{Value as Json, json};

/// Generous: a group join on the mock cluster takes about 3 seconds.
const T: Duration = Duration::from_secs(120);

/// A kafka → file pipeline whose output path comes from `$OUT`, so that
/// two runs of one file (one consumer group) write to different files.
fn kafka_to_file(dir: &Path, name: &str, bootstrap: &str, topic: &str) -> PathBuf {
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            r#"
[source]
type = "kafka"
brokers = "{bootstrap}"
topic = "{topic}"
offset = "earliest"
data_type = "json"
"tls.disable" = true

[[sinks]]
type = "file"
path = "${{OUT}}"
"#
        ),
    )
}

fn start(pipeline: &Path, out: &Path) -> Running {
    let mut command = connect();
    command.args(["run", s(pipeline)]).env("OUT", out);
    Running::start(command)
}

/// The payloads produced to partition `p`: offset `i` holds `{"p": p, "i": i, ...}`.
fn order(p: i32, i: i64) -> Json {
    json!({
        "p": p,
        "i": i,
        "id": format!("order-{p}-{i}"),
        "customer": {"name": format!("Zoë {i}"), "tags": ["new", "eu"]},
        "amount": (i as f64) * 1.25,
        "paid": i % 2 == 0,
        "note": if i % 3 == 0 { Json::Null } else { json!("a \"quoted\" note, with\ttab") },
    })
}

fn messages(p: i32, range: std::ops::Range<i64>) -> Vec<TestMessage> {
    range
        .map(|i| {
            TestMessage::new(order(p, i).to_string())
                .key(format!("k{i}"))
                .partition(p)
        })
        .collect()
}

/// (partition → the `i` of each line, in file order) of a JSON-lines file.
fn by_partition(lines: &[Json]) -> BTreeMap<i32, Vec<i64>> {
    let mut out: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for line in lines {
        let p = line["p"].as_i64().unwrap_or_else(|| panic!("no p: {line}")) as i32;
        out.entry(p).or_default().push(line["i"].as_i64().unwrap());
    }
    out
}

fn stop(running: Running) -> Output {
    running.terminate();
    let out = running.wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stderr
            .contains("connect: stopping: draining, flushing and committing"),
        "{}",
        out.all()
    );
    out
}

#[test]
fn kafka_to_file_writes_exactly_what_was_produced() {
    let kafka = MockKafka::start();
    kafka.create_topic("orders", 3);
    for p in 0..3 {
        kafka.produce("orders", messages(p, 0..200));
    }
    // One message that is not JSON, in partition 1 at offset 200.
    kafka.produce(
        "orders",
        [TestMessage::new("{\"p\": 1, broken").partition(1)],
    );
    kafka.produce("orders", messages(1, 201..210));

    let dir = tempfile::tempdir().unwrap();
    let pipeline = write(
        dir.path(),
        "orders-to-file.toml",
        &format!(
            r#"
[source]
type = "kafka"
brokers = "{}"
topic = "orders"
offset = "earliest"
data_type = "json"
"tls.disable" = true

[[sinks]]
type = "file"
path = "{}"

[dead_letter]
type = "file"
path = "{}"
"#,
            kafka.bootstrap(),
            s(&dir.path().join("orders.jsonl")),
            s(&dir.path().join("bad.jsonl")),
        ),
    );
    let running = Running::start({
        let mut c = connect();
        c.args(["run", s(&pipeline)]);
        c
    });
    let out_file = dir.path().join("orders.jsonl");
    running.wait_for("609 lines", T, |_, _| json_lines(&out_file).len() >= 609);
    let out = stop(running);

    // Every produced record, once, equal to what was produced, and in
    // offset order within each partition.
    let lines = json_lines(&out_file);
    assert_eq!(lines.len(), 609, "{}", out.all());
    let mut expected: Vec<Json> = (0..3)
        .flat_map(|p| {
            let range: Vec<i64> = if p == 1 {
                (0..200).chain(201..210).collect()
            } else {
                (0..200).collect()
            };
            range.into_iter().map(move |i| order(p, i))
        })
        .collect();
    let key = |v: &Json| (v["p"].as_i64(), v["i"].as_i64());
    let mut written = lines.clone();
    written.sort_by_key(key);
    expected.sort_by_key(key);
    for (w, e) in written.iter().zip(&expected) {
        assert_eq!(w, e);
    }
    for (p, is) in by_partition(&lines) {
        let mut sorted = is.clone();
        sorted.sort_unstable();
        assert_eq!(is, sorted, "partition {p} out of order");
    }

    // The undecodable message went to the dead-letter file with where it was.
    let bad = json_lines(&dir.path().join("bad.jsonl"));
    assert_eq!(bad.len(), 1, "{}", out.all());
    assert_eq!(bad[0]["component"], "kafka source");
    assert!(
        bad[0]["position"]
            .as_str()
            .unwrap()
            .contains("orders partition 1 offset 200"),
        "{}",
        bad[0]
    );
    assert!(
        bad[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot decode json"),
        "{}",
        bad[0]
    );

    // The group is named after the pipeline, and at exit it has committed
    // every offset, the bad message's included.
    assert!(
        out.stderr.contains("timeplus-source-orders-to-file"),
        "{}",
        out.all()
    );
    assert_eq!(
        kafka.committed("timeplus-source-orders-to-file", "orders"),
        BTreeMap::from([(0, 200), (1, 210), (2, 200)])
    );
    assert!(
        out.stderr.contains(": 610 records in (")
            && out.stderr.contains(", 1 bad, 1 dead-lettered;"),
        "{}",
        out.all()
    );
}

/// The first run is stopped with SIGTERM while a producer is still writing;
/// the second run of the same pipeline resumes from the offsets the first
/// committed. Together the two files hold every produced record, and a
/// record is in both only if it was written but not yet committed when the
/// first run stopped.
#[test]
fn sigterm_commits_and_a_second_run_resumes_without_loss() {
    let kafka = MockKafka::start();
    kafka.create_topic("stream", 3);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = kafka_to_file(dir.path(), "resume", kafka.bootstrap(), "stream");
    let first_file = dir.path().join("first.jsonl");
    let second_file = dir.path().join("second.jsonl");

    // A producer that keeps writing 3 × 50 records every 20ms until told to stop.
    let stop_producing = Arc::new(AtomicBool::new(false));
    let producer = {
        let bootstrap = kafka.bootstrap().to_owned();
        let stop = stop_producing.clone();
        std::thread::spawn(move || {
            let mut next = [0_i64; 3];
            while !stop.load(Ordering::Relaxed) {
                for (p, n) in next.iter_mut().enumerate() {
                    let p = p as i32;
                    kafka_common::testing::produce(&bootstrap, "stream", messages(p, *n..*n + 50));
                    *n += 50;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            next
        })
    };

    let first = start(&pipeline, &first_file);
    first.wait_for("records flowing", T, |_, _| {
        json_lines(&first_file).len() >= 1500
    });
    let first_out = stop(first);
    stop_producing.store(true, Ordering::Relaxed);
    let produced = producer.join().unwrap();
    let total: i64 = produced.iter().sum();

    let group = "timeplus-source-resume";
    let committed = kafka.committed(group, "stream");
    let first_lines = by_partition(&json_lines(&first_file));
    let first_count: usize = first_lines.values().map(Vec::len).sum();
    assert!(
        (first_count as i64) < total,
        "the first run read everything before it was stopped ({first_count} of {total})"
    );
    let mut in_flight = 0;
    for p in 0..3 {
        let written = first_lines.get(&p).cloned().unwrap_or_default();
        // A prefix of the partition, in order, with nothing skipped.
        assert_eq!(
            written,
            (0..written.len() as i64).collect::<Vec<_>>(),
            "partition {p}"
        );
        // Nothing committed that was not written.
        let c = committed.get(&p).copied().unwrap_or(0);
        assert!(
            c <= written.len() as i64,
            "partition {p}: committed {c}, written {}",
            written.len()
        );
        in_flight += written.len() as i64 - c;
    }
    // A graceful stop commits every record the file made durable.
    assert_eq!(
        in_flight,
        0,
        "written but not committed at exit: {committed:?}\n{}",
        first_out.all()
    );

    // The second run starts at the committed offsets and reads the rest.
    // (It is assigned its partitions only after about 45 seconds: the mock
    // cluster, unlike a broker, waits almost a session timeout for the
    // member that left to rejoin before it rebalances.)
    let second = start(&pipeline, &second_file);
    let rest = total - committed.values().sum::<i64>();
    second.wait_for("the rest", T, |_, _| {
        json_lines(&second_file).len() as i64 >= rest
    });
    let second_out = stop(second);
    let second_lines = by_partition(&json_lines(&second_file));
    for p in 0..3 {
        let c = committed.get(&p).copied().unwrap_or(0);
        assert_eq!(
            second_lines.get(&p).cloned().unwrap_or_default(),
            (c..produced[p as usize]).collect::<Vec<_>>(),
            "partition {p} of the second run should resume at {c}\n{}",
            second_out.all()
        );
    }
    // Every produced record is in one of the files.
    let union: usize = first_count + second_lines.values().map(Vec::len).sum::<usize>();
    eprintln!(
        "produced {total}; first run wrote {first_count} and committed {committed:?}; second run wrote {}",
        union - first_count
    );
    assert_eq!(union as i64, total);
    assert_eq!(
        kafka.committed(group, "stream"),
        (0..3).map(|p| (p, produced[p as usize])).collect()
    );
}

/// A kafka → kafka pipeline (plus a file copy) for `connect test`.
fn kafka_to_kafka(dir: &Path, source: &str, sink: &str, extra: &str) -> PathBuf {
    write(
        dir,
        "relay.toml",
        &format!(
            r#"
[source]
type = "kafka"
{source}
offset = "earliest"
data_type = "json"
{extra}

[[sinks]]
type = "kafka"
{sink}
{extra}
"#
        ),
    )
}

fn test_pipeline(path: &Path, timeout: &str) -> (Output, Vec<String>) {
    let out = run(&["test", s(path), "--timeout", timeout], T);
    let lines = out.stdout.lines().map(str::to_owned).collect();
    (out, lines)
}

#[test]
fn connect_test_on_a_kafka_pipeline() {
    let kafka = MockKafka::start();
    kafka.create_topic("in", 3);
    kafka.create_topic("out", 1);
    let b = kafka.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = |topic: &str| format!("brokers = \"{b}\"\ntopic = \"{topic}\"");
    let plain = "\"tls.disable\" = true";

    // Success: every step, one line each.
    let path = kafka_to_kafka(dir.path(), &broker("in"), &broker("out"), plain);
    let (out, lines) = test_pipeline(&path, "10s");
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(lines.len(), 6, "{}", out.all());
    assert!(
        lines[0].starts_with(&format!(
            "kafka source: ok     connect to {b}: 1 broker: 1 at 127.0.0.1:"
        )),
        "{}",
        out.all()
    );
    assert_eq!(
        lines[1],
        "kafka source: ok     topic `in`: 3 partitions (0-2)"
    );
    assert_eq!(
        lines[2],
        "kafka source: ok     group `timeplus-source-relay`: coordinator answered; no committed offsets, will start at `earliest`"
    );
    assert!(
        lines[3].starts_with(&format!(
            "kafka sink: ok     connect to {b}: 1 broker: 1 at "
        )),
        "{}",
        out.all()
    );
    assert_eq!(
        lines[4],
        "kafka sink: ok     topic `out`: exists with 1 partition (0)"
    );
    assert_eq!(lines[5], format!("{}: all 5 checks passed", path.display()));

    // Wrong port: both fail at the first step, with the address and the reason.
    let closed = testkit::free_port();
    let wrong = format!("brokers = \"127.0.0.1:{closed}\"\ntopic = \"in\"");
    let path = kafka_to_kafka(dir.path(), &wrong, &wrong, plain);
    let (out, lines) = test_pipeline(&path, "5s");
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_eq!(lines.len(), 3, "{}", out.all());
    for (line, role) in lines.iter().zip(["source", "sink"]) {
        let head = format!("kafka {role}: FAILED connect to 127.0.0.1:{closed}: unreachable: ");
        assert!(line.starts_with(&head), "{}", out.all());
        assert!(line.contains("Connection refused"), "{}", out.all());
    }
    assert_eq!(
        lines[2],
        format!("{}: 2 of 2 checks failed", path.display())
    );

    // A missing topic: the source's is not found; the sink's is not found
    // and cannot be created here (the mock cluster has no CreateTopics).
    let path = kafka_to_kafka(dir.path(), &broker("nope"), &broker("absent"), plain);
    let (out, lines) = test_pipeline(&path, "5s");
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_eq!(
        lines[1],
        "kafka source: FAILED topic `nope`: not found: topic `nope` does not exist",
        "{}",
        out.all()
    );
    assert_eq!(
        lines[3],
        "kafka sink: FAILED topic `absent`: not found: topic `absent` does not exist and cannot be created: the cluster's controller did not answer the CreateTopics request within 4500ms",
        "{}",
        out.all()
    );
    assert_eq!(
        lines[4],
        format!("{}: 2 of 4 checks failed", path.display())
    );
    // Checking created nothing.
    let (out, _) = test_pipeline(&path, "5s");
    assert!(
        out.stdout.contains("topic `absent` does not exist"),
        "{}",
        out.all()
    );

    // TLS (the default) to the mock's plain listener.
    let path = kafka_to_kafka(dir.path(), &broker("in"), &broker("out"), "");
    let (out, lines) = test_pipeline(&path, "5s");
    assert_eq!(out.code, Some(1), "{}", out.all());
    for (line, role) in lines.iter().zip(["source", "sink"]) {
        let head = format!("kafka {role}: FAILED connect to {b}: TLS error: ");
        assert!(line.starts_with(&head), "{}", out.all());
        assert!(line.contains("SSL"), "{}", out.all());
    }

    // SASL credentials the broker refuses (the mock offers no SASL at all),
    // with the password nowhere in the output.
    let sasl = format!(
        "{plain}\nsasl = \"scram-sha-256\"\nusername = \"alice\"\npassword = \"${{KAFKA_PASSWORD}}\""
    );
    let path = kafka_to_kafka(dir.path(), &broker("in"), &broker("out"), &sasl);
    let mut command = connect();
    command
        .args(["test", s(&path), "--timeout", "5s"])
        .env("KAFKA_PASSWORD", "hunter2-secret");
    let out = Running::start(command).wait(T);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    for (line, role) in lines.iter().zip(["source", "sink"]) {
        let head = format!("kafka {role}: FAILED connect to {b}: auth refused: ");
        assert!(line.starts_with(&head), "{}", out.all());
    }
    assert!(!out.all().contains("hunter2-secret"), "{}", out.all());
}

#[test]
fn check_on_start_stops_a_run_whose_topic_is_missing() {
    let kafka = MockKafka::start();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let path = write(
        dir.path(),
        "checked.yaml",
        &format!(
            "source:\n  type: kafka\n  brokers: {}\n  topic: missing\n  offset: earliest\n  data_type: json\n  tls.disable: true\n\
             sinks:\n  - type: file\n    path: {}\n\
             pipeline:\n  check_on_start: true\n  check_timeout: 5s\n",
            kafka.bootstrap(),
            s(&out_file)
        ),
    );
    let out = run(&["run", s(&path)], T);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "kafka source: ok     connect to {}: 1 broker",
            kafka.bootstrap()
        )),
        "{}",
        out.all()
    );
    assert_eq!(
        lines[1],
        "kafka source: FAILED topic `missing`: not found: topic `missing` does not exist"
    );
    assert_eq!(
        *lines.last().unwrap(),
        "connect: 1 of 4 connection checks failed; not starting"
    );
    assert!(!out_file.exists());
}

#[test]
fn generator_to_kafka_from_flags() {
    let kafka = MockKafka::start();
    kafka.create_topic("generated", 2);
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
            "count=300",
            "--sink",
            "kafka",
            "-p",
            &format!("brokers={}", kafka.bootstrap()),
            "-p",
            "topic=generated",
            "-p",
            "tls.disable=true",
            "-p",
            "batch_count=50",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stderr.contains(": 300 records in ("), "{}", out.all());
    let read = kafka.read("generated", 300, Duration::from_secs(20));
    assert_eq!(read.len(), 300);
    for m in &read {
        let v: Json = serde_json::from_str(&payload_text(m)).unwrap();
        assert!(v["username"].is_string(), "{v}");
    }
}

/// `examples/pipelines/kafka-to-clickhouse.toml` as shipped, with its
/// addresses from the environment: `connect test` passes every step, and
/// `connect run` filters, renames and loads the orders, the undecodable one
/// into the dead-letter file beside it.
#[test]
fn the_kafka_to_clickhouse_example_runs() {
    let kafka = MockKafka::start();
    kafka.create_topic("orders", 2);
    let mut orders: Vec<TestMessage> = (0..40)
        .map(|i| {
            let status = if i % 4 == 0 { "test" } else { "paid" };
            TestMessage::new(
                json!({"id": i, "status": status, "amount": i as f64 + 0.5}).to_string(),
            )
            .partition(i % 2)
        })
        .collect();
    orders.push(TestMessage::new("not json").partition(0));
    kafka.produce("orders", orders);
    let clickhouse = testkit::clickhouse::ClickHouse::start();
    let example = common::repo_root().join("examples/pipelines/kafka-to-clickhouse.toml");
    let dir = tempfile::tempdir().unwrap();
    let with_env = |args: &[&str]| {
        let mut command = connect();
        command
            .args(args)
            .current_dir(dir.path())
            .env("KAFKA_BROKERS", kafka.bootstrap())
            .env(
                "CLICKHOUSE_HOST",
                format!("127.0.0.1:{}", clickhouse.http_port()),
            )
            .env("CLICKHOUSE_PASSWORD", "");
        command
    };

    let out = Running::start(with_env(&["test", s(&example), "--timeout", "10s"])).wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stdout
            .contains("kafka source: ok     group `timeplus-source-orders-to-clickhouse`: "),
        "{}",
        out.all()
    );

    let running = Running::start(with_env(&["run", s(&example)]));
    let count = || {
        clickhouse
            .try_query("SELECT count() FROM default.orders")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .unwrap_or(0)
    };
    running.wait_for("30 rows", T, |_, _| count() >= 30);
    stop(running);
    assert_eq!(count(), 30);
    assert_eq!(
        clickhouse
            .query("SELECT sum(amount_usd), countIf(status = 'test') FROM default.orders")
            .trim(),
        // 0.5 + 1.5 + ... + 39.5 without every fourth order.
        format!(
            "{}\t0",
            (0..40)
                .filter(|i| i % 4 != 0)
                .map(|i| i as f64 + 0.5)
                .sum::<f64>()
        )
    );
    let bad = json_lines(&dir.path().join("bad-orders.jsonl"));
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["component"], "kafka source");
}
