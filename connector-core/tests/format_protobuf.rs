//! Protobuf: a `.proto` with imports, nested, repeated, map, oneof, enum,
//! well-known types, compiled at run time; bytes built independently of our
//! encoder; round trips; malformed input and schema errors.

use std::path::{Path, PathBuf};

use connector_core::format::{
    DataFormat, Decoder, Encoder, FormatConfig, MessageMeta, ProtoConfig,
};
use connector_core::{Decimal, Record, StructValue, Value};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MapKey, Value as Proto};

const ORDER_PROTO: &str = r#"
syntax = "proto3";
package shop.v1;

import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "common/money.proto";

enum Status {
  STATUS_UNSPECIFIED = 0;
  NEW = 1;
  PAID = 2;
}

message Item {
  string sku = 1;
  int32 qty = 2;
  common.Money price = 3;
}

message Order {
  message Address {
    string city = 1;
    string zip = 2;
  }
  int64 id = 1;
  string customer = 2;
  Status status = 3;
  repeated Item items = 4;
  map<string, string> labels = 5;
  oneof payment {
    string card = 6;
    string iban = 7;
  }
  google.protobuf.Timestamp created = 8;
  google.protobuf.StringValue note = 9;
  repeated string tags = 10;
  uint64 big = 11;
  bytes blob = 12;
  double total = 13;
  bool gift = 14;
  optional int32 priority = 15;
  Address address = 16;
  map<string, Item> by_sku = 17;
  sint64 delta = 18;
  repeated Status history = 19;
}

message Test1 { int32 a = 1; }
"#;

const MONEY_PROTO: &str = r#"
syntax = "proto3";
package common;
message Money {
  string currency = 1;
  int64 units = 2;
}
"#;

struct Protos {
    _dir: tempfile::TempDir,
    root: PathBuf,
    order: PathBuf,
}

fn protos() -> Protos {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::create_dir_all(root.join("shop")).unwrap();
    std::fs::create_dir_all(root.join("common")).unwrap();
    std::fs::write(root.join("shop/order.proto"), ORDER_PROTO).unwrap();
    std::fs::write(root.join("common/money.proto"), MONEY_PROTO).unwrap();
    let order = root.join("shop/order.proto");
    Protos {
        _dir: dir,
        root,
        order,
    }
}

fn config(file: &Path, message: &str, includes: &[&Path]) -> FormatConfig {
    FormatConfig::new(DataFormat::PROTOBUF).with_proto(ProtoConfig {
        file: file.to_owned(),
        message: message.to_owned(),
        include_paths: includes.iter().map(|p| p.to_path_buf()).collect(),
    })
}

fn decode(d: &mut dyn Decoder, payload: &[u8]) -> connector_core::Result<Record> {
    let mut out = Vec::new();
    let _ = d.decode(payload, &MessageMeta::default(), &mut out)?;
    Ok(out.remove(0))
}

