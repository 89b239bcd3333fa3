//! The Kafka sink with the heavy formats, over librdkafka's mock cluster:
//! Avro in the Confluent wire format against the schema registry stand-in
//! (`testkit::registry`), and Protobuf from a `.proto` file. What the sink
//! wrote is read back with a plain consumer and decoded by independent
//! code (`apache-avro` with the schema fetched from the registry;
//! `prost-reflect`), then by our own decoders for the round trip.

use std::path::PathBuf;
use std::time::Duration;

use apache_avro::types::Value as Avro;
use connector_core::format::{DataFormat, FormatConfig, MessageMeta, ProtoConfig, decode_message};
use connector_core::{
    Ack, AckStatus, Batch, Decimal, Properties, Record, Sink, StructValue, Value,
};
use kafka_common::rdkafka::Message;
use kafka_common::testing::MockKafka;
use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value as Proto};
use sink_kafka::KafkaSink;
use testkit::registry::SchemaRegistry;

const WAIT: Duration = Duration::from_secs(30);

fn props(kafka: &MockKafka, topic: &str, data_type: &str) -> Properties {
    Properties::from_pairs([
        ("brokers", kafka.bootstrap()),
        ("topic", topic),
        ("tls.disable", "true"),
        ("data_type", data_type),
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

const READING: &str = r#"{
  "type": "record", "name": "Reading", "namespace": "iot.v1",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "device", "type": "string"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "value", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 3}},
    {"name": "ok", "type": "boolean"},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}"#;

const AT: i64 = 1_700_000_000_123_456;

fn reading(n: i64) -> Record {
    Record::from_pairs([
        ("id", Value::Int64(n)),
        ("device", Value::from(format!("d{}", n % 3))),
        ("at", Value::Timestamp(AT + n)),
        ("day", Value::Date(19_700 + n as i32)),
        ("value", Value::Decimal(Decimal::new(-1_500 + n as i128, 3))),
        ("ok", Value::Boolean(n % 2 == 0)),
        (
            "note",
            if n % 4 == 0 {
                Value::from("calibrated")
            } else {
                Value::Null
            },
        ),
    ])
    .with_key(format!("d{}", n % 3))
}

/// The Confluent wire format, taken apart by hand: magic byte 0, the
/// schema id (big-endian u32), the datum.
fn split(payload: &[u8]) -> (u32, &[u8]) {
    assert!(payload.len() > 5, "{payload:?}");
    assert_eq!(payload[0], 0, "magic byte");
    (
        u32::from_be_bytes(payload[1..5].try_into().unwrap()),
        &payload[5..],
    )
}

/// Decodes a datum with apache-avro and the writer schema fetched from the
/// registry stand-in.
fn read_with_apache_avro(registry: &SchemaRegistry, id: u32, datum: &[u8]) -> Vec<(String, Avro)> {
    let text = registry.schema(id).expect("the schema id is registered");
    let schema = apache_avro::Schema::parse_str(&text).unwrap();
    let mut rest = datum;
    let value = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut rest)
        .unwrap();
    assert!(rest.is_empty(), "{} bytes after the datum", rest.len());
    match value {
        Avro::Record(fields) => fields,
        other => panic!("not a record: {other:?}"),
    }
}

fn field<'a>(fields: &'a [(String, Avro)], name: &str) -> &'a Avro {
    &fields.iter().find(|(n, _)| n == name).unwrap().1
}

async fn decode_with_ours(format: &FormatConfig, payloads: &[Vec<u8>]) -> Vec<Record> {
    let mut decoder = format.decoder().unwrap();
    let mut out = Vec::new();
    for p in payloads {
        decode_message(&mut decoder, p, &MessageMeta::default(), &mut out)
            .await
            .unwrap();
    }
    out
}

