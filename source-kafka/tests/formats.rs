//! The Kafka source with the heavy and change-event formats, over
//! librdkafka's mock cluster: Avro in the Confluent wire format with the
//! schema registry stand-in (`testkit::registry`), Debezium JSON events as
//! the Postgres connector writes them (plain and upsert), Protobuf from a
//! `.proto` file, and bad Avro data under each bad-data policy. Payloads
//! are built by independent writers (`apache-avro`, `prost-reflect`,
//! `serde_json`), never by our encoders.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use apache_avro::types::Value as Avro;
use common::{collect, expect_records, init_logs, props};
use connector_core::memory::CollectSink;
use connector_core::{
    BadDataPolicy, ChangeKind, DataType, Decimal, Pipeline, Properties, Record, Value,
};
use kafka_common::testing::{MockKafka, TestMessage};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MapKey, Value as Proto};
use source_kafka::KafkaSource;
use testkit::registry::SchemaRegistry;

/// Version 1 of a payment record with Avro's logical types.
const PAYMENT_V1: &str = r#"{
  "type": "record", "name": "Payment", "namespace": "shop.v1",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "customer", "type": "string"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "paid_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "settled_at", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "default": null},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "method", "type": {"type": "enum", "name": "Method", "symbols": ["CARD", "IBAN"]}}
  ]
}"#;

/// Version 2 adds a field with a default (a compatible evolution).
const PAYMENT_V2: &str = r#"{
  "type": "record", "name": "Payment", "namespace": "shop.v1",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "customer", "type": "string"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "paid_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "settled_at", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "default": null},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "method", "type": {"type": "enum", "name": "Method", "symbols": ["CARD", "IBAN"]}},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}"#;

const PAID_AT_MS: i64 = 1_700_000_000_000;

fn uuid(n: i64) -> String {
    format!("6d8f3a4e-1b2c-4d5e-8f90-{n:012x}")
}

/// Payment `n` written by apache-avro with `schema` (v2 when `note`).
fn payment_datum(schema: &str, n: i64, note: Option<&str>) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    let mut fields = vec![
        ("id".to_owned(), Avro::Long(n)),
        ("customer".to_owned(), Avro::String(format!("c{n}"))),
        (
            "amount".to_owned(),
            // Sign-extended big-endian two's complement, as some writers emit.
            Avro::Decimal(apache_avro::Decimal::from(
                (n * 100 + 5).to_be_bytes().to_vec(),
            )),
        ),
        ("paid_at".to_owned(), Avro::TimestampMillis(PAID_AT_MS + n)),
        (
            "settled_at".to_owned(),
            if n % 2 == 0 {
                Avro::Union(
                    1,
                    Box::new(Avro::TimestampMicros((PAID_AT_MS + n) * 1000 + 7)),
                )
            } else {
                Avro::Union(0, Box::new(Avro::Null))
            },
        ),
        ("day".to_owned(), Avro::Date(19_700 + n as i32)),
        ("ref".to_owned(), Avro::Uuid(uuid(n).parse().unwrap())),
        (
            "method".to_owned(),
            Avro::Enum((n % 2) as u32, ["CARD", "IBAN"][(n % 2) as usize].into()),
        ),
    ];
    if schema_has_note(&schema) {
        fields.push((
            "note".to_owned(),
            match note {
                Some(text) => Avro::Union(1, Box::new(Avro::String(text.into()))),
                None => Avro::Union(0, Box::new(Avro::Null)),
            },
        ));
    }
    apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(Avro::Record(fields))
        .unwrap()
}

fn schema_has_note(schema: &apache_avro::Schema) -> bool {
    matches!(schema, apache_avro::Schema::Record(r) if r.fields.iter().any(|f| f.name == "note"))
}