/// An order built with prost-reflect's dynamic API (not our encoder).
fn order_bytes(p: &Protos) -> Vec<u8> {
    let pool = {
        let mut c = protox::Compiler::new([&p.root]).unwrap();
        c.include_imports(true);
        c.open_file(&p.order).unwrap();
        c.descriptor_pool()
    };
    let order = pool.get_message_by_name("shop.v1.Order").unwrap();
    let item_desc = pool.get_message_by_name("shop.v1.Item").unwrap();
    let money_desc = pool.get_message_by_name("common.Money").unwrap();
    let ts_desc = pool
        .get_message_by_name("google.protobuf.Timestamp")
        .unwrap();
    let sv_desc = pool
        .get_message_by_name("google.protobuf.StringValue")
        .unwrap();
    let addr_desc = pool.get_message_by_name("shop.v1.Order.Address").unwrap();
    let item = |sku: &str, qty: i32, units: i64| {
        let mut money = DynamicMessage::new(money_desc.clone());
        money.set_field_by_name("currency", Proto::String("EUR".into()));
        money.set_field_by_name("units", Proto::I64(units));
        let mut m = DynamicMessage::new(item_desc.clone());
        m.set_field_by_name("sku", Proto::String(sku.into()));
        m.set_field_by_name("qty", Proto::I32(qty));
        m.set_field_by_name("price", Proto::Message(money));
        m
    };
    let mut msg = DynamicMessage::new(order);
    msg.set_field_by_name("id", Proto::I64(1001));
    msg.set_field_by_name("customer", Proto::String("ada".into()));
    msg.set_field_by_name("status", Proto::EnumNumber(2));
    msg.set_field_by_name(
        "items",
        Proto::List(vec![
            Proto::Message(item("A-1", 2, 300)),
            Proto::Message(item("B-2", 1, 50)),
        ]),
    );
    msg.set_field_by_name(
        "labels",
        Proto::Map(
            [
                (
                    MapKey::String("channel".into()),
                    Proto::String("web".into()),
                ),
                (MapKey::String("a".into()), Proto::String("b".into())),
            ]
            .into(),
        ),
    );
    msg.set_field_by_name("iban", Proto::String("DE89370400440532013000".into()));
    let mut ts = DynamicMessage::new(ts_desc);
    ts.set_field_by_name("seconds", Proto::I64(1_700_000_000));
    ts.set_field_by_name("nanos", Proto::I32(123_456_000));
    msg.set_field_by_name("created", Proto::Message(ts));
    let mut note = DynamicMessage::new(sv_desc);
    note.set_field_by_name("value", Proto::String("leave at door".into()));
    msg.set_field_by_name("note", Proto::Message(note));
    msg.set_field_by_name(
        "tags",
        Proto::List(vec![Proto::String("x".into()), Proto::String("y".into())]),
    );
    msg.set_field_by_name("big", Proto::U64(u64::MAX));
    msg.set_field_by_name("blob", Proto::Bytes(vec![0u8, 255].into()));
    msg.set_field_by_name("total", Proto::F64(350.5));
    msg.set_field_by_name("gift", Proto::Bool(true));
    let mut addr = DynamicMessage::new(addr_desc);
    addr.set_field_by_name("city", Proto::String("Paris".into()));
    msg.set_field_by_name("address", Proto::Message(addr));
    msg.set_field_by_name(
        "by_sku",
        Proto::Map(
            [(
                MapKey::String("A-1".into()),
                Proto::Message(item("A-1", 2, 300)),
            )]
            .into(),
        ),
    );
    msg.set_field_by_name("delta", Proto::I64(-7));
    msg.set_field_by_name(
        "history",
        Proto::List(vec![
            Proto::EnumNumber(1),
            Proto::EnumNumber(2),
            Proto::EnumNumber(9),
        ]),
    );
    msg.encode_to_vec()
}

