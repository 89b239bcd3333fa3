//! `connect run` with the pulsar source and sink against a Pulsar-protocol
//! broker (through the test proxy that makes its frames readable by the
//! `pulsar` crate), checked with the Python `pulsar-client`.

mod common;

use std::time::Duration;

use common::{Running, connect, json_lines, s, write};
use testkit::pulsar::{
    PulsarBroker, PulsarProxy, PyMessage, consume_with_python, produce_with_python,
};

const T: Duration = Duration::from_secs(120);

#[test]
fn pulsar_to_file_and_generator_to_pulsar() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    let topic = "persistent://public/default/connect-in";
    let mut messages: Vec<PyMessage> = (0..30)
        .map(|n| PyMessage::new(format!(r#"{{"n": {n}, "device": "d{n}"}}"#)))
        .collect();
    // One payload that does not decode, in the middle.
    messages.insert(10, PyMessage::new("{\"n\": broken"));
    produce_with_python(&broker.url(), topic, &messages, false, None);

    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("from-pulsar.jsonl");
    let bad_file = dir.path().join("bad.jsonl");
    let path = write(
        dir.path(),
        "from-pulsar.json",
        &serde_json::json!({
            "source": {
                "type": "pulsar",
                "broker_url": proxy.url(),
                "topic": topic,
                "auth_type": "",
                "data_type": "json",
                "initial_position": "earliest",
            },
            "sinks": [{"type": "file", "path": s(&out_file)}],
            "dead_letter": {"type": "file", "path": s(&bad_file)},
        })
        .to_string(),
    );
    let mut command = connect();
    command.args(["run", s(&path)]);
    let running = Running::start(command);
    running.wait_for("30 lines", T, |_, _| json_lines(&out_file).len() >= 30);
    running.terminate();
    let out = running.wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let mut ns: Vec<i64> = json_lines(&out_file)
        .iter()
        .map(|v| v["n"].as_i64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..30).collect::<Vec<_>>());
    // The bad payload went to the dead-letter file, with why and where.
    let bad = json_lines(&bad_file);
    assert_eq!(bad.len(), 1, "{}", out.all());
    assert_eq!(bad[0]["component"], "pulsar source");
    assert!(
        bad[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot decode json"),
        "{}",
        bad[0]
    );
    assert!(
        bad[0]["position"]
            .as_str()
            .unwrap()
            .starts_with(&format!("topic {topic} message ")),
        "{}",
        bad[0]
    );
    assert!(
        out.stderr.contains(", 1 bad, 1 dead-lettered;"),
        "{}",
        out.all()
    );
    // The subscription is named after the pipeline (the file's name), so a
    // restart resumes it.
    assert!(
        out.stderr
            .contains("subscription=timeplus-source-from-pulsar"),
        "{}",
        out.all()
    );

    // And the other way: generated records into a topic, read back.
    let out_topic = "persistent://public/default/connect-out";
    let out = common::run(
        &[
            "run",
            "--source",
            "stream_generator",
            "-p",
            "template=iot",
            "-p",
            "interval=0ms",
            "-p",
            "count=25",
            "--sink",
            "pulsar",
            "-p",
            &format!("broker_url={}", broker.url()),
            "-p",
            &format!("topic={out_topic}"),
            "-p",
            "auth_type=",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let read = consume_with_python(
        &broker.url(),
        out_topic,
        "check",
        25,
        Duration::from_secs(5),
    );
    assert_eq!(read.len(), 25);
    for m in &read {
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert!(v["device"].as_str().unwrap().starts_with("device_"), "{v}");
    }
}

/// `connect test` on a pulsar → pulsar pipeline: every step on success,
/// then a wrong port, a refused token and TLS to the plain port, each
/// message asserted and the token nowhere in the output. (A missing topic
/// cannot fail here: like a Pulsar broker with its default
/// `allowAutoTopicCreation`, the test broker creates any topic it is asked
/// to look up.)
#[test]
fn connect_test_on_a_pulsar_pipeline() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    proxy.require_token("right-token");
    let dir = tempfile::tempdir().unwrap();
    let topic = "persistent://public/default/relay";
    let pipeline = |url: &str| {
        write(
            dir.path(),
            "relay.toml",
            &format!(
                r#"
[source]
type = "pulsar"
broker_url = "{url}"
topic = "{topic}"
auth_type = "token"
auth_params = {{ token = "${{PULSAR_TOKEN}}" }}
data_type = "json"

[[sinks]]
type = "pulsar"
broker_url = "{url}"
topic = "{topic}-out"
auth_type = "token"
auth_params = {{ token = "${{PULSAR_TOKEN}}" }}
"#
            ),
        )
    };
    let test = |path: &std::path::Path, token: &str| {
        let mut command = connect();
        command
            .args(["test", s(path), "--timeout", "5s"])
            .env("PULSAR_TOKEN", token);
        let out = Running::start(command).wait(T);
        assert!(!out.all().contains(token), "{}", out.all());
        let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
        (out, lines)
    };
    let address = &proxy.url()["pulsar://".len()..];

    let path = pipeline(proxy.url());
    let (out, lines) = test(&path, "right-token");
    assert_eq!(out.code, Some(0), "{}", out.all());
    let mut expected = Vec::new();
    for (role, topic) in [
        ("source", topic.to_owned()),
        ("sink", format!("{topic}-out")),
    ] {
        expected.extend([
            format!("pulsar {role}: ok     read token"),
            format!("pulsar {role}: ok     connect to {address}: TCP connection open"),
            format!("pulsar {role}: ok     authenticate with the token: broker Pulsar-Lite-0.1.0, protocol v12"),
            format!("pulsar {role}: ok     look up topic {topic}: served by pulsar://{address}"),
        ]);
    }
    expected.push(format!("{}: all 8 checks passed", path.display()));
    assert_eq!(lines, expected, "{}", out.all());

    let (out, lines) = test(&path, "wrong-token");
    assert_eq!(out.code, Some(1), "{}", out.all());
    for (i, role) in [(2, "source"), (5, "sink")] {
        assert_eq!(
            lines[i],
            format!(
                "pulsar {role}: FAILED authenticate with the token: auth refused: AuthenticationError: Unable to authenticate"
            ),
            "{}",
            out.all()
        );
    }
    assert_eq!(
        lines[6],
        format!("{}: 2 of 6 checks failed", path.display())
    );

    let closed = testkit::free_port();
    let path = pipeline(&format!("pulsar://127.0.0.1:{closed}"));
    let (out, lines) = test(&path, "right-token");
    assert_eq!(out.code, Some(1), "{}", out.all());
    for (i, role) in [(1, "source"), (3, "sink")] {
        assert!(
            lines[i].starts_with(&format!(
                "pulsar {role}: FAILED connect to 127.0.0.1:{closed}: unreachable: Connection refused"
            )),
            "{}",
            out.all()
        );
    }

    let path = pipeline(&format!("pulsar+ssl://127.0.0.1:{}", broker.addr().port()));
    let (out, lines) = test(&path, "right-token");
    assert_eq!(out.code, Some(1), "{}", out.all());
    for (i, role) in [(2, "source"), (5, "sink")] {
        assert!(
            lines[i].starts_with(&format!(
                "pulsar {role}: FAILED TLS handshake with 127.0.0.1: TLS error: "
            )),
            "{}",
            out.all()
        );
    }
}
