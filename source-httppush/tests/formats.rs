//! Request bodies in every format, over a real socket: JSON objects and
//! arrays, declared schemas and their conversion errors, event time, text,
//! binary, delimited, a user-supplied decoder, and protobuf configuration.

mod common;

use common::{client, config, post, run, string};
use connector_core::format::{DataFormat, Decoder, FormatConfig, MessageMeta, Progress};
use connector_core::{Error, Position, Properties, Record, Value};
use source_httppush::{HttpPushConfig, HttpPushSource};

fn props(pairs: &[(&str, &str)]) -> Properties {
    Properties::from_pairs(pairs.iter().copied())
}

/// `pairs` plus a fresh loopback address.
fn with_local(pairs: &[(&str, &str)]) -> HttpPushConfig {
    let addr = common::local();
    let mut all = props(pairs);
    all.set("http_server_ip", "127.0.0.1");
    all.set("http_server_port", addr.port().to_string());
    HttpPushConfig::from_properties(&all).expect("valid properties")
}

#[tokio::test]
async fn json_objects_and_arrays_become_records_in_order() {
    let running = run(config("/api/data")).await;
    let http = client();
    assert_eq!(
        post(
            &http,
            &running.url,
            r#"{"device": "d1", "temperature": 21.5}"#
        )
        .await,
        (200, "ok".to_owned())
    );
    let array = r#"[{"device": "d2", "temperature": 19}, {"device": "d3", "tags": ["a", "b"]}, {"device": "d4", "nested": {"x": 1}}]"#;
    assert_eq!(post(&http, &running.url, array).await, (200, "ok".into()));
    assert_eq!(post(&http, &running.url, "[]").await, (200, "ok".into()));

    let records = running.wait_for(4).await;
    let devices: Vec<String> = records.iter().map(|r| string(r, "device")).collect();
    assert_eq!(devices, ["d1", "d2", "d3", "d4"]);
    assert_eq!(records[0].get("temperature"), Some(&Value::Float64(21.5)));
    assert_eq!(records[1].get("temperature"), Some(&Value::Int64(19)));
    assert_eq!(records[3].get_path("nested.x"), Some(&Value::Int64(1)));
    let positions: Vec<Option<Position>> = records.iter().map(|r| r.position.clone()).collect();
    assert_eq!(
        positions,
        (0..4)
            .map(|n| Some(Position::Sequence(n)))
            .collect::<Vec<_>>()
    );
    // Without a timestamp field, the event time is the arrival time.
    let now = chrono_now_micros();
    for r in &records {
        let t = r.timestamp.expect("arrival time");
        assert!(now - t < 60_000_000 && t <= now, "{t} vs {now}");
    }
    let stats = running.counters.snapshot();
    assert_eq!((stats.accepted_requests, stats.accepted_records), (3, 4));
    running.stop().await;
}

