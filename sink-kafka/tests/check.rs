//! `KafkaSink::check`. The mock cluster has no SASL, no TLS listener and
//! cannot create topics: TLS is checked against its plain port, SASL
//! against a broker that does not offer it, and creation of a missing
//! topic is reported as impossible there.

use std::time::Duration;

use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::{CheckReport, Properties, Sink};
use kafka_common::testing::MockKafka;
use sink_kafka::{KafkaSink, KafkaSinkConfig};

const TIMEOUT: Duration = Duration::from_secs(3);

fn props(kafka: &MockKafka, topic: &str) -> Properties {
    Properties::from_pairs([
        ("brokers", kafka.bootstrap()),
        ("topic", topic),
        ("tls.disable", "true"),
    ])
}

fn failure(report: &CheckReport) -> (String, FailureKind, String) {
    eprintln!("{report}");
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

#[tokio::test]
async fn check_finds_an_existing_topic() {
    let kafka = MockKafka::start();
    kafka.create_topic("out", 6);
    let report = KafkaSink::from_properties(&props(&kafka, "out"))
        .unwrap()
        .check(TIMEOUT)
        .await;
    assert!(report.is_ok(), "{report}");
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with(&format!(
        "kafka sink: ok     connect to {}: 1 broker",
        kafka.bootstrap()
    )));
    assert_eq!(
        lines[1],
        "kafka sink: ok     topic `out`: exists with 6 partitions (0-5)"
    );
}

#[tokio::test]
async fn check_reports_a_missing_topic_it_cannot_create() {
    let kafka = MockKafka::start();
    let report = KafkaSink::from_properties(&props(&kafka, "absent").with("partitions", "3"))
        .unwrap()
        .check(TIMEOUT)
        .await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "topic `absent`");
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(
        reason,
        "topic `absent` does not exist and cannot be created: the cluster's controller did not answer the CreateTopics request within 2700ms"
    );
    // With creation turned off, missing is simply missing.
    let mut config = KafkaSinkConfig::from_properties(&props(&kafka, "absent")).unwrap();
    config.create_topic = false;
    let report = KafkaSink::new(config).unwrap().check(TIMEOUT).await;
    assert_eq!(
        failure(&report),
        (
            "topic `absent`".into(),
            FailureKind::NotFound,
            "topic `absent` does not exist".into()
        )
    );
    // Nothing was created by checking.
    let report = KafkaSink::from_properties(&props(&kafka, "absent"))
        .unwrap()
        .check(TIMEOUT)
        .await;
    assert_eq!(failure(&report).1, FailureKind::NotFound);
}

#[tokio::test]
async fn check_reports_a_wrong_port() {
    let port = testkit::free_port();
    let p = Properties::from_pairs([
        ("brokers", format!("127.0.0.1:{port}")),
        ("topic", "t".into()),
        ("tls.disable", "true".into()),
    ]);
    let report = KafkaSink::from_properties(&p).unwrap().check(TIMEOUT).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Unreachable);
    assert!(reason.contains("Connection refused"), "{reason}");
}

#[tokio::test]
async fn check_reports_tls_to_a_plain_port() {
    let kafka = MockKafka::start();
    kafka.create_topic("t", 1);
    let mut p = props(&kafka, "t");
    p.set("tls.disable", "false");
    let report = KafkaSink::from_properties(&p).unwrap().check(TIMEOUT).await;
    let (_, kind, reason) = failure(&report);
    assert_eq!(kind, FailureKind::Tls);
    assert!(reason.contains("SSL"), "{reason}");
}

#[tokio::test]
async fn check_reports_sasl_refused_without_leaking_the_password() {
    let kafka = MockKafka::start();
    kafka.create_topic("t", 1);
    let p = props(&kafka, "t")
        .with("sasl", "plain")
        .with("username", "writer")
        .with("password", "hunter2");
    let report = KafkaSink::from_properties(&p).unwrap().check(TIMEOUT).await;
    let (_, kind, reason) = failure(&report);
    assert_eq!(kind, FailureKind::AuthRefused);
    assert!(reason.contains("SASL"), "{reason}");
    assert!(!report.to_string().contains("hunter2"));
}
