//! The pulsar sink against a real Pulsar-protocol broker (`pulsar-lite`,
//! see `testkit::pulsar`): what it writes is read back by an independent
//! client (the Python `pulsar-client`); token auth is checked on the wire by
//! the protocol proxy in front of the broker; OAuth2 tokens come from a
//! token endpoint served here; connection checks report each failure.

use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::{Ack, Batch, Header, Properties, Record, Sink, Value};
use sink_pulsar::PulsarSink;
use testkit::pulsar::{PulsarBroker, PulsarProxy, consume_with_python};

fn props(url: &str, topic: &str) -> Properties {
    Properties::from_pairs([("topic", topic), ("broker_url", url), ("auth_type", "")])
}

fn record(n: i64) -> Record {
    let mut record = Record::from_pairs([
        ("n", Value::Int64(n)),
        ("name", Value::from(format!("item-{n}"))),
    ])
    .with_key(format!("key-{}", n % 3))
    .with_timestamp(1_700_000_000_000_000 + n * 1000);
    record.headers.push(Header::new("origin", "test"));
    record
}

async fn send(sink: &mut PulsarSink, records: Vec<Record>) -> connector_core::AckStatus {
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(records, ack)).await.unwrap();
    sink.flush().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), outcome)
        .await
        .expect("batch resolved")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_read_back_by_the_python_client() {
    let broker = PulsarBroker::start();
    let topic = "persistent://public/default/sink-readback";
    let mut sink = PulsarSink::from_properties(&props(&broker.url(), topic)).unwrap();

    // Two batches, so Pulsar batching and more than one send are covered.
    let status = send(&mut sink, (0..250).map(record).collect()).await;
    assert!(status.is_delivered(), "{status:?}");
    let status = send(&mut sink, (250..300).map(record).collect()).await;
    assert!(status.is_delivered(), "{status:?}");
    sink.close().await.unwrap();

    let read = tokio::task::spawn_blocking({
        let url = broker.url();
        move || consume_with_python(&url, topic, "verify", 300, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert_eq!(read.len(), 300, "every record arrives once");
    for (n, message) in read.iter().enumerate() {
        let json: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"n": n, "name": format!("item-{n}")})
        );
        assert_eq!(
            message.key.as_deref(),
            Some(format!("key-{}", n % 3).as_str())
        );
        assert_eq!(
            message.properties,
            vec![("origin".to_owned(), "test".to_owned())]
        );
        assert_eq!(message.event_time_ms, Some(1_700_000_000_000 + n as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_format_and_binary_keys() {
    let broker = PulsarBroker::start();
    let topic = "sink-text";
    let props = props(&broker.url(), topic)
        .with("data_type", "text")
        .with("batch_count", "1");
    let mut sink = PulsarSink::from_properties(&props).unwrap();
    let records = vec![
        Record::from_pairs([("raw", Value::from("hello"))]).with_key(vec![0xff, 0x00, 0x01]),
        Record::from_pairs([("raw", Value::from("world"))]),
    ];
    assert!(send(&mut sink, records).await.is_delivered());
    sink.close().await.unwrap();
    let read = tokio::task::spawn_blocking({
        let url = broker.url();
        move || consume_with_python(&url, topic, "verify", 2, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert_eq!(read[0].payload, b"hello");
    // Not UTF-8: sent Base64-encoded with the key-is-Base64 flag, as Pulsar does.
    assert_eq!(read[0].key.as_deref(), Some("/wAB"));
    assert_eq!(read[1].payload, b"world");
    assert_eq!(read[1].key, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_encoder_refuses_reject_the_batch_and_the_rest_is_written() {
    let broker = PulsarBroker::start();
    let topic = "sink-refused";
    let props = props(&broker.url(), topic).with("data_type", "text");
    let mut sink = PulsarSink::from_properties(&props).unwrap();
    let records = vec![
        Record::from_pairs([("raw", Value::from("good"))]),
        Record::from_pairs([("other", Value::Int64(1))]), // no `raw` column
    ];
    let status = send(&mut sink, records).await;
    let error = status.error().expect("rejected").to_string();
    assert!(
        matches!(status, connector_core::AckStatus::Rejected(_)),
        "{status:?}"
    );
    assert!(
        error.starts_with("pulsar sink: rejected 1 of 2 records:"),
        "{error}"
    );
    sink.close().await.unwrap();
    let read = tokio::task::spawn_blocking({
        let url = broker.url();
        move || consume_with_python(&url, topic, "verify", 2, Duration::from_secs(3))
    })
    .await
    .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].payload, b"good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_is_sent_as_the_broker_expects() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    proxy.require_token("s3cr3t-jwt");
    let props = props(proxy.url(), "sink-token")
        .with("auth_type", "token")
        .with("auth_params", serde_json::json!({"token": "s3cr3t-jwt"}));
    let mut sink = PulsarSink::from_properties(&props).unwrap();
    assert!(!format!("{sink:?}").contains("s3cr3t"));
    assert!(
        send(&mut sink, (0..10).map(record).collect())
            .await
            .is_delivered()
    );
    sink.close().await.unwrap();
    let connects = proxy.connects();
    assert!(!connects.is_empty());
    for connect in connects {
        assert_eq!(connect.method.as_deref(), Some("token"));
        assert_eq!(connect.data.as_deref(), Some(&b"s3cr3t-jwt"[..]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_sink_with_the_brokers_reason() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    proxy.require_token("right");
    let props = props(proxy.url(), "sink-token")
        .with("auth_type", "token")
        .with("auth_params", serde_json::json!({"token": "wrong"}));
    let mut sink = PulsarSink::from_properties(&props).unwrap();
    let (ack, outcome) = Ack::channel();
    let err = sink
        .send(Batch::with_ack(vec![record(1)], ack))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains(
            "authenticate with the token: auth refused: AuthenticationError: Unable to authenticate"
        ),
        "{text}"
    );
    assert!(!text.contains("wrong"), "no secret in errors: {text}");
    assert!(!outcome.await.is_delivered());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_success_wrong_port_wrong_token_and_tls_to_a_plain_port() {
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    proxy.require_token("right");
    let with_token = |url: &str, token: &str| {
        props(url, "sink-check")
            .with("auth_type", "token")
            .with("auth_params", serde_json::json!({ "token": token }))
    };
    let timeout = Duration::from_secs(10);

    let mut ok = PulsarSink::from_properties(&with_token(proxy.url(), "right")).unwrap();
    let report = ok.check(timeout).await;
    assert!(report.is_ok(), "{report}");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "read token".to_owned(),
            format!("connect to {}", &proxy.url()["pulsar://".len()..]),
            "authenticate with the token".to_owned(),
            "look up topic persistent://public/default/sink-check".to_owned(),
        ]
    );
    assert!(
        report.to_string().contains("served by pulsar://127.0.0.1:"),
        "{report}"
    );

    let closed = testkit::free_port();
    let mut wrong_port = PulsarSink::from_properties(&with_token(
        &format!("pulsar://127.0.0.1:{closed}"),
        "right",
    ))
    .unwrap();
    let report = wrong_port.check(timeout).await;
    let failure = report.failure().expect("fails");
    assert_eq!(failure.name, format!("connect to 127.0.0.1:{closed}"));
    assert!(
        matches!(&failure.outcome, CheckOutcome::Failed { kind: FailureKind::Unreachable, reason } if reason.contains("onnection refused")),
        "{report}"
    );

    let mut wrong_token = PulsarSink::from_properties(&with_token(proxy.url(), "wrong")).unwrap();
    let report = wrong_token.check(timeout).await;
    let failure = report.failure().expect("fails");
    assert_eq!(failure.name, "authenticate with the token");
    assert_eq!(
        failure.outcome,
        CheckOutcome::Failed {
            kind: FailureKind::AuthRefused,
            reason: "AuthenticationError: Unable to authenticate".into()
        }
    );
    assert!(!report.to_string().contains("wrong"), "{report}");

    let tls_url = format!("pulsar+ssl://127.0.0.1:{}", broker.addr().port());
    let mut tls = PulsarSink::from_properties(&props(&tls_url, "sink-check")).unwrap();
    let report = tls.check(Duration::from_secs(3)).await;
    let failure = report.failure().expect("fails");
    assert_eq!(failure.name, "TLS handshake with 127.0.0.1");
    assert!(
        matches!(
            &failure.outcome,
            CheckOutcome::Failed {
                kind: FailureKind::Tls | FailureKind::Timeout,
                ..
            }
        ),
        "{report}"
    );
}

/// A form body as name/value pairs.
type Form = Vec<(String, String)>;

/// An OAuth2 issuer: OpenID discovery and a client-credentials token
/// endpoint that accepts one client and records what it was sent.
#[derive(Clone, Default)]
struct Issuer {
    base: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Form>>>,
}

async fn discovery(State(issuer): State<Issuer>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "issuer": issuer.base,
        "token_endpoint": format!("{}/oauth/token", issuer.base),
    }))
}

async fn token(
    State(issuer): State<Issuer>,
    body: String,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let form: Vec<(String, String)> = url_pairs(&body);
    issuer.requests.lock().unwrap().push(form.clone());
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") == Some("client_credentials")
        && get("client_id") == Some("pipeline")
        && get("client_secret") == Some("client-s3cret")
    {
        (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({
                "access_token": "oauth-access-token",
                "token_type": "Bearer",
                "expires_in": 3600,
            })),
        )
    } else {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({
                "error": "invalid_client",
                "error_description": "client authentication failed",
            })),
        )
    }
}

fn url_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn start_issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = Issuer {
        base: format!("http://{}", listener.local_addr().unwrap()),
        ..Issuer::default()
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth/token", post(token))
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_token_is_fetched_from_the_token_endpoint_and_sent_to_the_broker() {
    let issuer = start_issuer().await;
    let broker = PulsarBroker::start();
    let proxy = PulsarProxy::start(broker.addr());
    proxy.require_token("oauth-access-token");
    // camelCase spellings, a credentials file, audience and scope.
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        key_file.path(),
        r#"{"type": "client_credentials", "client_id": "pipeline", "client_secret": "client-s3cret"}"#,
    )
    .unwrap();
    let props = props(proxy.url(), "sink-oauth2")
        .with("auth_type", "oauth2")
        .with(
            "auth_params",
            serde_json::json!({
                "issuerUrl": issuer.base,
                "privateKey": format!("file://{}", key_file.path().display()),
                "audience": "urn:pulsar:test",
                "scope": "produce",
            }),
        );
    let mut sink = PulsarSink::from_properties(&props).unwrap();
    let report = sink.check(Duration::from_secs(10)).await;
    assert!(report.is_ok(), "{report}");
    assert!(
        report.steps[0]
            .name
            .starts_with("fetch OAuth2 token from http://127.0.0.1:")
    );
    assert!(
        send(&mut sink, (0..5).map(record).collect())
            .await
            .is_delivered()
    );
    sink.close().await.unwrap();

    let requests = issuer.requests.lock().unwrap().clone();
    let first = &requests[0];
    for expected in [
        ("grant_type", "client_credentials"),
        ("client_id", "pipeline"),
        ("client_secret", "client-s3cret"),
        ("audience", "urn:pulsar:test"),
        ("scope", "produce"),
    ] {
        assert!(
            first.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {first:?}"
        );
    }
    let connects = proxy.connects();
    assert!(connects.iter().all(|c| c.method.as_deref() == Some("token")
        && c.data.as_deref() == Some(&b"oauth-access-token"[..])));

    // snake_case spellings with a wrong secret: refused at the token endpoint.
    let bad = props_with_secret(proxy.url(), &issuer.base, "not-the-secret");
    let mut sink = PulsarSink::from_properties(&bad).unwrap();
    let report = sink.check(Duration::from_secs(10)).await;
    let failure = report.failure().expect("fails");
    assert!(failure.name.starts_with("fetch OAuth2 token"), "{report}");
    let CheckOutcome::Failed { kind, reason } = &failure.outcome else {
        unreachable!()
    };
    assert_eq!(*kind, FailureKind::AuthRefused);
    assert!(
        reason.ends_with("for client `pipeline`: HTTP 401 Unauthorized: invalid_client: client authentication failed"),
        "{reason}"
    );
    assert!(!report.to_string().contains("not-the-secret"));
}

fn props_with_secret(url: &str, issuer: &str, secret: &str) -> Properties {
    props(url, "sink-oauth2").with("auth_type", "oauth2").with(
        "auth_params",
        serde_json::json!({
            "issuer_url": issuer,
            "client_id": "pipeline",
            "client_secret": secret,
        }),
    )
}

#[test]
fn configuration_errors_name_the_property() {
    let err = PulsarSink::from_properties(&Properties::from_pairs([
        ("topic", "a/b"),
        ("broker_url", "http://localhost:6650"),
        ("auth_type", "oauth2"),
        ("auth_params", r#"{"issuer_url": "https://x", "client_id": "a", "client_secret": "hunter2", "audiance": "x"}"#),
        ("data_type", "xml"),
        ("batch_count", "0"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("pulsar sink: invalid configuration:"),
        "{err}"
    );
    assert!(
        err.contains("property `topic`: `a/b` is not a topic name"),
        "{err}"
    );
    assert!(
        err.contains("property `broker_url`: expected `pulsar://host:6650` or `pulsar+ssl://host:6651`, got `http://localhost:6650`"),
        "{err}"
    );
    assert!(
        err.contains("property `auth_params`: unknown key(s) `audiance`"),
        "{err}"
    );
    assert!(
        err.contains("property `data_type`: expected one of"),
        "{err}"
    );
    assert!(
        err.contains("property `batch_count`: must be at least 1"),
        "{err}"
    );
    assert!(!err.contains("hunter2"));

    let err = PulsarSink::from_properties(&Properties::from_pairs([("topic", "t")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("property `broker_url`: required property is missing"),
        "{err}"
    );
    assert!(
        err.contains("property `auth_type`: required property is missing"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_in_the_confluent_framing_is_registered_and_read_back_with_apache_avro() {
    use apache_avro::types::Value as Avro;
    let broker = PulsarBroker::start();
    let registry = testkit::registry::SchemaRegistry::start();
    let topic = "persistent://public/default/sink-avro";
    let schema = r#"{
      "type": "record", "name": "Item", "namespace": "shop.v1",
      "fields": [
        {"name": "n", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "note", "type": ["null", "string"], "default": null}
      ]
    }"#;
    let p = props(&broker.url(), topic)
        .with("data_type", "avro")
        .with("schema_registry_address", registry.url())
        .with("avro_schema", schema);
    let mut sink = PulsarSink::from_properties(&p).unwrap();
    let item = |n: i64| {
        Record::from_pairs([
            ("n", Value::Int64(n)),
            ("name", Value::from(format!("item-{n}"))),
            ("at", Value::Timestamp(1_700_000_000_000_001 + n)),
            (
                "price",
                Value::Decimal(connector_core::Decimal::new(999 + i128::from(n), 2)),
            ),
            (
                "note",
                if n % 2 == 0 {
                    Value::from("even")
                } else {
                    Value::Null
                },
            ),
        ])
        .with_key(format!("key-{}", n % 3))
    };
    let status = send(&mut sink, (0..20).map(item).collect()).await;
    assert!(status.is_delivered(), "{status:?}");
    sink.close().await.unwrap();
    // Registered under the topic's short name, `<topic>-value`.
    assert_eq!(registry.ids("sink-avro-value"), [1]);

    let read = tokio::task::spawn_blocking({
        let url = broker.url();
        move || consume_with_python(&url, topic, "verify", 20, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert_eq!(read.len(), 20);
    let writer = apache_avro::Schema::parse_str(&registry.schema(1).unwrap()).unwrap();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&writer)
        .build()
        .unwrap();
    for (n, message) in (0i64..).zip(&read) {
        let payload = &message.payload;
        assert_eq!(payload[0], 0, "magic byte");
        assert_eq!(u32::from_be_bytes(payload[1..5].try_into().unwrap()), 1);
        let mut datum = &payload[5..];
        let Avro::Record(fields) = reader.read_value(&mut datum).unwrap() else {
            panic!("not a record")
        };
        assert!(datum.is_empty());
        let expected = [
            ("n", Avro::Long(n)),
            ("name", Avro::String(format!("item-{n}"))),
            ("at", Avro::TimestampMicros(1_700_000_000_000_001 + n)),
            (
                "price",
                Avro::Decimal(apache_avro::Decimal::from((999 + n).to_be_bytes())),
            ),
            (
                "note",
                if n % 2 == 0 {
                    Avro::Union(1, Box::new(Avro::String("even".into())))
                } else {
                    Avro::Union(0, Box::new(Avro::Null))
                },
            ),
        ];
        let got: Vec<(&str, &Avro)> = fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let want: Vec<(&str, &Avro)> = expected.iter().map(|(k, v)| (*k, v)).collect();
        assert_eq!(got, want);
        assert_eq!(
            message.key.as_deref(),
            Some(format!("key-{}", n % 3).as_str())
        );
    }
}