fn chrono_now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[tokio::test]
async fn undecodable_bodies_get_400_with_the_reason_and_never_reach_the_pipeline() {
    let running = run(config("/in")).await;
    let http = client();
    let (status, body) = post(&http, &running.url, r#"{"device": "d1", "#).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "httppush source: cannot decode json at line 1 column 17: truncated input: EOF while parsing a value"
    );
    let (status, body) = post(&http, &running.url, r#"[{"a": 1}, 7]"#).await;
    assert_eq!(status, 400);
    assert!(
        body.ends_with("cannot decode json at array index 1 (line 1 column 12): invalid type: integer `7`, expected a JSON object"),
        "{body}"
    );
    let (status, body) = post(&http, &running.url, "").await;
    assert_eq!(status, 400, "{body}");
    // A good request after the bad ones is the only thing delivered; the
    // first element of the bad array was not kept either.
    assert_eq!(post(&http, &running.url, r#"{"a": 2}"#).await.0, 200);
    let records = running.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(running.collected.len(), 1);
    assert_eq!(records[0].get("a"), Some(&Value::Int64(2)));
    let stats = running.counters.snapshot();
    assert_eq!((stats.bad_requests, stats.accepted_requests), (3, 1));
    running.stop().await;
}

#[tokio::test]
async fn declared_schema_converts_values_and_sets_event_time() {
    let config = with_local(&[
        ("endpoint", "/orders"),
        (
            "schema",
            "id bigint, price float, paid boolean, at datetime",
        ),
        ("timestamp", "at"),
        ("timestamp_format", "yyyy-MM-dd HH:mm:ss"),
    ]);
    let running = run(config).await;
    let http = client();
    let body =
        r#"{"id": "7", "price": "12.5", "paid": 1, "at": "2024-05-01 10:00:00", "ignored": true}"#;
    assert_eq!(post(&http, &running.url, body).await, (200, "ok".into()));
    let records = running.wait_for(1).await;
    let r = &records[0];
    assert_eq!(
        r.schema.names().collect::<Vec<_>>(),
        ["id", "price", "paid", "at"]
    );
    assert_eq!(r.get("id"), Some(&Value::Int64(7)));
    assert_eq!(r.get("price"), Some(&Value::Float64(12.5)));
    assert_eq!(r.get("paid"), Some(&Value::Boolean(true)));
    assert_eq!(r.timestamp, Some(1_714_557_600_000_000));
    running.stop().await;
}

#[tokio::test]
async fn conversion_errors_get_400_naming_the_field() {
    let config = with_local(&[
        ("endpoint", "/orders"),
        ("schema", "id bigint, price float"),
    ]);
    let running = run(config).await;
    let http = client();
    let (status, body) = post(&http, &running.url, r#"{"id": "seven", "price": 1}"#).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("httppush source: cannot decode json"),
        "{body}"
    );
    assert!(body.contains("field `id`"), "{body}");
    assert!(body.contains("seven"), "{body}");

    let (status, body) = post(
        &http,
        &running.url,
        r#"[{"id": 1, "price": 2}, {"id": 2, "price": {"amount": 3}}]"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("array index 1"), "{body}");
    assert!(body.contains("field `price`"), "{body}");
    // Neither request left anything behind.
    assert_eq!(
        post(&http, &running.url, r#"{"id": 3, "price": 4}"#)
            .await
            .0,
        200
    );
    let records = running.wait_for(1).await;
    assert_eq!(records[0].get("id"), Some(&Value::Int64(3)));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(running.collected.len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn strict_validation_refuses_missing_fields() {
    let config = with_local(&[
        ("endpoint", "/strict"),
        ("schema", "id bigint, name string"),
        ("strict_validation", "true"),
    ]);
    let running = run(config).await;
    let (status, body) = post(&client(), &running.url, r#"{"id": 1}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("`name`"), "{body}");
    running.stop().await;
}

#[tokio::test]
async fn text_and_binary_bodies_are_one_record_each() {
    let text = run(with_local(&[("endpoint", "/text"), ("format", "text")])).await;
    let binary = run(with_local(&[
        ("endpoint", "/bin"),
        ("format", "binary"),
        ("schema", "payload bytea"),
    ]))
    .await;
    let http = client();
    assert_eq!(post(&http, &text.url, "hello\nworld").await.0, 200);
    let bytes: Vec<u8> = vec![0, 159, 146, 150, 255];
    assert_eq!(post(&http, &binary.url, bytes.clone()).await.0, 200);

    let records = text.wait_for(1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].values,
        vec![Value::String("hello\nworld".into())]
    );
    let records = binary.wait_for(1).await;
    assert_eq!(records[0].get("payload"), Some(&Value::Bytes(bytes)));
    text.stop().await;
    binary.stop().await;
}

#[tokio::test]
async fn delimited_bodies_split_lines_and_fields() {
    let config = with_local(&[
        ("endpoint", "/csv"),
        ("format", "delimited"),
        ("delimiter", "|"),
        ("fields", "id,name,score"),
        ("schema", "id bigint, name string, score float"),
    ]);
    let running = run(config).await;
    let http = client();
    let body = "1|ada|9.5\n2|\"bob | jr\"|7\n";
    assert_eq!(post(&http, &running.url, body).await, (200, "ok".into()));
    let records = running.wait_for(2).await;
    assert_eq!(records[0].get("id"), Some(&Value::Int64(1)));
    assert_eq!(records[1].get("name"), Some(&Value::from("bob | jr")));
    assert_eq!(records[1].get("score"), Some(&Value::Float64(7.0)));

    let (status, body) = post(&http, &running.url, "3|cy|lots").await;
    assert_eq!(status, 400);
    assert!(body.contains("field `score`"), "{body}");
    running.stop().await;
}

#[tokio::test]
async fn delimited_without_fields_names_columns_by_position() {
    let config = with_local(&[("endpoint", "/csv"), ("format", "delimited")]);
    let running = run(config).await;
    assert_eq!(post(&client(), &running.url, "a,b").await.0, 200);
    let records = running.wait_for(1).await;
    assert_eq!(records[0].get("col0"), Some(&Value::from("a")));
    assert_eq!(records[0].get("col1"), Some(&Value::from("b")));
    running.stop().await;
}

/// A decoder of the application's own line protocol: `key=value` pairs
/// separated by `;`, one record per body.
struct KeyValueDecoder;

impl Decoder for KeyValueDecoder {
    fn format(&self) -> &'static str {
        "key-value"
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> connector_core::Result<Progress> {
        let text = std::str::from_utf8(payload)
            .map_err(|e| Error::decode("key-value", "payload", e.to_string()))?;
        let mut pairs = Vec::new();
        for (i, part) in text.split(';').enumerate() {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::decode("key-value", format!("pair {i}"), "expected key=value")
            })?;
            pairs.push((k.trim().to_owned(), Value::from(v.trim())));
        }
        out.push(Record::from_pairs(pairs));
        Ok(Progress::Done)
    }
}

#[tokio::test]
async fn a_user_supplied_decoder_decodes_bodies() {
    let config = config("/kv").with_decoder(|| Box::new(KeyValueDecoder));
    let running = run(config).await;
    let http = client();
    assert_eq!(
        post(&http, &running.url, "device=d1; state=on").await.0,
        200
    );
    let records = running.wait_for(1).await;
    assert_eq!(records[0].get("state"), Some(&Value::from("on")));
    let (status, body) = post(&http, &running.url, "device").await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "httppush source: cannot decode key-value at pair 0: expected key=value"
        )
    );
    running.stop().await;
}

#[tokio::test]
async fn formats_configured_in_code() {
    let config = config("/csv").with_format(
        FormatConfig::new(DataFormat::DELIMITED)
            .with_delimiter(b';')
            .with_fields(["a", "b"]),
    );
    let running = run(config).await;
    assert_eq!(post(&client(), &running.url, "1;2").await.0, 200);
    let records = running.wait_for(1).await;
    assert_eq!(records[0].get("b"), Some(&Value::from("2")));
    running.stop().await;
}

#[tokio::test]
async fn protobuf_bodies_decode_with_the_proto_file() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("reading.proto");
    std::fs::write(
        &proto,
        r#"syntax = "proto3";
package iot.v1;
message Reading {
  string device = 1;
  double value = 2;
  repeated string tags = 3;
  map<string, int64> counters = 4;
}
"#,
    )
    .unwrap();
    let running = run(with_local(&[
        ("endpoint", "/pb"),
        ("format", "protobuf"),
        ("proto_file", proto.to_str().unwrap()),
        ("proto_message", "iot.v1.Reading"),
    ]))
    .await;

    // The body is built with prost-reflect from the same file, independently
    // of our encoder.
    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(
        protox::compile([&proto], [dir.path()]).unwrap(),
    )
    .unwrap();
    let descriptor = pool.get_message_by_name("iot.v1.Reading").unwrap();
    let mut message = prost_reflect::DynamicMessage::new(descriptor);
    message.set_field_by_name("device", prost_reflect::Value::String("d1".into()));
    message.set_field_by_name("value", prost_reflect::Value::F64(21.5));
    message.set_field_by_name(
        "tags",
        prost_reflect::Value::List(vec![prost_reflect::Value::String("a".into())]),
    );
    let body = prost::Message::encode_to_vec(&message);

    let http = client();
    assert_eq!(post(&http, &running.url, body).await, (200, "ok".into()));
    let records = running.wait_for(1).await;
    assert_eq!(records[0].get("device"), Some(&Value::from("d1")));
    assert_eq!(records[0].get("value"), Some(&Value::Float64(21.5)));
    assert_eq!(
        records[0].get("tags"),
        Some(&Value::Array(vec![Value::from("a")]))
    );

    // Bytes that are not a Reading: 400 with the reason, nothing kept.
    let (status, answer) = post(&http, &running.url, vec![0x0a, 0xff, 0xff]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("protobuf"), "{answer}");
    running.stop().await;
}

#[test]
fn protobuf_needs_its_proto_file_and_message() {
    let err =
        HttpPushSource::from_properties(&props(&[("endpoint", "/pb"), ("format", "protobuf")]))
            .unwrap_err()
            .to_string();
    assert_eq!(
        err,
        "httppush source: property `format`: `protobuf` needs `proto_file` (the `.proto` file) and `proto_message` (the message type)"
    );
}

#[test]
fn unknown_formats_and_bad_format_properties_are_named() {
    let err = HttpPushSource::from_properties(&props(&[
        ("endpoint", "/x"),
        ("format", "xml"),
        ("delimiter", "ab"),
        ("schema", "id bigint,"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("httppush source: invalid configuration:"),
        "{err}"
    );
    assert!(
        err.contains("property `format`: expected one of `json`, `text`, `binary`, `delimited`, `protobuf`, got `xml`"),
        "{err}"
    );
    assert!(
        err.contains("property `delimiter`: expected one ASCII character"),
        "{err}"
    );
}
