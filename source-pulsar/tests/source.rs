//! The pulsar source against a real Pulsar-protocol broker process.
//!
//! The broker is `pulsar-lite` (see `testkit::pulsar`). Test data is
//! produced by an independent client, the Python `pulsar-client`, straight
//! to the broker. The source connects through `testkit::pulsar::PulsarProxy`,
//! which passes the real Pulsar binary protocol on over real sockets and
//! handles the broker's quirks:
//! - `pulsar-lite` sends `MESSAGE` frames without the magic number and
//!   CRC32C checksum that Apache Pulsar brokers send and that the `pulsar`
//!   crate's decoder requires: the proxy inserts them (each test asserts it
//!   did, so the source really read through it);
//! - lookups answer with the proxy's address, so every connection of the
//!   source crosses the proxy;
//! - the broker ignores auth: the proxy checks the `CONNECT` command's token.
//!
//! Nothing of the `Source` is replaced: subscribe, flow, message, ack,
//! redeliver-unacknowledged and close all go over the wire to the broker.

use std::time::Duration;

use connector_core::{Batch, Error, Header, Position, Properties, Source, Value};
use source_pulsar::PulsarSource;
use testkit::pulsar::{PulsarBroker, PulsarProxy, PyMessage, produce_with_python};

fn props(url: &str, topic: &str, id: &str) -> Properties {
    Properties::from_pairs([
        ("topic", topic),
        ("broker_url", url),
        ("auth_type", ""),
        ("data_type", "json"),
        ("id", id),
        ("initial_position", "earliest"),
        ("nack_redelivery_delay", "200ms"),
    ])
}

async fn produce(
    url: &str,
    topic: &str,
    messages: Vec<PyMessage>,
    batching: bool,
    compression: Option<&'static str>,
) {
    let (url, topic) = (url.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        produce_with_python(&url, &topic, &messages, batching, compression)
    })
    .await
    .unwrap();
}

