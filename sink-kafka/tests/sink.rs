//! The Kafka sink against librdkafka's mock cluster: what it writes is read
//! back with a plain consumer; acks wait for the broker; delivery errors are
//! retried, then reported; records that cannot be written are rejected.

use std::time::Duration;

use connector_core::format::{DataFormat, FormatConfig};
use connector_core::{Ack, AckStatus, Batch, Header, Pipeline, Properties, Record, Sink, Value};
use kafka_common::rdkafka::Message;
use kafka_common::rdkafka::message::Headers;
use kafka_common::rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use kafka_common::testing::{MockKafka, payload_text};
use sink_kafka::{KafkaSink, KafkaSinkConfig};
use source_generator::{GeneratorConfig, GeneratorSource, Template};

const WAIT: Duration = Duration::from_secs(30);

fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

fn props(kafka: &MockKafka, topic: &str) -> Properties {
    Properties::from_pairs([
        ("brokers", kafka.bootstrap()),
        ("topic", topic),
        ("tls.disable", "true"),
    ])
}

fn record(n: i64) -> Record {
    Record::from_pairs([
        ("n", Value::Int64(n)),
        ("name", Value::from(format!("r{n}"))),
    ])
}

/// Sends `records` as one batch and waits for its outcome.
async fn send(sink: &mut KafkaSink, records: Vec<Record>) -> AckStatus {
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(records, ack)).await.unwrap();
    tokio::time::timeout(WAIT, outcome)
        .await
        .expect("ack resolved")
}

#[tokio::test]
async fn generator_to_kafka_is_read_back_by_a_plain_consumer() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("iot", 3);
    let generator = GeneratorSource::new(
        GeneratorConfig::new(Template::Iot)
            .interval(Duration::ZERO)
            .seed(7)
            .count(5000),
    );
    let sink =
        KafkaSink::from_properties(&props(&kafka, "iot").with("batch_count", "500")).unwrap();
    let report = Pipeline::new(generator).to(sink).run().await.unwrap();
    assert_eq!(report.metrics.records_out, 5000);
    // Delivered means acknowledged by the broker: everything is there.
    let messages = kafka.read("iot", 5000, WAIT);
    assert_eq!(messages.len(), 5000);
    for m in &messages {
        let json: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let device = json["device"].as_str().unwrap();
        assert!(device.starts_with("device_"), "{json}");
        assert!(
            json["number"].is_number() && json["time"].is_string(),
            "{json}"
        );
    }
}