/// The Confluent wire format: magic byte 0, the schema id (big-endian
/// u32), then the Avro datum.
fn wire(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

fn avro_props(kafka: &MockKafka, topic: &str, registry: &SchemaRegistry) -> Properties {
    props(kafka, topic, "avro").with("schema_registry_address", registry.url())
}

#[tokio::test]
async fn avro_in_the_confluent_wire_format_with_logical_types_and_two_schema_versions() {
    init_logs();
    let kafka = MockKafka::start();
    let registry = SchemaRegistry::start();
    let v1 = registry.add("payments-value", PAYMENT_V1);
    let v2 = registry.add("payments-value", PAYMENT_V2);
    assert_eq!((v1, v2), (1, 2));
    kafka.create_topic("payments", 2);
    kafka.produce(
        "payments",
        (0..40).map(|n| {
            let payload = if n < 20 {
                wire(v1, &payment_datum(PAYMENT_V1, n, None))
            } else {
                let note = (n % 3 == 0).then_some("gift");
                wire(v2, &payment_datum(PAYMENT_V2, n, note))
            };
            TestMessage::new(payload)
                .key(format!("c{n}"))
                .partition((n % 2) as i32)
        }),
    );
    let (handle, collected, status) = collect(
        KafkaSource::from_properties(&avro_props(&kafka, "payments", &registry).with("group", "p"))
            .unwrap(),
    );
    expect_records(&collected, 40).await;
    common::eventually("commits to reach the end", || {
        status.committed_offsets() == BTreeMap::from([(0, 20), (1, 20)])
    })
    .await;
    handle.stop();
    let report = handle.join().await.unwrap();
    assert_eq!(report.metrics.records_out, 40);
    assert_eq!(report.metrics.bad_records, 0);

    let mut records = collected.records();
    records.sort_by_key(|r| r.get("id").and_then(Value::as_i64));
    for (n, r) in (0i64..).zip(&records) {
        assert_eq!(r.get("id"), Some(&Value::Int64(n)));
        assert_eq!(r.get("customer"), Some(&Value::from(format!("c{n}"))));
        assert_eq!(
            r.get("amount"),
            Some(&Value::Decimal(Decimal::new((n * 100 + 5).into(), 2)))
        );
        assert_eq!(
            r.get("paid_at"),
            Some(&Value::Timestamp((PAID_AT_MS + n) * 1000))
        );
        let settled = if n % 2 == 0 {
            Value::Timestamp((PAID_AT_MS + n) * 1000 + 7)
        } else {
            Value::Null
        };
        assert_eq!(r.get("settled_at"), Some(&settled));
        assert_eq!(r.get("day"), Some(&Value::Date(19_700 + n as i32)));
        assert_eq!(r.get("ref"), Some(&Value::from(uuid(n))));
        assert_eq!(
            r.get("method"),
            Some(&Value::from(["CARD", "IBAN"][(n % 2) as usize]))
        );
        assert_eq!(r.key.as_deref(), Some(format!("c{n}").as_bytes()));
        // Each version's records carry that version's columns.
        if n < 20 {
            assert_eq!(r.get("note"), None, "v1 has no note");
        } else {
            let note = if n % 3 == 0 {
                Value::from("gift")
            } else {
                Value::Null
            };
            assert_eq!(r.get("note"), Some(&note));
        }
        assert_eq!(r.kind, ChangeKind::Insert);
    }
    // Column types follow the logical types.
    let types: BTreeMap<&str, (DataType, bool)> = records[0]
        .schema
        .fields()
        .iter()
        .map(|f| (f.name.as_str(), (f.data_type.clone(), f.nullable)))
        .collect();
    assert_eq!(types["paid_at"], (DataType::Timestamp, false));
    assert_eq!(types["settled_at"], (DataType::Timestamp, true));
    assert_eq!(types["day"], (DataType::Date, false));
    assert!(matches!(
        types["amount"].0,
        DataType::Decimal { scale: 2, .. }
    ));
    // Each schema is fetched once per partition reader, then cached.
    let calls = registry.calls();
    assert!(
        calls
            .iter()
            .all(|c| c == "GET /schemas/ids/1" || c == "GET /schemas/ids/2"),
        "{calls:?}"
    );
    assert!(
        (2..=4).contains(&calls.len()),
        "fetched once per reader: {calls:?}"
    );
}

/// Bad Avro data: an unknown schema id and a payload that is not in the
/// wire format, between good messages.
fn bad_avro_topic(kafka: &MockKafka, topic: &str, registry: &SchemaRegistry) {
    let id = registry.add(&format!("{topic}-value"), PAYMENT_V1);
    kafka.create_topic(topic, 1);
    kafka.produce(
        topic,
        [
            TestMessage::new(wire(id, &payment_datum(PAYMENT_V1, 0, None))),
            TestMessage::new(wire(99, &payment_datum(PAYMENT_V1, 1, None))),
            TestMessage::new(wire(id, &payment_datum(PAYMENT_V1, 2, None))),
            TestMessage::new(br#"{"id": 3}"#.to_vec()),
            TestMessage::new(wire(id, &payment_datum(PAYMENT_V1, 4, None))),
        ],
    );
}

fn ids(records: &[Record]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r.get("id").and_then(Value::as_i64).expect("id column"))
        .collect()
}

#[tokio::test]
async fn unknown_avro_schema_ids_are_skipped_without_stopping_the_partition() {
    init_logs();
    let kafka = MockKafka::start();
    let registry = SchemaRegistry::start();
    bad_avro_topic(&kafka, "avro-skip", &registry);
    let source = KafkaSource::from_properties(
        &avro_props(&kafka, "avro-skip", &registry).with("group", "skip"),
    )
    .unwrap();
    let (sink, collected) = CollectSink::new();
    let handle = Pipeline::new(source)
        .to(sink)
        .on_bad_data(BadDataPolicy::Skip)
        .spawn();
    expect_records(&collected, 3).await;
    common::eventually("commits past the bad records", || {
        kafka.committed("skip", "avro-skip") == BTreeMap::from([(0, 5)])
    })
    .await;
    // The partition goes on after them.
    kafka.produce(
        "avro-skip",
        [TestMessage::new(wire(
            1,
            &payment_datum(PAYMENT_V1, 5, None),
        ))],
    );
    expect_records(&collected, 4).await;
    handle.stop();
    let report = handle.join().await.unwrap();
    assert_eq!(ids(&collected.records()), vec![0, 2, 4, 5]);
    assert_eq!(report.metrics.bad_records, 2);
    // The unknown id was asked for once, not once per message or retry.
    let calls = registry.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "GET /schemas/ids/99").count(),
        1,
        "{calls:?}"
    );
}