fn json_message(n: u64) -> PyMessage {
    PyMessage::new(format!(r#"{{"n": {n}, "device": "d{}"}}"#, n % 2))
        .key(format!("k{n}"))
        .property("origin", "python")
        .event_time(1_700_000_000_000 + n)
}

/// Reads batches until `count` records (and bad records) came, or panics
/// after `within`.
async fn read(source: &mut PulsarSource, count: usize, within: Duration) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut seen = 0;
    tokio::time::timeout(within, async {
        while seen < count {
            let batch = source
                .next_batch()
                .await
                .unwrap()
                .expect("unbounded source");
            seen += batch.records.len() + batch.bad.len();
            batches.push(batch);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("got {seen} of {count} records within {within:?}"));
    batches
}

/// Nothing more arrives for `quiet`.
async fn assert_quiet(source: &mut PulsarSource, quiet: Duration) {
    if let Ok(batch) = tokio::time::timeout(quiet, source.next_batch()).await {
        let batch = batch.unwrap().unwrap();
        panic!(
            "expected nothing, got {:?}",
            batch
                .records
                .iter()
                .map(|r| r.to_json())
                .collect::<Vec<_>>()
        );
    }
}

fn numbers(batches: &[Batch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| r.get("n").and_then(Value::as_i64).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receives_what_an_independent_client_produced_with_metadata() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    let topic = "persistent://public/default/source-read";
    produce(
        &broker.url(),
        topic,
        (0..20).map(json_message).collect(),
        false,
        None,
    )
    .await;

    let mut source = PulsarSource::from_properties(&props(proxy.url(), topic, "read")).unwrap();
    assert_eq!(source.subscription(), "timeplus-source-read");
    let batches = read(&mut source, 20, Duration::from_secs(30)).await;
    assert_eq!(numbers(&batches), (0..20).collect::<Vec<_>>());
    let first = &batches[0].records[0];
    assert_eq!(first.get("device").and_then(Value::as_str), Some("d0"));
    assert_eq!(first.key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(first.headers, vec![Header::new("origin", "python")]);
    assert_eq!(first.timestamp, Some(1_700_000_000_000_000));
    match &first.position {
        Some(Position::MessageId { topic: t, id }) => {
            assert_eq!(&**t, topic);
            assert_eq!(id, "0:0:-1");
        }
        other => panic!("position {other:?}"),
    }
    for batch in batches {
        batch.delivered();
    }
    source.close().await.unwrap();
    assert!(
        proxy.checksums_added() >= 20,
        "the source read through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_stay_acked_after_a_restart_and_nacked_ones_come_again() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    let topic = "source-acks";
    produce(
        &broker.url(),
        topic,
        (0..10).map(json_message).collect(),
        false,
        None,
    )
    .await;

    // Deliver everything, then stop.
    let mut source = PulsarSource::from_properties(&props(proxy.url(), topic, "acks")).unwrap();
    for batch in read(&mut source, 10, Duration::from_secs(30)).await {
        batch.delivered();
    }
    source.close().await.unwrap();
    drop(source);

    // A new source on the same subscription sees only new messages.
    produce(
        &broker.url(),
        topic,
        (10..15).map(json_message).collect(),
        false,
        None,
    )
    .await;
    let mut source = PulsarSource::from_properties(&props(proxy.url(), topic, "acks")).unwrap();
    let batches = read(&mut source, 5, Duration::from_secs(30)).await;
    assert_eq!(numbers(&batches), vec![10, 11, 12, 13, 14]);
    let ids: Vec<Option<Position>> = batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| r.position.clone())
        .collect();

    // The sink fails them: after the nack delay the broker sends them again.
    for batch in batches {
        batch.failed(Error::transient("test sink", "write", "down"));
    }
    let again = read(&mut source, 5, Duration::from_secs(30)).await;
    assert_eq!(numbers(&again), vec![10, 11, 12, 13, 14]);
    let again_ids: Vec<Option<Position>> = again
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| r.position.clone())
        .collect();
    assert_eq!(again_ids, ids, "the same messages, redelivered");
    // Rejected (bad data) counts as settled: acknowledged, not redelivered.
    for batch in again {
        batch.rejected(Error::rejected("test sink", "batch", "bad"));
    }
    assert_quiet(&mut source, Duration::from_secs(2)).await;
    source.close().await.unwrap();

    let mut source = PulsarSource::from_properties(&props(proxy.url(), topic, "acks")).unwrap();
    assert_quiet(&mut source, Duration::from_secs(3)).await;
    source.close().await.unwrap();
    assert!(proxy.checksums_added() >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_side_batches_are_acknowledged_whole() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    let topic = "source-batched";
    // One broker entry holding eight messages.
    produce(
        &broker.url(),
        topic,
        (0..8).map(json_message).collect(),
        true,
        None,
    )
    .await;

    let mut props = props(proxy.url(), topic, "batched");
    props.set("receiver_queue_size", "3"); // the entry spans several source batches
    let mut source = PulsarSource::from_properties(&props).unwrap();
    let batches = read(&mut source, 8, Duration::from_secs(30)).await;
    assert_eq!(numbers(&batches), (0..8).collect::<Vec<_>>());
    let last = batches.last().unwrap().records.last().unwrap();
    assert!(
        matches!(&last.position, Some(Position::MessageId { id, .. }) if id.ends_with(":7")),
        "batch index in the id: {:?}",
        last.position
    );
    // All but the first part delivered: the entry is not acknowledged...
    let mut batches = batches.into_iter();
    let first = batches.next().unwrap();
    for batch in batches {
        batch.delivered();
    }
    first.failed(Error::transient("test sink", "write", "down"));
    // ...so the whole entry comes again.
    let again = read(&mut source, 8, Duration::from_secs(30)).await;
    assert_eq!(numbers(&again), (0..8).collect::<Vec<_>>());
    for batch in again {
        batch.delivered();
    }
    source.close().await.unwrap();

    let mut source = PulsarSource::from_properties(&props).unwrap();
    assert_quiet(&mut source, Duration::from_secs(3)).await;
    source.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_restarts_and_after_a_network_cut() {
    let mut broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    let topic = "source-restart";
    produce(
        &broker.url(),
        topic,
        (0..3).map(json_message).collect(),
        false,
        None,
    )
    .await;
    let mut source = PulsarSource::from_properties(&props(proxy.url(), topic, "restart")).unwrap();
    for batch in read(&mut source, 3, Duration::from_secs(30)).await {
        batch.delivered();
    }
    // Acks go out while the source is being read.
    assert_quiet(&mut source, Duration::from_secs(1)).await;

    broker.restart();
    produce(
        &broker.url(),
        topic,
        (3..6).map(json_message).collect(),
        false,
        None,
    )
    .await;
    let batches = read(&mut source, 3, Duration::from_secs(60)).await;
    assert_eq!(numbers(&batches), vec![3, 4, 5]);
    for batch in batches {
        batch.delivered();
    }
    assert_quiet(&mut source, Duration::from_secs(1)).await;

    let connections = proxy.connections();
    proxy.drop_connections();
    produce(
        &broker.url(),
        topic,
        (6..9).map(json_message).collect(),
        false,
        None,
    )
    .await;
    let batches = read(&mut source, 3, Duration::from_secs(60)).await;
    assert_eq!(numbers(&batches), vec![6, 7, 8]);
    for batch in batches {
        batch.delivered();
    }
    assert!(
        proxy.connections() > connections,
        "the source connected again"
    );
    source.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_payloads_go_to_bad_records_and_compressed_topics_are_read() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    let topic = "source-bad";
    produce(
        &broker.url(),
        topic,
        vec![json_message(0), PyMessage::new("not json"), json_message(2)],
        false,
        Some("LZ4"),
    )
    .await;
    produce(
        &broker.url(),
        topic,
        vec![json_message(3)],
        false,
        Some("ZSTD"),
    )
    .await;
    let mut source = PulsarSource::from_properties(&props(proxy.url(), topic, "bad")).unwrap();
    let batches = read(&mut source, 4, Duration::from_secs(30)).await;
    assert_eq!(numbers(&batches), vec![0, 2, 3]);
    let bad: Vec<_> = batches.iter().flat_map(|b| &b.bad).collect();
    assert_eq!(bad.len(), 1);
    let text = bad[0].error.to_string();
    assert!(
        text.starts_with(&format!(
            "pulsar source: cannot decode json at topic persistent://public/default/{topic} message 0:1:-1"
        )),
        "{text}"
    );
    assert_eq!(bad[0].payload.as_deref(), Some(&b"not json"[..]));
    // A batch with a bad record is settled like any other.
    for batch in batches {
        batch.delivered();
    }
    source.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_and_connection_checks() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    proxy.require_token("source-token");
    let topic = "source-auth";
    produce(&broker.url(), topic, vec![json_message(1)], false, None).await;
    let with_token = |token: &str, url: &str| {
        props(url, topic, "auth")
            .with("auth_type", "token")
            .with("auth_params", serde_json::json!({ "token": token }))
    };

    let mut source =
        PulsarSource::from_properties(&with_token("source-token", proxy.url())).unwrap();
    let report = source.check(Duration::from_secs(10)).await;
    assert!(report.is_ok(), "{report}");
    let batches = read(&mut source, 1, Duration::from_secs(30)).await;
    assert_eq!(numbers(&batches), vec![1]);
    for batch in batches {
        batch.delivered();
    }
    source.close().await.unwrap();
    assert!(
        proxy
            .connects()
            .iter()
            .all(|c| c.method.as_deref() == Some("token")
                && c.data.as_deref() == Some(&b"source-token"[..]))
    );

    let mut wrong = PulsarSource::from_properties(&with_token("nope", proxy.url())).unwrap();
    let report = wrong.check(Duration::from_secs(10)).await;
    assert_eq!(
        report.failure().map(|s| s.to_owned_string()),
        Some("authenticate with the token: auth refused: AuthenticationError: Unable to authenticate".to_owned())
    );
    let err = wrong.next_batch().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "pulsar source: connect to {}: authenticate with the token: auth refused: AuthenticationError: Unable to authenticate",
            &proxy.url()["pulsar://".len()..]
        )
    );

    let port = testkit::free_port();
    let mut unreachable = PulsarSource::from_properties(&with_token(
        "source-token",
        &format!("pulsar://127.0.0.1:{port}"),
    ))
    .unwrap();
    let report = unreachable.check(Duration::from_secs(10)).await;
    let failure = report.failure().unwrap().to_owned_string();
    assert!(
        failure.starts_with(&format!(
            "connect to 127.0.0.1:{port}: unreachable: Connection refused"
        )),
        "{failure}"
    );
}

trait StepText {
    fn to_owned_string(&self) -> String;
}

impl StepText for connector_core::check::CheckStep {
    fn to_owned_string(&self) -> String {
        match &self.outcome {
            connector_core::check::CheckOutcome::Passed(d) => format!("{}: {d}", self.name),
            connector_core::check::CheckOutcome::Failed { kind, reason } => {
                format!("{}: {kind}: {reason}", self.name)
            }
        }
    }
}

#[test]
fn configuration_errors_name_the_property() {
    let err = PulsarSource::from_properties(&Properties::from_pairs([
        ("topic", "t"),
        ("broker_url", "pulsar://localhost:6650"),
        ("auth_type", "token"),
        ("data_type", "json"),
        ("subscription_type", "round_robin"),
        ("initial_position", "middle"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("property `auth_params`: `token` is required"),
        "{err}"
    );
    assert!(
        err.contains("property `subscription_type`: expected one of `shared`, `exclusive`, `failover`, `key_shared`, got `round_robin`"),
        "{err}"
    );
    assert!(
        err.contains(
            "property `initial_position`: expected one of `latest`, `earliest`, got `middle`"
        ),
        "{err}"
    );
    let err = PulsarSource::from_properties(&Properties::from_pairs([
        ("topic", "t"),
        ("broker_url", "pulsar://localhost:6650"),
        ("auth_type", ""),
    ]))
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "pulsar source: property `data_type`: required property is missing"
    );
    // Without an id or a name, a random subscription.
    let source = PulsarSource::from_properties(&Properties::from_pairs([
        ("topic", "t"),
        ("broker_url", "pulsar://localhost:6650"),
        ("auth_type", ""),
        ("data_type", "text"),
    ]))
    .unwrap();
    assert!(source.subscription().starts_with("timeplus-source-"));
    assert_eq!(source.subscription().len(), "timeplus-source-".len() + 36);
}

/// A reading record in Avro with logical types, registered in the schema
/// registry stand-in; messages carry the Confluent framing (magic byte 0,
/// the schema id) as Kafka-oriented producers write them.
const READING_AVRO: &str = r#"{
  "type": "record", "name": "Reading", "namespace": "iot.v1",
  "fields": [
    {"name": "n", "type": "long"},
    {"name": "device", "type": "string"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "value", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}"#;

fn avro_reading(id: u32, n: i64) -> Vec<u8> {
    use apache_avro::types::Value as Avro;
    let schema = apache_avro::Schema::parse_str(READING_AVRO).unwrap();
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(Avro::Record(vec![
            ("n".into(), Avro::Long(n)),
            ("device".into(), Avro::String(format!("d{}", n % 2))),
            ("at".into(), Avro::TimestampMillis(1_700_000_000_000 + n)),
            (
                "value".into(),
                Avro::Decimal(apache_avro::Decimal::from((2_000 + n).to_be_bytes())),
            ),
            (
                "note".into(),
                if n % 2 == 0 {
                    Avro::Union(1, Box::new(Avro::String("even".into())))
                } else {
                    Avro::Union(0, Box::new(Avro::Null))
                },
            ),
        ]))
        .unwrap();
    let mut payload = vec![0];
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(&datum);
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_in_the_confluent_framing_with_the_schema_registry() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    let registry = testkit::registry::SchemaRegistry::start();
    let id = registry.add("readings-value", READING_AVRO);
    let topic = "persistent://public/default/readings-avro";
    let mut messages: Vec<PyMessage> = (0..10)
        .map(|n| PyMessage::new(avro_reading(id, n)).key(format!("k{n}")))
        .collect();
    // An id the registry does not know: bad data, not a stop.
    messages.insert(5, PyMessage::new(avro_reading(77, 99)));
    produce(&broker.url(), topic, messages, false, None).await;

    let p = props(proxy.url(), topic, "avro")
        .with("data_type", "avro")
        .with("schema_registry_address", registry.url());
    let mut source = PulsarSource::from_properties(&p).unwrap();
    let batches = read(&mut source, 11, Duration::from_secs(30)).await;
    assert_eq!(numbers(&batches), (0..10).collect::<Vec<_>>());
    let records: Vec<&connector_core::Record> = batches.iter().flat_map(|b| &b.records).collect();
    for (n, r) in (0i64..).zip(&records) {
        assert_eq!(r.get("device"), Some(&Value::from(format!("d{}", n % 2))));
        assert_eq!(
            r.get("at"),
            Some(&Value::Timestamp((1_700_000_000_000 + n) * 1000))
        );
        assert_eq!(
            r.get("value"),
            Some(&Value::Decimal(connector_core::Decimal::new(
                (2_000 + n).into(),
                2
            )))
        );
        let note = if n % 2 == 0 {
            Value::from("even")
        } else {
            Value::Null
        };
        assert_eq!(r.get("note"), Some(&note));
        assert_eq!(r.key.as_deref(), Some(format!("k{n}").as_bytes()));
    }
    let bad: Vec<_> = batches.iter().flat_map(|b| &b.bad).collect();
    assert_eq!(bad.len(), 1);
    let error = bad[0].error.to_string();
    assert!(
        error.contains("schema id 77 is not in the schema registry"),
        "{error}"
    );
    assert_eq!(
        registry.calls(),
        ["GET /schemas/ids/1", "GET /schemas/ids/77"],
        "each id is asked for once"
    );
    for batch in batches {
        batch.delivered();
    }
    source.close().await.unwrap();
}