#[tokio::test]
async fn key_timestamp_and_headers_become_message_fields() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("fields", 4);
    let mut sink = KafkaSink::from_properties(&props(&kafka, "fields")).unwrap();
    let mut with_meta = record(1)
        .with_key("user-7")
        .with_timestamp(1_700_000_000_123_456);
    with_meta.headers = vec![
        Header::new("trace", &b"abc"[..]),
        Header {
            name: "flag".into(),
            value: None,
        },
    ];
    let same_key = record(2).with_key("user-7");
    assert!(
        send(&mut sink, vec![with_meta, same_key, record(3)])
            .await
            .is_delivered()
    );
    sink.close().await.unwrap();

    let messages = kafka.read("fields", 3, WAIT);
    assert_eq!(messages.len(), 3);
    let first = messages
        .iter()
        .find(|m| payload_text(m).contains(r#""n":1"#))
        .unwrap();
    assert_eq!(payload_text(first), r#"{"n":1,"name":"r1"}"#);
    assert_eq!(first.key(), Some(&b"user-7"[..]));
    assert_eq!(first.timestamp().to_millis(), Some(1_700_000_000_123));
    let headers = first.headers().unwrap();
    assert_eq!(headers.count(), 2);
    assert_eq!(
        (headers.get(0).key, headers.get(0).value),
        ("trace", Some(&b"abc"[..]))
    );
    assert_eq!((headers.get(1).key, headers.get(1).value), ("flag", None));
    // The same key lands in the same partition.
    let second = messages
        .iter()
        .find(|m| payload_text(m).contains(r#""n":2"#))
        .unwrap();
    assert_eq!(second.partition(), first.partition());
    let third = messages
        .iter()
        .find(|m| payload_text(m).contains(r#""n":3"#))
        .unwrap();
    assert_eq!(third.key(), None);
}

#[tokio::test]
async fn every_encoder_writes_its_format() {
    init_logs();
    let kafka = MockKafka::start();
    let cases: [(&str, Record, &[u8]); 4] = [
        ("json", record(5), br#"{"n":5,"name":"r5"}"#),
        (
            "text",
            Record::from_pairs([("raw", Value::from("plain line"))]),
            b"plain line",
        ),
        (
            "binary",
            Record::from_pairs([("self", Value::Bytes(vec![0, 1, 255]))]),
            &[0, 1, 255],
        ),
        (
            "delimited",
            Record::from_pairs([("a", Value::from("x,y")), ("b", Value::Int64(2))]),
            b"\"x,y\",2",
        ),
    ];
    for (data_type, record, expected) in cases {
        let topic = format!("enc-{data_type}");
        kafka.create_topic(&topic, 1);
        let mut sink =
            KafkaSink::from_properties(&props(&kafka, &topic).with("data_type", data_type))
                .unwrap();
        assert!(
            send(&mut sink, vec![record]).await.is_delivered(),
            "{data_type}"
        );
        sink.close().await.unwrap();
        let messages = kafka.read(&topic, 1, WAIT);
        assert_eq!(messages[0].payload(), Some(expected), "{data_type}");
    }
}

#[tokio::test]
async fn the_ack_waits_for_the_broker() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("slow", 1);
    let mut sink = KafkaSink::from_properties(&props(&kafka, "slow")).unwrap();
    // Warm up: the topic lookup and the producer's first connection.
    assert!(send(&mut sink, vec![record(0)]).await.is_delivered());
    kafka
        .cluster()
        .broker_round_trip_time(1, Duration::from_millis(1500))
        .unwrap();
    let (ack, mut outcome) = Ack::channel();
    sink.send(Batch::with_ack(vec![record(1), record(2)], ack))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        futures_poll(&mut outcome).is_none(),
        "resolved before the broker answered"
    );
    assert_eq!(sink.batches_in_flight(), 1);
    let status = tokio::time::timeout(WAIT, outcome).await.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    sink.flush().await.unwrap();
    assert_eq!(sink.batches_in_flight(), 0);
    assert_eq!(kafka.read("slow", 3, WAIT).len(), 3);
}

fn futures_poll(outcome: &mut connector_core::AckReceiver) -> Option<AckStatus> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    match std::pin::Pin::new(outcome).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(s) => Some(s),
        Poll::Pending => None,
    }
}

#[tokio::test]
async fn retriable_produce_errors_are_retried_without_duplicates() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("retry", 1);
    let mut sink = KafkaSink::from_properties(&props(&kafka, "retry")).unwrap();
    assert!(send(&mut sink, vec![record(0)]).await.is_delivered());
    kafka.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    assert!(
        send(&mut sink, (1..=10).map(record).collect())
            .await
            .is_delivered()
    );
    sink.close().await.unwrap();
    let messages = kafka.read("retry", 20, Duration::from_secs(3));
    let texts: Vec<String> = messages.iter().map(payload_text).collect();
    assert_eq!(texts.len(), 11, "{texts:?}");
}

#[tokio::test]
async fn a_batch_the_broker_never_takes_is_reported_failed() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("down", 1);
    let mut config = KafkaSinkConfig::from_properties(&props(&kafka, "down")).unwrap();
    config.delivery_timeout = Duration::from_secs(2);
    let mut sink = KafkaSink::new(config).unwrap();
    assert!(send(&mut sink, vec![record(0)]).await.is_delivered());
    kafka.cluster().broker_down(1).unwrap();
    let status = send(&mut sink, vec![record(1), record(2)]).await;
    match status {
        AckStatus::Failed(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("kafka sink: deliver to topic `down` partition 0: Message production error: MessageTimedOut"),
                "{text}"
            );
            assert!(e.is_retryable());
        }
        other => panic!("expected a failed batch, got {other:?}"),
    }
    kafka.cluster().broker_up(1).unwrap();
}

