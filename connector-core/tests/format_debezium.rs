//! Debezium change events as Debezium emits them (the Postgres and MySQL
//! examples of Debezium's documentation, with and without the schema
//! wrapper, tombstones), in JSON and in Avro, plain and upsert, and the
//! envelope encoder.

use connector_core::format::{
    DataFormat, Decoder, FormatConfig, MessageMeta, Progress, decode_message, encode_record,
};
use connector_core::{ChangeKind, DataType, Decimal, Record, StructValue, Value};

/// Postgres `create` event with the JSON converter's schema wrapper
/// (Debezium PostgreSQL connector documentation, "create events").
const PG_CREATE: &str = r#"{
  "schema": {
    "type": "struct",
    "fields": [
      {"type": "struct", "fields": [
        {"type": "int32", "optional": false, "default": 0, "field": "id"},
        {"type": "string", "optional": false, "field": "first_name"},
        {"type": "string", "optional": false, "field": "last_name"},
        {"type": "string", "optional": false, "field": "email"}
      ], "optional": true, "name": "PostgreSQL_server.inventory.customers.Value", "field": "before"},
      {"type": "struct", "fields": [
        {"type": "int32", "optional": false, "default": 0, "field": "id"},
        {"type": "string", "optional": false, "field": "first_name"},
        {"type": "string", "optional": false, "field": "last_name"},
        {"type": "string", "optional": false, "field": "email"}
      ], "optional": true, "name": "PostgreSQL_server.inventory.customers.Value", "field": "after"},
      {"type": "struct", "fields": [
        {"type": "string", "optional": false, "field": "version"},
        {"type": "string", "optional": false, "field": "connector"},
        {"type": "string", "optional": false, "field": "name"},
        {"type": "int64", "optional": false, "field": "ts_ms"},
        {"type": "boolean", "optional": true, "default": false, "field": "snapshot"},
        {"type": "string", "optional": false, "field": "db"},
        {"type": "string", "optional": false, "field": "schema"},
        {"type": "string", "optional": false, "field": "table"},
        {"type": "int64", "optional": true, "field": "txId"},
        {"type": "int64", "optional": true, "field": "lsn"},
        {"type": "int64", "optional": true, "field": "xmin"}
      ], "optional": false, "name": "io.debezium.connector.postgresql.Source", "field": "source"},
      {"type": "string", "optional": false, "field": "op"},
      {"type": "int64", "optional": true, "field": "ts_ms"}
    ],
    "optional": false,
    "name": "PostgreSQL_server.inventory.customers.Envelope"
  },
  "payload": {
    "before": null,
    "after": {"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
    "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "PostgreSQL_server",
               "ts_ms": 1559033904863, "snapshot": true, "db": "postgres",
               "sequence": "[\"24023119\",\"24023128\"]", "schema": "public", "table": "customers",
               "txId": 555, "lsn": 24023128, "xmin": null},
    "op": "c",
    "ts_ms": 1559033904863
  }
}"#;

/// Postgres `update` of a table with the default REPLICA IDENTITY: no `before`.
const PG_UPDATE_DEFAULT_IDENTITY: &str = r#"{"schema": null, "payload": {
  "before": null,
  "after": {"id": 1, "first_name": "Anne Marie", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
  "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "PostgreSQL_server",
             "ts_ms": 1559033904863, "snapshot": false, "db": "postgres", "schema": "public",
             "table": "customers", "txId": 556, "lsn": 24023128, "xmin": null},
  "op": "u",
  "ts_ms": 1465584025523
}}"#;

/// Postgres `update` with REPLICA IDENTITY FULL.
const PG_UPDATE_FULL: &str = r#"{"payload": {
  "before": {"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
  "after": {"id": 1, "first_name": "Anne Marie", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
  "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "PostgreSQL_server",
             "ts_ms": 1559033904863, "db": "postgres", "schema": "public", "table": "customers"},
  "op": "u",
  "ts_ms": 1465584025523
}, "schema": null}"#;

/// Postgres `delete` (default identity: only the key in `before`).
const PG_DELETE: &str = r#"{"schema": null, "payload": {
  "before": {"id": 1, "first_name": null, "last_name": null, "email": null},
  "after": null,
  "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "PostgreSQL_server",
             "ts_ms": 1559033904863, "snapshot": false, "db": "postgres", "schema": "public",
             "table": "customers", "txId": 556, "lsn": 46523128, "xmin": null},
  "op": "d",
  "ts_ms": 1465581902461
}}"#;