#[test]
fn decodes_nested_repeated_map_oneof_and_well_known_types() {
    let p = protos();
    let format = config(&p.order, "shop.v1.Order", &[&p.root]);
    let mut d = format.decoder().unwrap();
    let r = decode(&mut d, &order_bytes(&p)).unwrap();
    assert_eq!(r.get("id"), Some(&Value::Int64(1001)));
    assert_eq!(r.get("customer"), Some(&Value::from("ada")));
    assert_eq!(r.get("status"), Some(&Value::from("PAID")));
    assert_eq!(r.get_path("items.1.sku"), Some(&Value::from("B-2")));
    assert_eq!(r.get_path("items.0.price.units"), Some(&Value::Int64(300)));
    assert_eq!(
        r.get("labels"),
        Some(&Value::Map(vec![
            (Value::from("a"), Value::from("b")),
            (Value::from("channel"), Value::from("web"))
        ]))
    );
    // The oneof: the member present is set, the other is null.
    assert_eq!(r.get("card"), Some(&Value::Null));
    assert_eq!(r.get("iban"), Some(&Value::from("DE89370400440532013000")));
    assert_eq!(
        r.get("created"),
        Some(&Value::Timestamp(1_700_000_000_123_456))
    );
    assert_eq!(r.get("note"), Some(&Value::from("leave at door")));
    assert_eq!(
        r.get("tags"),
        Some(&Value::Array(vec!["x".into(), "y".into()]))
    );
    assert_eq!(
        r.get("big"),
        Some(&Value::Decimal(Decimal::new(i128::from(u64::MAX), 0)))
    );
    assert_eq!(r.get("blob"), Some(&Value::Bytes(vec![0, 255])));
    assert_eq!(r.get("total"), Some(&Value::Float64(350.5)));
    assert_eq!(r.get("gift"), Some(&Value::Boolean(true)));
    assert_eq!(r.get("priority"), Some(&Value::Null), "optional and unset");
    assert_eq!(r.get_path("address.city"), Some(&Value::from("Paris")));
    assert_eq!(
        r.get_path("address.zip"),
        Some(&Value::from("")),
        "proto3 scalar default"
    );
    let by_sku = r.get("by_sku").unwrap();
    let Value::Map(entries) = by_sku else {
        panic!("{by_sku:?}")
    };
    assert_eq!(entries[0].0, Value::from("A-1"));
    assert_eq!(
        entries[0].1.get_path("price.currency"),
        Some(&Value::from("EUR"))
    );
    assert_eq!(r.get("delta"), Some(&Value::Int64(-7)));
    assert_eq!(
        r.get("history"),
        Some(&Value::Array(vec!["NEW".into(), "PAID".into(), "9".into()]))
    );

    let types: Vec<String> = r
        .schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name, f.data_type))
        .collect();
    assert_eq!(
        types,
        [
            "id int64",
            "customer string",
            "status string",
            "items array<struct<sku string, qty int64, price struct<currency string, units int64>>>",
            "labels map<string, string>",
            "card string",
            "iban string",
            "created timestamp",
            "note string",
            "tags array<string>",
            "big decimal(20, 0)",
            "blob bytes",
            "total float64",
            "gift boolean",
            "priority int64",
            "address struct<city string, zip string>",
            "by_sku map<string, struct<sku string, qty int64, price struct<currency string, units int64>>>",
            "delta int64",
            "history array<string>",
        ]
    );
    assert!(!r.schema.field_named("id").unwrap().nullable);
    assert!(r.schema.field_named("card").unwrap().nullable);
    assert_eq!(format.record_schema(), Some(r.schema.clone()));

    // An empty payload is a message with every field unset.
    let empty = decode(&mut d, b"").unwrap();
    assert_eq!(empty.get("id"), Some(&Value::Int64(0)));
    assert_eq!(
        empty.get("status"),
        Some(&Value::from("STATUS_UNSPECIFIED"))
    );
    assert_eq!(empty.get("created"), Some(&Value::Null));
    assert_eq!(empty.get("items"), Some(&Value::Array(vec![])));
}

#[test]
fn wire_bytes_from_the_protobuf_documentation() {
    // "08 96 01": field 1, varint 150 (the encoding guide's first example).
    let p = protos();
    let mut d = config(&p.order, "shop.v1.Test1", &[&p.root])
        .decoder()
        .unwrap();
    assert_eq!(
        decode(&mut d, &[0x08, 0x96, 0x01]).unwrap().get("a"),
        Some(&Value::Int64(150))
    );
}