#[tokio::test]
async fn unknown_avro_schema_ids_go_to_the_dead_letter_sink() {
    init_logs();
    let kafka = MockKafka::start();
    let registry = SchemaRegistry::start();
    bad_avro_topic(&kafka, "avro-dl", &registry);
    let source =
        KafkaSource::from_properties(&avro_props(&kafka, "avro-dl", &registry).with("group", "dl"))
            .unwrap();
    let (sink, collected) = CollectSink::new();
    let (dead, dead_letters) = CollectSink::new();
    let handle = Pipeline::new(source).to(sink).dead_letter(dead).spawn();
    expect_records(&collected, 3).await;
    expect_records(&dead_letters, 2).await;
    common::eventually("commits past the bad records", || {
        kafka.committed("dl", "avro-dl") == BTreeMap::from([(0, 5)])
    })
    .await;
    handle.stop();
    handle.join().await.unwrap();
    assert_eq!(ids(&collected.records()), vec![0, 2, 4]);
    let dead = dead_letters.records();
    let field = |r: &Record, name: &str| r.get(name).and_then(Value::as_str).unwrap().to_owned();
    assert_eq!(
        field(&dead[0], "position"),
        "topic avro-dl partition 0 offset 1"
    );
    let error = field(&dead[0], "error");
    assert!(
        error.starts_with("kafka source: cannot decode avro at topic avro-dl partition 0 offset 1")
            && error.contains("schema id 99 is not in the schema registry"),
        "{error}"
    );
    assert_eq!(
        dead[0].get("payload").and_then(Value::as_bytes),
        Some(&wire(99, &payment_datum(PAYMENT_V1, 1, None))[..])
    );
    assert_eq!(
        field(&dead[1], "position"),
        "topic avro-dl partition 0 offset 3"
    );
    let error = field(&dead[1], "error");
    assert!(
        error.contains("not in the Confluent wire format: the first byte is 0x7b"),
        "{error}"
    );
}

#[tokio::test]
async fn non_utf8_text_is_skipped_without_stopping_the_partition() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("text-skip", 1);
    kafka.produce(
        "text-skip",
        [
            TestMessage::new("first"),
            TestMessage::new(b"caf\xe9 latin-1".to_vec()),
            TestMessage::new("third"),
        ],
    );
    let source =
        KafkaSource::from_properties(&props(&kafka, "text-skip", "text").with("group", "t"))
            .unwrap();
    let (sink, collected) = CollectSink::new();
    let handle = Pipeline::new(source)
        .to(sink)
        .on_bad_data(BadDataPolicy::Skip)
        .spawn();
    expect_records(&collected, 2).await;
    kafka.produce("text-skip", [TestMessage::new("fourth")]);
    expect_records(&collected, 3).await;
    common::eventually("commits past the bad record", || {
        kafka.committed("t", "text-skip") == BTreeMap::from([(0, 4)])
    })
    .await;
    handle.stop();
    let report = handle.join().await.unwrap();
    let texts: Vec<String> = collected
        .records()
        .iter()
        .map(|r| r.get("raw").and_then(Value::as_str).unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["first", "third", "fourth"]);
    assert_eq!(report.metrics.bad_records, 1);
}

