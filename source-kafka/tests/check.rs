//! `KafkaSource::check` and configuration errors. The mock cluster has no
//! SASL and no TLS listener: TLS is checked against its plain port, and
//! SASL against a broker that does not offer it.

mod common;

use std::time::Duration;

use common::{init_logs, props};
use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::{Properties, Source};
use kafka_common::testing::{MockKafka, TestMessage};
use source_kafka::KafkaSource;

const TIMEOUT: Duration = Duration::from_secs(5);

fn failure(report: &connector_core::CheckReport) -> (String, FailureKind, String) {
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

#[tokio::test]
async fn check_passes_against_a_running_cluster() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("checked", 3);
    kafka.produce("checked", [TestMessage::new("x")]);
    let mut source =
        KafkaSource::from_properties(&props(&kafka, "checked", "text").with("group", "g1"))
            .unwrap();
    let report = source.check(TIMEOUT).await;
    assert!(report.is_ok(), "{report}");
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with(&format!(
            "kafka source: ok     connect to {}: 1 broker: 1 at 127.0.0.1:",
            kafka.bootstrap()
        )),
        "{text}"
    );
    assert_eq!(
        lines[1],
        "kafka source: ok     topic `checked`: 3 partitions (0-2)"
    );
    assert_eq!(
        lines[2],
        "kafka source: ok     group `g1`: coordinator answered; no committed offsets, will start at `earliest`"
    );
    // Checking consumed nothing and joined nothing.
    assert!(kafka.committed("g1", "checked").is_empty());
}

#[tokio::test]
async fn check_reports_committed_offsets_of_the_group() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("resumed", 2);
    kafka.produce(
        "resumed",
        (0..10).map(|i| TestMessage::new(format!("{i}")).partition(i % 2)),
    );
    let p = props(&kafka, "resumed", "text").with("group", "g2");
    let (handle, collected, status) = common::collect(KafkaSource::from_properties(&p).unwrap());
    common::expect_records(&collected, 10).await;
    common::eventually("commits", || status.committed_offsets().len() == 2).await;
    handle.stop();
    handle.join().await.unwrap();
    let report = KafkaSource::from_properties(&p)
        .unwrap()
        .check(TIMEOUT)
        .await;
    assert!(report.is_ok(), "{report}");
    assert!(
        report
            .to_string()
            .ends_with("group `g2`: coordinator answered; committed offsets for 2 of 2 partitions"),
        "{report}"
    );
}

#[tokio::test]
async fn check_reports_a_wrong_port() {
    init_logs();
    let port = testkit::free_port();
    let p = Properties::from_pairs([
        ("brokers", format!("127.0.0.1:{port}")),
        ("topic", "t".into()),
        ("offset", "earliest".into()),
        ("data_type", "json".into()),
        ("tls.disable", "true".into()),
    ]);
    let report = KafkaSource::from_properties(&p)
        .unwrap()
        .check(TIMEOUT)
        .await;
    eprintln!("{report}");
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Unreachable, "{report}");
    assert!(
        reason.contains(&format!("127.0.0.1:{port}")) && reason.contains("Connection refused"),
        "{reason}"
    );
    assert_eq!(report.steps.len(), 1, "a check stops at its first failure");
}

#[tokio::test]
async fn check_reports_a_missing_topic() {
    init_logs();
    let kafka = MockKafka::start();
    let mut source = KafkaSource::from_properties(&props(&kafka, "nope", "json")).unwrap();
    let report = source.check(TIMEOUT).await;
    eprintln!("{report}");
    let (step, kind, reason) = failure(&report);
    assert_eq!(
        (step.as_str(), kind, reason.as_str()),
        (
            "topic `nope`",
            FailureKind::NotFound,
            "topic `nope` does not exist"
        )
    );
    // The check did not create it.
    let again = source.check(TIMEOUT).await;
    assert_eq!(failure(&again).1, FailureKind::NotFound);
}

#[tokio::test]
async fn check_reports_tls_to_a_plain_port() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("t", 1);
    let mut p = props(&kafka, "t", "json");
    p.remove("tls.disable"); // TLS is on by default
    let report = KafkaSource::from_properties(&p)
        .unwrap()
        .check(TIMEOUT)
        .await;
    eprintln!("{report}");
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("connect to {}", kafka.bootstrap()));
    assert_eq!(kind, FailureKind::Tls, "{report}");
    // librdkafka says "SSL handshake failed: ... connecting to a PLAINTEXT
    // broker listener?" or "Disconnected ... in state SSL_HANDSHAKE".
    assert!(reason.contains("SSL"), "{reason}");
}

/// The mock cluster speaks no SASL: a SASL client is refused during
/// authentication, which is as close to wrong credentials as it gets here.
#[tokio::test]
async fn check_reports_sasl_refused_without_leaking_the_password() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("t", 1);
    let p = props(&kafka, "t", "json")
        .with("sasl", "scram-sha-256")
        .with("username", "alice")
        .with("password", "hunter2");
    let report = KafkaSource::from_properties(&p)
        .unwrap()
        .check(TIMEOUT)
        .await;
    eprintln!("{report}");
    let (_, kind, reason) = failure(&report);
    assert_eq!(kind, FailureKind::AuthRefused, "{report}");
    assert!(!report.to_string().contains("hunter2"), "{report}");
    assert!(!reason.is_empty());
}

#[test]
fn properties_are_validated_together() {
    let p = Properties::from_pairs([
        ("brokers", "k:9092"),
        ("offset", "newest"),
        ("data_type", "yaml"),
        ("sasl", "plain"),
        ("topics", "t"),
    ]);
    let err = KafkaSource::from_properties(&p).err().unwrap().to_string();
    for expected in [
        "kafka source: invalid configuration:",
        "property `topic`: required property is missing",
        "property `offset`: expected one of `earliest`, `latest`, got `newest`",
        "property `data_type`: expected one of",
        "property `username`: required when `sasl` is `plain`",
        "property `password`: required when `sasl` is `plain`",
        "property `topics`: unknown property; did you mean `topic`?",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn the_group_comes_from_group_then_id_then_a_random_uuid() {
    let base = Properties::from_pairs([
        ("brokers", "k:9092"),
        ("topic", "t"),
        ("offset", "earliest"),
        ("data_type", "json"),
    ]);
    let with_group =
        KafkaSource::from_properties(&base.clone().with("group", "mine").with("id", "x")).unwrap();
    assert_eq!(with_group.group(), "mine");
    let with_id = KafkaSource::from_properties(&base.clone().with("id", "orders")).unwrap();
    assert_eq!(with_id.group(), "timeplus-source-orders");
    let config = source_kafka::KafkaSourceConfig::from_properties(&base)
        .unwrap()
        .with_default_id("pipeline-a");
    assert_eq!(
        KafkaSource::new(config).unwrap().group(),
        "timeplus-source-pipeline-a"
    );
    let a = KafkaSource::from_properties(&base).unwrap();
    let b = KafkaSource::from_properties(&base).unwrap();
    assert!(
        a.group().starts_with("timeplus-source-")
            && a.group().len() == "timeplus-source-".len() + 36
    );
    assert_ne!(a.group(), b.group());
}