/// MySQL events without the wrapper (`schemas.enable=false`), from the
/// Debezium MySQL connector documentation.
const MYSQL_CREATE: &str = r#"{
  "before": null,
  "after": {"id": 1004, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
  "source": {"version": "2.7.0.Final", "connector": "mysql", "name": "mysql-server-1",
             "ts_ms": 1465491411815, "snapshot": "false", "db": "inventory", "table": "customers",
             "server_id": 0, "gtid": null, "file": "mysql-bin.000003", "pos": 154, "row": 0,
             "thread": 7, "query": "INSERT INTO customers (first_name, last_name, email) VALUES ('Anne', 'Kretchmar', 'annek@noanswer.org')"},
  "op": "c",
  "ts_ms": 1465491411815
}"#;

const MYSQL_UPDATE: &str = r#"{
  "before": {"id": 1004, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
  "after": {"id": 1004, "first_name": "Anne Marie", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
  "source": {"version": "2.7.0.Final", "name": "mysql-server-1", "connector": "mysql",
             "ts_ms": 1465581029100, "snapshot": "false", "db": "inventory", "table": "customers",
             "server_id": 223344, "gtid": null, "file": "mysql-bin.000003", "pos": 484, "row": 0,
             "thread": 7, "query": "UPDATE customers SET first_name='Anne Marie' WHERE id=1004"},
  "op": "u",
  "ts_ms": 1465581029523
}"#;

const MYSQL_DELETE: &str = r#"{
  "before": {"id": 1004, "first_name": "Anne Marie", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
  "after": null,
  "source": {"version": "2.7.0.Final", "name": "mysql-server-1", "connector": "mysql",
             "ts_ms": 1465581902300, "snapshot": "false", "db": "inventory", "table": "customers",
             "server_id": 223344, "gtid": null, "file": "mysql-bin.000003", "pos": 805, "row": 0,
             "thread": 7, "query": "DELETE FROM customers WHERE id=1004"},
  "op": "d",
  "ts_ms": 1465581902461
}"#;

/// The key of a MySQL event with the schema wrapper.
const MYSQL_KEY: &str = r#"{"schema": {"type": "struct", "name": "mysql-server-1.inventory.customers.Key", "optional": false,
  "fields": [{"field": "id", "type": "int32", "optional": false}]}, "payload": {"id": 1004}}"#;

fn decoder(format: DataFormat) -> Box<dyn Decoder> {
    FormatConfig::new(format)
        .with_component("kafka source")
        .decoder()
        .unwrap()
}

fn decode(
    d: &mut Box<dyn Decoder>,
    payload: &str,
    key: Option<&str>,
) -> connector_core::Result<Vec<Record>> {
    let meta = MessageMeta {
        key: key.map(str::as_bytes),
        ..MessageMeta::default()
    };
    let mut out = Vec::new();
    let progress = d.decode(payload.as_bytes(), &meta, &mut out)?;
    assert_eq!(progress, Progress::Done);
    Ok(out)
}

fn kinds(records: &[Record]) -> Vec<ChangeKind> {
    records.iter().map(|r| r.kind).collect()
}