/// The Kafka Connect JSON converter's schema of the `inventory.customers`
/// rows, with Debezium's and Kafka Connect's logical types.
fn customer_row_schema(field: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "struct", "optional": true, "field": field,
        "name": "pg.inventory.customers.Value",
        "fields": [
            {"type": "int32", "optional": false, "default": 0, "field": "id"},
            {"type": "string", "optional": false, "field": "first_name"},
            {"type": "string", "optional": true, "field": "email"},
            {"type": "int64", "optional": true, "name": "io.debezium.time.MicroTimestamp", "version": 1, "field": "created_at"},
            {"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
             "parameters": {"scale": "2", "connect.decimal.precision": "10"}, "field": "balance"}
        ]
    })
}

/// A change event as Debezium's PostgreSQL connector writes it with the
/// JSON converter and `schemas.enable=true` (table with REPLICA IDENTITY
/// FULL, so updates and deletes carry `before`).
fn debezium_event(
    op: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    lsn: i64,
) -> Vec<u8> {
    let event = serde_json::json!({
        "schema": {
            "type": "struct", "optional": false, "name": "pg.inventory.customers.Envelope", "version": 1,
            "fields": [
                customer_row_schema("before"),
                customer_row_schema("after"),
                {"type": "struct", "optional": false, "name": "io.debezium.connector.postgresql.Source", "field": "source",
                 "fields": [
                    {"type": "string", "optional": false, "field": "version"},
                    {"type": "string", "optional": false, "field": "connector"},
                    {"type": "string", "optional": false, "field": "name"},
                    {"type": "int64", "optional": false, "field": "ts_ms"},
                    {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
                     "parameters": {"allowed": "true,last,false,incremental"}, "default": "false", "field": "snapshot"},
                    {"type": "string", "optional": false, "field": "db"},
                    {"type": "string", "optional": true, "field": "sequence"},
                    {"type": "string", "optional": false, "field": "schema"},
                    {"type": "string", "optional": false, "field": "table"},
                    {"type": "int64", "optional": true, "field": "txId"},
                    {"type": "int64", "optional": true, "field": "lsn"},
                    {"type": "int64", "optional": true, "field": "xmin"}
                 ]},
                {"type": "string", "optional": false, "field": "op"},
                {"type": "int64", "optional": true, "field": "ts_ms"},
                {"type": "struct", "optional": true, "name": "event.block", "version": 1, "field": "transaction",
                 "fields": [
                    {"type": "string", "optional": false, "field": "id"},
                    {"type": "int64", "optional": false, "field": "total_order"},
                    {"type": "int64", "optional": false, "field": "data_collection_order"}
                 ]}
            ]
        },
        "payload": {
            "before": before,
            "after": after,
            "source": {
                "version": "2.7.3.Final", "connector": "postgresql", "name": "pg",
                "ts_ms": 1_700_000_000_000i64 + lsn, "snapshot": "false", "db": "shop",
                "sequence": format!("[null,\"{lsn}\"]"), "schema": "inventory", "table": "customers",
                "txId": 780 + lsn, "lsn": lsn, "xmin": null
            },
            "op": op,
            "ts_ms": 1_700_000_000_050i64 + lsn,
            "transaction": null
        }
    });
    serde_json::to_vec(&event).unwrap()
}

fn customer(email: &str, balance_base64: &str) -> serde_json::Value {
    serde_json::json!({
        "id": 1001, "first_name": "Sally", "email": email,
        "created_at": 1_700_000_000_123_456i64, "balance": balance_base64
    })
}

/// The message key: the JSON converter's key schema wrapper.
const KEY: &str = r#"{"schema": {"type": "struct", "optional": false, "name": "pg.inventory.customers.Key",
  "fields": [{"type": "int32", "optional": false, "default": 0, "field": "id"}]}, "payload": {"id": 1001}}"#;