#[tokio::test]
async fn records_that_cannot_be_written_reject_their_batch_but_not_the_others() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("refused", 1);
    let mut config =
        KafkaSinkConfig::from_properties(&props(&kafka, "refused").with("data_type", "text"))
            .unwrap();
    config
        .client
        .options
        .insert("message.max.bytes".into(), "2000".into());
    let mut sink = KafkaSink::new(config).unwrap();
    let line = |s: &str| Record::from_pairs([("raw", Value::from(s))]);
    let status = send(
        &mut sink,
        vec![
            line("first"),
            Record::from_pairs([("other", Value::Int64(1))]),
            line(&"x".repeat(5000)),
            line("last"),
        ],
    )
    .await;
    match status {
        AckStatus::Rejected(e) => assert_eq!(
            e.to_string(),
            "kafka sink: cannot encode record #1 of its batch as text: the record has no `raw` column (columns: other); set `text_template` to render records as text"
        ),
        other => panic!("expected a rejected batch, got {other:?}"),
    }
    let status = send(&mut sink, vec![line(&"y".repeat(5000))]).await;
    match status {
        AckStatus::Rejected(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("kafka sink: rejected record #0 of its batch (5000 bytes): "),
                "{text}"
            );
            assert!(text.contains("MessageSizeTooLarge"), "{text}");
        }
        other => panic!("expected a rejected batch, got {other:?}"),
    }
    sink.close().await.unwrap();
    let written: Vec<String> = kafka
        .read("refused", 10, Duration::from_secs(3))
        .iter()
        .map(payload_text)
        .collect();
    assert_eq!(written, vec!["first", "last"]);
}

/// The mock cluster cannot create topics (it names no controller), so the
/// sink's CreateTopics request goes unanswered: the batch fails (the source
/// delivers it again) with the reason.
#[tokio::test]
async fn a_missing_topic_that_cannot_be_created_fails_the_batch_with_the_reason() {
    init_logs();
    let kafka = MockKafka::start();
    let mut sink =
        KafkaSink::from_properties(&props(&kafka, "absent").with("partitions", "3")).unwrap();
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(vec![record(1)], ack))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, outcome).await.unwrap() {
        AckStatus::Failed(e) => assert_eq!(
            e.to_string(),
            "kafka sink: create topic `absent`: topic `absent` does not exist and cannot be created: the cluster's controller did not answer the CreateTopics request within 10s"
        ),
        other => panic!("expected a failed batch, got {other:?}"),
    }
    // With creation turned off, a missing topic is a permanent error.
    let mut config = KafkaSinkConfig::from_properties(&props(&kafka, "absent")).unwrap();
    config.create_topic = false;
    let mut sink = KafkaSink::new(config).unwrap();
    let (ack, outcome) = Ack::channel();
    let err = sink
        .send(Batch::with_ack(vec![record(1)], ack))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "kafka sink: look up topic `absent`: topic `absent` does not exist and the sink does not create topics"
    );
    assert!(matches!(outcome.await, AckStatus::Failed(_)));
}

#[tokio::test]
async fn a_json_sink_uses_the_json_format_by_default_and_batch_count_sets_the_batches() {
    let kafka = MockKafka::start();
    let sink = KafkaSink::from_properties(&props(&kafka, "t").with("batch_count", "250")).unwrap();
    assert_eq!(sink.batch_limits().max_records, 250);
    assert_eq!(sink.config().format.data_format, DataFormat::JSON);
    let sink = KafkaSink::from_properties(&props(&kafka, "t")).unwrap();
    assert_eq!(sink.batch_limits().max_records, 1000);
    let config = KafkaSinkConfig::new(kafka.client_config(), "t")
        .with_format(FormatConfig::new(DataFormat::TEXT));
    assert_eq!(config.format.data_format, DataFormat::TEXT);
}

#[test]
fn properties_are_validated_together() {
    let p = Properties::from_pairs([
        ("brokers", "k:9092"),
        ("topic", "t"),
        ("batch_count", "0"),
        ("partitions", "-1"),
        ("data_type", "xml"),
        ("tls.disable", "maybe"),
        ("password", "hunter2"),
    ]);
    let err = KafkaSink::from_properties(&p).err().unwrap().to_string();
    for expected in [
        "kafka sink: invalid configuration:",
        "property `batch_count`: must be at least 1",
        "property `partitions`: must be at least 1",
        "property `data_type`: expected one of",
        "property `tls.disable`: expected `true` or `false`, got `maybe`",
        "property `password`: only used with SASL",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("hunter2"));
}