#[tokio::test]
async fn avro_with_a_given_schema_is_registered_and_written_in_the_confluent_wire_format() {
    let kafka = MockKafka::start();
    let registry = SchemaRegistry::start();
    kafka.create_topic("readings", 2);
    let p = props(&kafka, "readings", "avro")
        .with("schema_registry_address", registry.url())
        .with("avro_schema", READING);
    let mut sink = KafkaSink::from_properties(&p).unwrap();
    for chunk in (0..30).collect::<Vec<i64>>().chunks(10) {
        let batch = chunk.iter().map(|n| reading(*n)).collect();
        assert!(send(&mut sink, batch).await.is_delivered());
    }
    sink.close().await.unwrap();
    // Registered once, under the topic's value subject.
    assert_eq!(registry.ids("readings-value"), [1]);
    assert_eq!(registry.calls(), ["POST /subjects/readings-value/versions"]);

    let messages = kafka.read("readings", 30, WAIT);
    assert_eq!(messages.len(), 30);
    let mut payloads = Vec::new();
    for m in &messages {
        let payload = m.payload().unwrap();
        let (id, datum) = split(payload);
        assert_eq!(id, 1);
        let fields = read_with_apache_avro(&registry, id, datum);
        let Avro::Long(n) = *field(&fields, "id") else {
            panic!("{fields:?}")
        };
        assert_eq!(m.key(), Some(format!("d{}", n % 3).as_bytes()));
        assert_eq!(
            field(&fields, "device"),
            &Avro::String(format!("d{}", n % 3))
        );
        assert_eq!(field(&fields, "at"), &Avro::TimestampMicros(AT + n));
        assert_eq!(field(&fields, "day"), &Avro::Date(19_700 + n as i32));
        assert_eq!(
            field(&fields, "value"),
            &Avro::Decimal(apache_avro::Decimal::from((-1_500 + n).to_be_bytes()))
        );
        assert_eq!(field(&fields, "ok"), &Avro::Boolean(n % 2 == 0));
        let note = if n % 4 == 0 {
            Avro::Union(1, Box::new(Avro::String("calibrated".into())))
        } else {
            Avro::Union(0, Box::new(Avro::Null))
        };
        assert_eq!(field(&fields, "note"), &note);
        payloads.push(payload.to_vec());
    }

    // Our decoder reads the same records back.
    let format =
        FormatConfig::new(DataFormat::AVRO).with_registry(connector_core::format::RegistryConfig {
            address: registry.url(),
            api_key: None,
            api_secret: None,
        });
    let mut back = decode_with_ours(&format, &payloads).await;
    assert_eq!(back.len(), 30);
    back.sort_by_key(|r| r.get("id").and_then(Value::as_i64));
    for (n, r) in (0i64..).zip(&back) {
        let sent = reading(n);
        for (name, value) in sent.iter() {
            assert_eq!(r.get(name), Some(value), "record {n}, field {name}");
        }
    }
}

#[tokio::test]
async fn avro_without_a_schema_registers_one_derived_from_the_records() {
    let kafka = MockKafka::start();
    let registry = SchemaRegistry::start();
    kafka.create_topic("derived", 1);
    let p = props(&kafka, "derived", "avro")
        .with("schema_registry_address", registry.url())
        .with("schema_subject", "iot.readings");
    let mut sink = KafkaSink::from_properties(&p).unwrap();
    let record = |n: i64| {
        Record::from_pairs([
            ("id", Value::Int64(n)),
            ("at", Value::Timestamp(AT + n)),
            ("price", Value::Decimal(Decimal::new(1999 + n as i128, 2))),
            ("tags", Value::Array(vec!["x".into(), "y".into()])),
            (
                "site",
                Value::Struct(StructValue::from_pairs([("floor", Value::Int64(n))])),
            ),
        ])
    };
    assert!(
        send(&mut sink, (0..5).map(record).collect())
            .await
            .is_delivered()
    );
    sink.close().await.unwrap();
    // The subject had no schema: the sink registered one.
    assert_eq!(
        registry.calls(),
        [
            "GET /subjects/iot.readings/versions/latest",
            "POST /subjects/iot.readings/versions"
        ]
    );
    let id = registry.ids("iot.readings")[0];
    let messages = kafka.read("derived", 5, WAIT);
    for (n, m) in (0i64..).zip(&messages) {
        let (got, datum) = split(m.payload().unwrap());
        assert_eq!(got, id);
        let fields = read_with_apache_avro(&registry, id, datum);
        // The derived schema may make columns nullable unions: unwrap them.
        let plain = |name: &str| match field(&fields, name) {
            Avro::Union(_, inner) => (**inner).clone(),
            other => other.clone(),
        };
        assert_eq!(plain("id"), Avro::Long(n));
        assert_eq!(plain("at"), Avro::TimestampMicros(AT + n));
        // Items may be nullable unions too.
        let Avro::Array(tags) = plain("tags") else {
            panic!("{fields:?}")
        };
        let tags: Vec<Avro> = tags
            .into_iter()
            .map(|t| match t {
                Avro::Union(_, inner) => *inner,
                other => other,
            })
            .collect();
        assert_eq!(tags, [Avro::String("x".into()), Avro::String("y".into())]);
        let Avro::Record(site) = plain("site") else {
            panic!("{fields:?}")
        };
        let floor = match &site[0].1 {
            Avro::Union(_, inner) => (**inner).clone(),
            other => other.clone(),
        };
        assert_eq!(floor, Avro::Long(n));
        let Avro::Decimal(price) = plain("price") else {
            panic!("{fields:?}")
        };
        let bytes = Vec::<u8>::try_from(&price).unwrap();
        let unscaled = bytes
            .iter()
            .fold(if bytes[0] & 0x80 != 0 { -1i128 } else { 0 }, |v, b| {
                (v << 8) | i128::from(*b)
            });
        assert_eq!(unscaled, 1999 + i128::from(n));
    }
}

fn proto_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/reading.proto")
}