/// Create, update, delete and the tombstone Debezium writes after a delete.
fn debezium_topic(kafka: &MockKafka, topic: &str) {
    kafka.create_topic(topic, 1);
    // 12345 and 67890 as Kafka Connect Decimal bytes (big-endian, base64).
    let (old, new) = (
        customer("sally@old.org", "MDk="),
        customer("sally@new.org", "AQky"),
    );
    let tombstone = TestMessage {
        payload: None,
        ..TestMessage::new("")
    };
    kafka.produce(
        topic,
        [
            TestMessage::new(debezium_event("c", None, Some(old.clone()), 1)),
            TestMessage::new(debezium_event("u", Some(old), Some(new.clone()), 2)),
            TestMessage::new(debezium_event("d", Some(new), None, 3)),
            tombstone,
        ]
        .map(|m| m.key(KEY)),
    );
}

async fn read_all(kafka: &MockKafka, topic: &str, data_type: &str, n: usize) -> Vec<Record> {
    let source =
        KafkaSource::from_properties(&props(kafka, topic, data_type).with("group", data_type))
            .unwrap();
    let (handle, collected, status) = collect(source);
    expect_records(&collected, n).await;
    // The tombstone is read (and committed) even where it makes no record.
    common::eventually("commits to reach the end", || {
        status.committed_offsets() == BTreeMap::from([(0, 4)])
    })
    .await;
    handle.stop();
    let report = handle.join().await.unwrap();
    assert_eq!(report.metrics.records_out, n as u64, "{data_type}");
    assert_eq!(report.metrics.bad_records, 0, "{data_type}");
    collected.records()
}

fn kinds(records: &[Record]) -> Vec<ChangeKind> {
    records.iter().map(|r| r.kind).collect()
}

fn email(r: &Record) -> &str {
    r.get("email").and_then(Value::as_str).unwrap()
}

#[tokio::test]
async fn debezium_json_postgres_events_become_change_records() {
    init_logs();
    let kafka = MockKafka::start();
    debezium_topic(&kafka, "pg.inventory.customers");
    let records = read_all(&kafka, "pg.inventory.customers", "debezium-json", 4).await;
    assert_eq!(
        kinds(&records),
        [
            ChangeKind::Insert,
            ChangeKind::UpdateBefore,
            ChangeKind::UpdateAfter,
            ChangeKind::Delete
        ],
        "the tombstone makes no record"
    );
    assert_eq!(
        records.iter().map(email).collect::<Vec<_>>(),
        [
            "sally@old.org",
            "sally@old.org",
            "sally@new.org",
            "sally@new.org"
        ]
    );
    let insert = &records[0];
    assert_eq!(insert.get("id").and_then(Value::as_i64), Some(1001));
    // The wrapper's schema types the columns.
    assert_eq!(
        insert.get("created_at"),
        Some(&Value::Timestamp(1_700_000_000_123_456))
    );
    assert_eq!(
        insert.get("balance"),
        Some(&Value::Decimal(Decimal::new(12345, 2)))
    );
    assert_eq!(
        records[2].get("balance"),
        Some(&Value::Decimal(Decimal::new(67890, 2)))
    );
    let created_at = insert.schema.field_named("created_at").unwrap();
    assert_eq!(created_at.data_type, DataType::Timestamp);
    // The event time is when the database made the change (`source.ts_ms`).
    assert_eq!(insert.timestamp, Some((1_700_000_000_000 + 1) * 1000));
    assert!(
        records
            .iter()
            .all(|r| r.key.as_deref() == Some(KEY.as_bytes())),
        "the message key travels with each record"
    );
}

#[tokio::test]
async fn debezium_json_upsert_postgres_events_become_upserts_and_deletes_by_key() {
    init_logs();
    let kafka = MockKafka::start();
    debezium_topic(&kafka, "pg.inventory.customers");
    let records = read_all(&kafka, "pg.inventory.customers", "debezium-json-upsert", 4).await;
    assert_eq!(
        kinds(&records),
        [
            ChangeKind::Upsert,
            ChangeKind::Upsert,
            ChangeKind::Delete,
            ChangeKind::Delete
        ],
        "create and update upsert; the delete and its tombstone delete by key"
    );
    assert_eq!(email(&records[0]), "sally@old.org");
    assert_eq!(email(&records[1]), "sally@new.org");
    assert_eq!(
        records[1].get("balance"),
        Some(&Value::Decimal(Decimal::new(67890, 2)))
    );
    for delete in &records[2..] {
        // Deleted by the key's columns, the key's wrapper unwrapped.
        assert_eq!(delete.schema.names().collect::<Vec<_>>(), ["id"]);
        assert_eq!(delete.get("id").and_then(Value::as_i64), Some(1001));
    }
}