#[test]
fn round_trip_through_our_encoder() {
    let p = protos();
    let format = config(&p.order, "shop.v1.Order", &[&p.root]);
    let (mut d, mut e) = (format.decoder().unwrap(), format.encoder().unwrap());
    let record = decode(&mut d, &order_bytes(&p)).unwrap();
    let mut bytes = Vec::new();
    let _ = e.encode(&record, &mut bytes).unwrap();
    let back = decode(&mut d, &bytes).unwrap();
    // Enum numbers the schema does not name go back as numbers and return as text.
    assert_eq!(back, record);
    assert_eq!(e.content_type(), "application/x-protobuf");

    // Records from elsewhere: columns matched by name, nulls unset, conversions applied.
    let mine = Record::from_pairs([
        ("id", Value::from("42")),
        ("status", Value::from("NEW")),
        ("card", Value::from("4111")),
        ("created", Value::Timestamp(1_500_000)),
        (
            "address",
            Value::Struct(StructValue::from_pairs([("city", Value::from("Oslo"))])),
        ),
        ("priority", Value::Int64(0)),
        ("not_in_proto", Value::from("ignored")),
    ]);
    let mut bytes = Vec::new();
    let _ = e.encode(&mine, &mut bytes).unwrap();
    let r = decode(&mut d, &bytes).unwrap();
    assert_eq!(r.get("id"), Some(&Value::Int64(42)));
    assert_eq!(r.get("status"), Some(&Value::from("NEW")));
    assert_eq!(r.get("card"), Some(&Value::from("4111")));
    assert_eq!(r.get("iban"), Some(&Value::Null));
    assert_eq!(r.get("created"), Some(&Value::Timestamp(1_500_000)));
    assert_eq!(r.get_path("address.city"), Some(&Value::from("Oslo")));
    assert_eq!(
        r.get("priority"),
        Some(&Value::Int64(0)),
        "explicit presence keeps a zero"
    );

    let bad = Record::from_pairs([("status", Value::from("LOST"))]);
    let err = e.encode(&bad, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("field `status`: `LOST` is not a value of enum shop.v1.Status (STATUS_UNSPECIFIED, NEW, PAID)"), "{err}");
    let bad = Record::from_pairs([("id", Value::Array(vec![]))]);
    assert!(
        e.encode(&bad, &mut Vec::new())
            .unwrap_err()
            .to_string()
            .contains("field `id`: cannot write array<json> as protobuf int64")
    );
}

#[test]
fn malformed_payloads_are_errors() {
    let p = protos();
    let mut d = config(&p.order, "shop.v1.Order", &[&p.root])
        .decoder()
        .unwrap();
    let bytes = order_bytes(&p);
    let mut errors = 0;
    for end in 1..bytes.len() {
        if let Err(e) = decode(&mut d, &bytes[..end]) {
            assert!(e.is_bad_data());
            assert!(
                e.to_string()
                    .contains("cannot decode protobuf at message shop.v1.Order"),
                "{e}"
            );
            errors += 1;
        }
    }
    assert!(
        errors > bytes.len() / 2,
        "most truncations cut a field: {errors}"
    );
    for garbage in [
        &[0xff_u8, 0xff, 0xff][..],
        &[0x0f],
        &[0x0a, 0x05, 0x01],
        &[0x08; 11],
    ] {
        assert!(decode(&mut d, garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn schema_errors_are_configuration_errors() {
    let p = protos();
    let err = config(&p.order, "shop.v1.Nope", &[&p.root])
        .decoder()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("property `proto_file`: no message `shop.v1.Nope`"),
        "{err}"
    );
    assert!(
        err.contains("shop.v1.Order") && err.contains("common.Money"),
        "{err}"
    );
    let missing = p.root.join("missing.proto");
    let err = config(&missing, "x.Y", &[])
        .decoder()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot read") && err.contains("missing.proto"),
        "{err}"
    );
    std::fs::write(
        p.root.join("broken.proto"),
        "syntax = \"proto3\";\nmessage A { int32 a = ; }\n",
    )
    .unwrap();
    let err = config(&p.root.join("broken.proto"), "A", &[])
        .decoder()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot compile") && err.contains("broken.proto"),
        "{err}"
    );
    // Without the include path, the import cannot be found.
    let err = config(&p.order, "shop.v1.Order", &[])
        .decoder()
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("common/money.proto"), "{err}");
    let err = FormatConfig::new(DataFormat::PROTOBUF)
        .decoder()
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`protobuf` needs `proto_file`"), "{err}");
}