fn proto_reading(n: i64) -> Record {
    Record::from_pairs([
        ("id", Value::Int64(n)),
        ("device", Value::from(format!("d{n}"))),
        ("value", Value::Float64(20.5 + n as f64)),
        ("unit", Value::from("KELVIN")),
        ("at", Value::Timestamp(AT + n)),
        ("tags", Value::Array(vec!["a".into(), "b".into()])),
        (
            "counters",
            Value::Map(vec![(Value::from("restarts"), Value::Int64(n))]),
        ),
        (
            "location",
            Value::Struct(StructValue::from_pairs([
                ("site", Value::from("lab")),
                ("floor", Value::Int64(3)),
            ])),
        ),
        (
            "note",
            if n % 2 == 0 {
                Value::from("ok")
            } else {
                Value::Null
            },
        ),
        ("raw", Value::Bytes(vec![0, 255, n as u8])),
    ])
}

#[tokio::test]
async fn protobuf_round_trip_through_the_topic() {
    let kafka = MockKafka::start();
    kafka.create_topic("readings-pb", 1);
    let p = props(&kafka, "readings-pb", "protobuf")
        .with("proto_file", proto_file().to_str().unwrap())
        .with("proto_message", "iot.v1.Reading");
    let mut sink = KafkaSink::from_properties(&p).unwrap();
    assert!(
        send(&mut sink, (0..10).map(proto_reading).collect())
            .await
            .is_delivered()
    );
    sink.close().await.unwrap();
    let messages = kafka.read("readings-pb", 10, WAIT);
    assert_eq!(messages.len(), 10);

    // prost-reflect, with the file compiled on its own, reads each message.
    let pool = {
        let dir = proto_file().parent().unwrap().to_owned();
        let mut compiler = protox::Compiler::new([dir]).unwrap();
        compiler.include_imports(true);
        compiler.open_file(proto_file()).unwrap();
        compiler.descriptor_pool()
    };
    let desc = pool.get_message_by_name("iot.v1.Reading").unwrap();
    let mut payloads = Vec::new();
    for (n, m) in (0i64..).zip(&messages) {
        let payload = m.payload().unwrap();
        let msg = DynamicMessage::decode(desc.clone(), payload).unwrap();
        let get = |name: &str| msg.get_field_by_name(name).unwrap().into_owned();
        assert_eq!(get("id"), Proto::I64(n));
        assert_eq!(get("device"), Proto::String(format!("d{n}")));
        assert_eq!(get("value"), Proto::F64(20.5 + n as f64));
        assert_eq!(get("unit"), Proto::EnumNumber(2));
        let Proto::Message(at) = get("at") else {
            panic!("{msg:?}")
        };
        assert_eq!(at.descriptor().full_name(), "google.protobuf.Timestamp");
        let micros = AT + n;
        assert_eq!(
            at.get_field_by_name("seconds").unwrap().into_owned(),
            Proto::I64(micros.div_euclid(1_000_000))
        );
        assert_eq!(
            at.get_field_by_name("nanos").unwrap().into_owned(),
            Proto::I32((micros.rem_euclid(1_000_000) * 1000) as i32)
        );
        assert_eq!(
            get("tags"),
            Proto::List(vec![Proto::String("a".into()), Proto::String("b".into())])
        );
        assert_eq!(
            get("counters"),
            Proto::Map([(MapKey::String("restarts".into()), Proto::I64(n))].into())
        );
        let Proto::Message(location) = get("location") else {
            panic!("{msg:?}")
        };
        assert_eq!(
            location.get_field_by_name("site").unwrap().into_owned(),
            Proto::String("lab".into())
        );
        assert_eq!(
            location.get_field_by_name("floor").unwrap().into_owned(),
            Proto::I32(3)
        );
        // proto3 `optional`: present only when the record had a value.
        assert_eq!(msg.has_field_by_name("note"), n % 2 == 0);
        assert_eq!(get("raw"), Proto::Bytes(vec![0, 255, n as u8].into()));
        payloads.push(payload.to_vec());
    }

    // And our decoder gives the records back.
    let format = FormatConfig::new(DataFormat::PROTOBUF).with_proto(ProtoConfig {
        file: proto_file(),
        message: "iot.v1.Reading".into(),
        include_paths: Vec::new(),
    });
    let back = decode_with_ours(&format, &payloads).await;
    assert_eq!(back.len(), 10);
    for (n, r) in (0i64..).zip(&back) {
        let sent = proto_reading(n);
        for (name, value) in sent.iter() {
            match value {
                // The message type decides the nested columns' nullability.
                Value::Struct(s) => {
                    for (sub, v) in s.schema().names().zip(s.values()) {
                        let path = format!("{name}.{sub}");
                        assert_eq!(r.get_path(&path), Some(v), "record {n}, {path}");
                    }
                }
                _ => assert_eq!(r.get(name), Some(value), "record {n}, field {name}"),
            }
        }
    }
}