fn proto_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/payment.proto")
}

/// Payment `n` built with prost-reflect's dynamic API from the same file.
fn payment_proto(pool: &prost_reflect::DescriptorPool, n: i64) -> Vec<u8> {
    let payment = pool.get_message_by_name("shop.v1.Payment").unwrap();
    let address = pool.get_message_by_name("shop.v1.Payment.Address").unwrap();
    let timestamp = pool
        .get_message_by_name("google.protobuf.Timestamp")
        .unwrap();
    let mut m = DynamicMessage::new(payment);
    m.set_field_by_name("id", Proto::I64(n));
    m.set_field_by_name("customer", Proto::String(format!("c{n}")));
    m.set_field_by_name("method", Proto::EnumNumber(2));
    m.set_field_by_name(
        "tags",
        Proto::List(vec![Proto::String("a".into()), Proto::String("b".into())]),
    );
    let mut ts = DynamicMessage::new(timestamp);
    ts.set_field_by_name("seconds", Proto::I64(1_700_000_000 + n));
    ts.set_field_by_name("nanos", Proto::I32(250_000_000));
    m.set_field_by_name("paid_at", Proto::Message(ts));
    m.set_field_by_name(
        "labels",
        Proto::Map(
            [(
                MapKey::String("channel".into()),
                Proto::String("web".into()),
            )]
            .into(),
        ),
    );
    let mut billing = DynamicMessage::new(address);
    billing.set_field_by_name("city", Proto::String("Paris".into()));
    m.set_field_by_name("billing", Proto::Message(billing));
    if n % 2 == 0 {
        m.set_field_by_name("note", Proto::String("gift".into()));
    }
    m.set_field_by_name("amount", Proto::F64(n as f64 + 0.5));
    m.encode_to_vec()
}

#[tokio::test]
async fn protobuf_messages_described_by_a_proto_file() {
    init_logs();
    let kafka = MockKafka::start();
    let pool = {
        let dir = proto_file().parent().unwrap().to_owned();
        let mut compiler = protox::Compiler::new([dir]).unwrap();
        compiler.include_imports(true);
        compiler.open_file(proto_file()).unwrap();
        compiler.descriptor_pool()
    };
    kafka.create_topic("payments-pb", 2);
    kafka.produce(
        "payments-pb",
        (0..20).map(|n| TestMessage::new(payment_proto(&pool, n)).partition((n % 2) as i32)),
    );
    let p = props(&kafka, "payments-pb", "protobuf")
        .with("proto_file", proto_file().to_str().unwrap())
        .with("proto_message", "shop.v1.Payment");
    let (handle, collected, _) = collect(KafkaSource::from_properties(&p).unwrap());
    expect_records(&collected, 20).await;
    handle.stop();
    let report = handle.join().await.unwrap();
    assert_eq!(report.metrics.records_out, 20);
    let mut records = collected.records();
    records.sort_by_key(|r| r.get("id").and_then(Value::as_i64));
    for (n, r) in (0i64..).zip(&records) {
        assert_eq!(r.get("id"), Some(&Value::Int64(n)));
        assert_eq!(r.get("customer"), Some(&Value::from(format!("c{n}"))));
        assert_eq!(r.get("method"), Some(&Value::from("IBAN")));
        assert_eq!(
            r.get("tags"),
            Some(&Value::Array(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            r.get("paid_at"),
            Some(&Value::Timestamp((1_700_000_000 + n) * 1_000_000 + 250_000))
        );
        assert_eq!(
            r.get("labels"),
            Some(&Value::Map(vec![(
                Value::from("channel"),
                Value::from("web")
            )]))
        );
        assert_eq!(r.get_path("billing.city"), Some(&Value::from("Paris")));
        let note = if n % 2 == 0 {
            Value::from("gift")
        } else {
            Value::Null
        };
        assert_eq!(r.get("note"), Some(&note));
        assert_eq!(r.get("amount"), Some(&Value::Float64(n as f64 + 0.5)));
    }
    // The schema comes from the file: every record has the same one.
    assert!(
        records
            .windows(2)
            .all(|w| std::sync::Arc::ptr_eq(&w[0].schema, &w[1].schema)
                || w[0].schema == w[1].schema)
    );
}