#[test]
fn postgres_events_with_schema_wrapper() {
    let mut d = decoder(DataFormat::DEBEZIUM_JSON);
    let created = decode(&mut d, PG_CREATE, None).unwrap();
    assert_eq!(kinds(&created), [ChangeKind::Insert]);
    let r = &created[0];
    assert_eq!(r.get("id"), Some(&Value::Int64(1)));
    assert_eq!(r.get("email"), Some(&Value::from("annek@noanswer.org")));
    assert_eq!(
        r.schema.names().collect::<Vec<_>>(),
        ["id", "first_name", "last_name", "email"]
    );
    // The wrapper schema types the columns: `optional: false` is not null.
    assert!(!r.schema.field(0).nullable);
    assert_eq!(r.schema.field(0).data_type, DataType::Int64);
    // Event time: source.ts_ms.
    assert_eq!(r.timestamp, Some(1_559_033_904_863_000));

    // Default REPLICA IDENTITY: updates carry no `before`.
    let err = decode(&mut d, PG_UPDATE_DEFAULT_IDENTITY, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot decode debezium-json at event")
            || err.contains("cannot decode debezium-json at event"),
        "{err}"
    );
    assert!(err.contains("`u` event without `before`"), "{err}");
    assert!(err.contains("REPLICA IDENTITY FULL"), "{err}");
    assert!(err.contains("debezium-json-upsert"), "{err}");

    let full = decode(&mut d, PG_UPDATE_FULL, None).unwrap();
    assert_eq!(
        kinds(&full),
        [ChangeKind::UpdateBefore, ChangeKind::UpdateAfter]
    );
    assert_eq!(full[0].get("first_name"), Some(&Value::from("Anne")));
    assert_eq!(full[1].get("first_name"), Some(&Value::from("Anne Marie")));

    let deleted = decode(&mut d, PG_DELETE, None).unwrap();
    assert_eq!(kinds(&deleted), [ChangeKind::Delete]);
    assert_eq!(deleted[0].get("id"), Some(&Value::Int64(1)));
    // The tombstone after a delete is skipped.
    assert!(decode(&mut d, "", Some(r#"{"id": 1}"#)).unwrap().is_empty());
    assert!(
        decode(&mut d, "null", Some(r#"{"id": 1}"#))
            .unwrap()
            .is_empty()
    );
    assert!(
        decode(&mut d, r#"{"schema": null, "payload": null}"#, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn mysql_events_without_wrapper() {
    let mut d = decoder(DataFormat::DEBEZIUM_JSON);
    let c = decode(&mut d, MYSQL_CREATE, None).unwrap();
    assert_eq!(kinds(&c), [ChangeKind::Insert]);
    assert_eq!(c[0].get("id"), Some(&Value::Int64(1004)));
    assert_eq!(c[0].timestamp, Some(1_465_491_411_815_000));
    let u = decode(&mut d, MYSQL_UPDATE, None).unwrap();
    assert_eq!(
        kinds(&u),
        [ChangeKind::UpdateBefore, ChangeKind::UpdateAfter]
    );
    assert!(std::sync::Arc::ptr_eq(&u[0].schema, &u[1].schema));
    let del = decode(&mut d, MYSQL_DELETE, None).unwrap();
    assert_eq!(kinds(&del), [ChangeKind::Delete]);
    assert_eq!(del[0].get("first_name"), Some(&Value::from("Anne Marie")));

    // Snapshot reads are inserts; truncate and message events are skipped.
    let read = MYSQL_CREATE.replace(r#""op": "c""#, r#""op": "r""#);
    assert_eq!(
        kinds(&decode(&mut d, &read, None).unwrap()),
        [ChangeKind::Insert]
    );
    let truncate =
        r#"{"before": null, "after": null, "source": {"ts_ms": 1}, "op": "t", "ts_ms": 2}"#;
    assert!(decode(&mut d, truncate, None).unwrap().is_empty());
    let message = r#"{"op": "m", "ts_ms": 2, "message": {"prefix": "p", "content": "aGk="}}"#;
    assert!(decode(&mut d, message, None).unwrap().is_empty());
}

#[test]
fn upsert_mode_keys_by_message_key() {
    let mut d = decoder(DataFormat::DEBEZIUM_JSON_UPSERT);
    let c = decode(&mut d, MYSQL_CREATE, Some(MYSQL_KEY)).unwrap();
    assert_eq!(kinds(&c), [ChangeKind::Upsert]);
    // No `before` needed.
    let u = decode(&mut d, PG_UPDATE_DEFAULT_IDENTITY, Some(r#"{"id": 1}"#)).unwrap();
    assert_eq!(kinds(&u), [ChangeKind::Upsert]);
    assert_eq!(u[0].get("first_name"), Some(&Value::from("Anne Marie")));
    // Delete by key: the key's columns (wrapper unwrapped).
    let d1 = decode(&mut d, MYSQL_DELETE, Some(MYSQL_KEY)).unwrap();
    assert_eq!(kinds(&d1), [ChangeKind::Delete]);
    assert_eq!(d1[0].schema.names().collect::<Vec<_>>(), ["id"]);
    assert_eq!(d1[0].get("id"), Some(&Value::Int64(1004)));
    // A tombstone deletes by key too.
    let t = decode(&mut d, "", Some(MYSQL_KEY)).unwrap();
    assert_eq!(kinds(&t), [ChangeKind::Delete]);
    assert_eq!(t[0].get("id"), Some(&Value::Int64(1004)));
    // A plain-text key still deletes, as one `key` column.
    let t = decode(&mut d, "null", Some("1004")).unwrap();
    assert_eq!(t[0].get("key"), Some(&Value::from("1004")));
    // A delete without a key falls back to `before`; a tombstone without a key is an error.
    let d2 = decode(&mut d, MYSQL_DELETE, None).unwrap();
    assert_eq!(d2[0].get("email"), Some(&Value::from("annek@noanswer.org")));
    let err = decode(&mut d, "", None).unwrap_err().to_string();
    assert!(
        err.contains("debezium-json-upsert") && err.contains("no message key to delete by"),
        "{err}"
    );
}

#[test]
fn wrapper_schema_types_debezium_logical_types() {
    let event = r#"{
      "schema": {"type": "struct", "name": "db.public.t.Envelope", "fields": [
        {"type": "struct", "optional": true, "field": "after", "name": "db.public.t.Value", "fields": [
          {"type": "int64", "optional": false, "field": "id"},
          {"type": "int64", "optional": true, "name": "io.debezium.time.MicroTimestamp", "version": 1, "field": "created"},
          {"type": "int64", "optional": true, "name": "io.debezium.time.Timestamp", "version": 1, "field": "created_ms"},
          {"type": "int32", "optional": true, "name": "io.debezium.time.Date", "version": 1, "field": "day"},
          {"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "zoned"},
          {"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
           "parameters": {"scale": "2", "connect.decimal.precision": "10"}, "field": "price"},
          {"type": "struct", "optional": true, "name": "io.debezium.data.VariableScaleDecimal", "field": "ratio",
           "fields": [{"type": "int32", "optional": false, "field": "scale"}, {"type": "bytes", "optional": false, "field": "value"}]},
          {"type": "bytes", "optional": true, "field": "blob"},
          {"type": "array", "optional": true, "items": {"type": "string", "optional": true}, "field": "tags"},
          {"type": "float64", "optional": true, "field": "score"},
          {"type": "string", "optional": true, "name": "io.debezium.data.Json", "version": 1, "field": "doc"}
        ]},
        {"type": "struct", "optional": true, "field": "before", "name": "db.public.t.Value", "fields": []},
        {"type": "string", "optional": false, "field": "op"},
        {"type": "int64", "optional": true, "field": "ts_ms"}
      ]},
      "payload": {"before": null, "op": "c", "ts_ms": 1700000000000, "after": {
        "id": 7, "created": 1700000000123456, "created_ms": 1700000000123, "day": 19675,
        "zoned": "2024-01-02T03:04:05.5+01:00", "price": "Aeo=", "ratio": {"scale": 3, "value": "AQ=="},
        "blob": "aGVsbG8=", "tags": ["a", null], "score": 3, "doc": "{\"k\": 1}"}}
    }"#;
    let mut d = decoder(DataFormat::DEBEZIUM_JSON);
    let r = decode(&mut d, event, None).unwrap().remove(0);
    assert_eq!(
        r.get("created"),
        Some(&Value::Timestamp(1_700_000_000_123_456))
    );
    assert_eq!(
        r.get("created_ms"),
        Some(&Value::Timestamp(1_700_000_000_123_000))
    );
    assert_eq!(r.get("day"), Some(&Value::Date(19_675)));
    let zoned = chrono::DateTime::parse_from_rfc3339("2024-01-02T02:04:05.5Z")
        .unwrap()
        .timestamp_micros();
    assert_eq!(r.get("zoned"), Some(&Value::Timestamp(zoned)));
    assert_eq!(r.get("price"), Some(&Value::Decimal(Decimal::new(490, 2)))); // 0x01ea
    assert_eq!(r.get("ratio"), Some(&Value::Decimal(Decimal::new(1, 3))));
    assert_eq!(r.get("blob"), Some(&Value::Bytes(b"hello".to_vec())));
    assert_eq!(
        r.get("tags"),
        Some(&Value::Array(vec!["a".into(), Value::Null]))
    );
    assert_eq!(r.get("score"), Some(&Value::Float64(3.0)));
    assert_eq!(r.get("doc"), Some(&Value::from("{\"k\": 1}")));
    let types: Vec<String> = r
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type.to_string())
        .collect();
    assert_eq!(
        types,
        [
            "int64",
            "timestamp",
            "timestamp",
            "date",
            "timestamp",
            "decimal(10, 2)",
            "json",
            "bytes",
            "array<string>",
            "float64",
            "string"
        ]
    );
    // A value that contradicts its declared type names the column.
    let bad = event.replace(r#""day": 19675"#, r#""day": "monday""#);
    let err = decode(&mut d, &bad, None).unwrap_err().to_string();
    assert!(
        err.contains("`after`: column `day`: expected a date (days since 1970-01-01), got string"),
        "{err}"
    );
}

#[test]
fn malformed_events() {
    let mut d = decoder(DataFormat::DEBEZIUM_JSON);
    let cases = [
        (
            r#"{"before": null, "after": {"id": 1}}"#,
            "not a Debezium change event: no `op` field (fields: before, after)",
        ),
        (r#"{"op": "x", "after": {"id": 1}}"#, "unknown `op` `x`"),
        (r#"{"op": "c", "after": null}"#, "`c` event without `after`"),
        (r#"{"op": "c", "after": 5}"#, "`after` is int64"),
        (
            r#"{"op": "d", "before": null}"#,
            "`d` event without `before`",
        ),
        (
            r#"{"op": "c", "after": {"id": 1}"#,
            "cannot decode debezium-json at line 1 column 30: truncated input",
        ),
        ("[1]", "cannot decode debezium-json at array index 0"),
        // Inside the wrapper, positions count from the start of the message.
        (
            r#"{"schema": null, "payload": {"op": "c", "after": {"id": tru}}}"#,
            "at line 1 column 60: expected ident",
        ),
        (
            r#"{"schema": {"fields": 1}, "payload": {"op": "c", "after": {"id": 1}}}"#,
            "the event's `schema`: no `fields` list",
        ),
        (
            r#"{"schema": null, "payload": {"op": "c", "after": {"id": 1}}, "x": 1}"#,
            "no `op` field (fields: schema, payload, x)",
        ),
        ("\u{0}", "cannot decode debezium-json"),
    ];
    for (payload, want) in cases {
        let err = decode(&mut d, payload, None).unwrap_err();
        assert!(err.is_bad_data());
        assert!(err.to_string().contains(want), "{payload}: {err}");
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn encoder_writes_the_envelope_and_round_trips() {
    let row = Record::from_pairs([("id", Value::Int64(5)), ("name", Value::from("ada"))])
        .with_timestamp(1_700_000_000_000_000);
    let mut e = FormatConfig::new(DataFormat::DEBEZIUM_JSON)
        .encoder()
        .unwrap();
    let mut bytes = Vec::new();
    block_on(encode_record(&mut e, &row, &mut bytes)).unwrap();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        r#"{"before":null,"after":{"id":5,"name":"ada"},"op":"c","ts_ms":1700000000000}"#
    );
    let mut d = decoder(DataFormat::DEBEZIUM_JSON);
    let back = decode(&mut d, std::str::from_utf8(&bytes).unwrap(), None).unwrap();
    assert_eq!(back, vec![row.clone()]);

    let deleted = row.clone().with_kind(ChangeKind::Delete);
    let mut bytes = Vec::new();
    block_on(encode_record(&mut e, &deleted, &mut bytes)).unwrap();
    assert_eq!(
        decode(&mut d, std::str::from_utf8(&bytes).unwrap(), None).unwrap(),
        vec![deleted]
    );

    let mut upsert = decoder(DataFormat::DEBEZIUM_JSON_UPSERT);
    let up = row.with_kind(ChangeKind::Upsert);
    let mut bytes = Vec::new();
    block_on(encode_record(&mut e, &up, &mut bytes)).unwrap();
    assert_eq!(
        decode(&mut upsert, std::str::from_utf8(&bytes).unwrap(), Some("5")).unwrap(),
        vec![up]
    );
}

/// The Debezium envelope as the Avro converter registers it.
const AVRO_ENVELOPE: &str = r#"{
  "type": "record", "name": "Envelope", "namespace": "mysql_server_1.inventory.customers",
  "fields": [
    {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
      {"name": "id", "type": "int"},
      {"name": "first_name", "type": "string"},
      {"name": "email", "type": "string"},
      {"name": "updated", "type": ["null", {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}], "default": null}
    ]}], "default": null},
    {"name": "after", "type": ["null", "Value"], "default": null},
    {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.mysql", "fields": [
      {"name": "connector", "type": "string"}, {"name": "ts_ms", "type": "long"}, {"name": "table", "type": ["null", "string"], "default": null}]}},
    {"name": "op", "type": "string"},
    {"name": "ts_ms", "type": ["null", "long"], "default": null}
  ]
}"#;

#[test]
fn debezium_over_avro() {
    let config = FormatConfig::new(DataFormat::DEBEZIUM_AVRO).with_avro_schema(AVRO_ENVELOPE);
    let mut d = config.decoder().unwrap();
    let mut e = config.encoder().unwrap();
    let value = |id: i64, name: &str| {
        Value::Struct(StructValue::from_pairs([
            ("id", Value::Int64(id)),
            ("first_name", Value::from(name)),
            ("email", Value::from("a@b.c")),
            ("updated", Value::Null),
        ]))
    };
    let source = Value::Struct(StructValue::from_pairs([
        ("connector", Value::from("mysql")),
        ("ts_ms", Value::Int64(1_465_581_029_100)),
        ("table", Value::from("customers")),
    ]));
    let envelope = |before: Value, after: Value, op: &str| {
        Record::from_pairs([
            ("before", before),
            ("after", after),
            ("source", source.clone()),
            ("op", Value::from(op)),
            ("ts_ms", Value::Int64(1_465_581_029_523)),
        ])
    };
    // Write envelopes with a plain Avro encoder of the envelope schema, as Debezium would.
    let mut writer = FormatConfig::new(DataFormat::AVRO)
        .with_avro_schema(AVRO_ENVELOPE)
        .encoder()
        .unwrap();
    let mut payload = |record: &Record| {
        let mut out = Vec::new();
        block_on(encode_record(&mut writer, record, &mut out)).unwrap();
        out
    };
    let update = payload(&envelope(
        value(1004, "Anne"),
        value(1004, "Anne Marie"),
        "u",
    ));
    let mut out = Vec::new();
    block_on(decode_message(
        &mut d,
        &update,
        &MessageMeta::default(),
        &mut out,
    ))
    .unwrap();
    assert_eq!(
        kinds(&out),
        [ChangeKind::UpdateBefore, ChangeKind::UpdateAfter]
    );
    assert_eq!(out[1].get("first_name"), Some(&Value::from("Anne Marie")));
    assert_eq!(out[1].timestamp, Some(1_465_581_029_100_000));

    let no_before = payload(&envelope(Value::Null, value(1, "x"), "u"));
    let err = block_on(decode_message(
        &mut d,
        &no_before,
        &MessageMeta::default(),
        &mut Vec::new(),
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("debezium-avro")
            && err.to_string().contains("REPLICA IDENTITY FULL"),
        "{err}"
    );
    // An empty payload is a tombstone.
    let mut none = Vec::new();
    block_on(decode_message(
        &mut d,
        b"",
        &MessageMeta::default(),
        &mut none,
    ))
    .unwrap();
    assert!(none.is_empty());

    // The envelope encoder over Avro: an insert reads back as an insert.
    let row = Record::from_pairs([
        ("id", Value::Int64(9)),
        ("first_name", Value::from("Bo")),
        ("email", Value::from("bo@x.y")),
        ("updated", Value::Null),
    ]);
    let err = block_on(encode_record(&mut e, &row, &mut Vec::new())).unwrap_err();
    // The fixed envelope schema requires `source`, which a plain row lacks.
    assert!(err.to_string().contains("field `source`"), "{err}");

    // With an envelope schema whose `source` is optional, rows round-trip.
    let optional_source = AVRO_ENVELOPE
        .replace(
            r#"{"name": "source", "type": {"type": "record""#,
            r#"{"name": "source", "default": null, "type": ["null", {"type": "record""#,
        )
        .replace(
            r#"{"name": "table", "type": ["null", "string"], "default": null}]}},"#,
            r#"{"name": "table", "type": ["null", "string"], "default": null}]}]},"#,
        );
    let config = FormatConfig::new(DataFormat::DEBEZIUM_AVRO).with_avro_schema(optional_source);
    let (mut d, mut e) = (config.decoder().unwrap(), config.encoder().unwrap());
    for kind in [ChangeKind::Insert, ChangeKind::Delete] {
        let row = row.clone().with_kind(kind).with_timestamp(1_000);
        let mut bytes = Vec::new();
        block_on(encode_record(&mut e, &row, &mut bytes)).unwrap();
        let mut out = Vec::new();
        block_on(decode_message(
            &mut d,
            &bytes,
            &MessageMeta::default(),
            &mut out,
        ))
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].kind, &out[0].values, out[0].timestamp),
            (kind, &row.values, Some(1_000))
        );
    }
}
