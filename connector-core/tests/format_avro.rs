//! Avro: bytes written by `apache-avro` decoded into records (logical types,
//! unions, enums, arrays, maps, nested records), the Confluent wire format
//! with a schema-registry HTTP server on a real socket (Basic auth, caching,
//! retries, unknown ids, a registry that is down), encoders, round trips and
//! malformed input.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::types::Value as AvroValue;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use connector_core::format::avro::{AvroDecoder, AvroEncoder, Plan, split_wire_format};
use connector_core::format::registry::{Backoff, RegistryClient};
use connector_core::format::{
    DataFormat, Decoder, Encoder, FormatConfig, MessageMeta, Progress, RegistryConfig,
    decode_message, encode_record,
};
use connector_core::{DataType, Decimal, Record, Secret, StructValue, Value};
use serde_json::json;

const SCHEMA: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop.v1",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "qty", "type": "int"},
    {"name": "ok", "type": "boolean"},
    {"name": "ratio", "type": "float"},
    {"name": "price", "type": "double"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "raw", "type": "bytes"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
        {"name": "name", "type": "string"},
        {"name": "address", "type": ["null", {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "string"]}]}]}
    ]}},
    {"name": "billing", "type": ["null", "Address"], "default": null},
    {"name": "created_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "updated_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "fee", "type": {"type": "fixed", "name": "Fee", "size": 8, "logicalType": "decimal", "precision": 12, "scale": 3}},
    {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "checksum", "type": {"type": "fixed", "name": "Md5", "size": 4}},
    {"name": "either", "type": ["null", "long", "string"], "default": null}
  ]
}"#;

fn avro_schema() -> apache_avro::Schema {
    apache_avro::Schema::parse_str(SCHEMA).unwrap()
}

/// A datum built with apache-avro's own types and writer.
fn sample_datum(id: i64, note: Option<&str>, either: AvroValue) -> Vec<u8> {
    let address = |city: &str, zip: Option<&str>| {
        AvroValue::Record(vec![
            ("city".into(), AvroValue::String(city.into())),
            (
                "zip".into(),
                match zip {
                    Some(z) => AvroValue::Union(1, Box::new(AvroValue::String(z.into()))),
                    None => AvroValue::Union(0, Box::new(AvroValue::Null)),
                },
            ),
        ])
    };
    let value = AvroValue::Record(vec![
        ("id".into(), AvroValue::Long(id)),
        ("qty".into(), AvroValue::Int(-3)),
        ("ok".into(), AvroValue::Boolean(true)),
        ("ratio".into(), AvroValue::Float(0.5)),
        ("price".into(), AvroValue::Double(19.99)),
        (
            "note".into(),
            match note {
                Some(n) => AvroValue::Union(1, Box::new(AvroValue::String(n.into()))),
                None => AvroValue::Union(0, Box::new(AvroValue::Null)),
            },
        ),
        ("raw".into(), AvroValue::Bytes(vec![0, 1, 255])),
        ("status".into(), AvroValue::Enum(1, "PAID".into())),
        (
            "tags".into(),
            AvroValue::Array(vec![
                AvroValue::String("a".into()),
                AvroValue::String("b".into()),
            ]),
        ),
        (
            "attrs".into(),
            AvroValue::Map(HashMap::from([("w".to_owned(), AvroValue::Long(7))])),
        ),
        (
            "customer".into(),
            AvroValue::Record(vec![
                ("name".into(), AvroValue::String("Ada".into())),
                (
                    "address".into(),
                    AvroValue::Union(1, Box::new(address("Paris", Some("75001")))),
                ),
            ]),
        ),
        (
            "billing".into(),
            AvroValue::Union(1, Box::new(address("Lyon", None))),
        ),
        (
            "created_ms".into(),
            AvroValue::TimestampMillis(1_700_000_000_123),
        ),
        (
            "updated_us".into(),
            AvroValue::TimestampMicros(1_700_000_000_123_456),
        ),
        ("day".into(), AvroValue::Date(19_700)),
        (
            "amount".into(),
            // Minimal two's complement, as Avro writers emit it.
            AvroValue::Decimal(apache_avro::Decimal::from(vec![0xfe, 0x1d, 0xc0])),
        ),
        (
            "fee".into(),
            AvroValue::Decimal(apache_avro::Decimal::from(4_250i64.to_be_bytes().to_vec())),
        ),
        (
            "uid".into(),
            AvroValue::Uuid("6d8f3a4e-1b2c-4d5e-8f90-0123456789ab".parse().unwrap()),
        ),
        ("checksum".into(), AvroValue::Fixed(4, vec![1, 2, 3, 4])),
        ("either".into(), either),
    ]);
    let schema = avro_schema();
    apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

fn decode_all(decoder: &mut dyn Decoder, payload: &[u8]) -> connector_core::Result<Vec<Record>> {
    let mut out = Vec::new();
    match decoder.decode(payload, &MessageMeta::default(), &mut out)? {
        Progress::Done => Ok(out),
        Progress::NeedsResolve => panic!("unexpected NeedsResolve"),
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
fn decodes_every_type_written_by_apache_avro() {
    let plan = Plan::parse(SCHEMA).unwrap();
    let mut d = AvroDecoder::fixed(plan);
    let datum = sample_datum(
        42,
        Some("fragile"),
        AvroValue::Union(2, Box::new(AvroValue::String("s".into()))),
    );
    let r = decode_all(&mut d, &datum).unwrap().remove(0);
    assert_eq!(r.get("id"), Some(&Value::Int64(42)));
    assert_eq!(r.get("qty"), Some(&Value::Int64(-3)));
    assert_eq!(r.get("ok"), Some(&Value::Boolean(true)));
    assert_eq!(r.get("ratio"), Some(&Value::Float64(0.5)));
    assert_eq!(r.get("price"), Some(&Value::Float64(19.99)));
    assert_eq!(r.get("note"), Some(&Value::from("fragile")));
    assert_eq!(r.get("raw"), Some(&Value::Bytes(vec![0, 1, 255])));
    assert_eq!(r.get("status"), Some(&Value::from("PAID")));
    assert_eq!(
        r.get("tags"),
        Some(&Value::Array(vec!["a".into(), "b".into()]))
    );
    assert_eq!(
        r.get("attrs"),
        Some(&Value::Map(vec![(Value::from("w"), Value::Int64(7))]))
    );
    assert_eq!(r.get_path("customer.name"), Some(&Value::from("Ada")));
    assert_eq!(
        r.get_path("customer.address.city"),
        Some(&Value::from("Paris"))
    );
    assert_eq!(
        r.get_path("customer.address.zip"),
        Some(&Value::from("75001"))
    );
    assert_eq!(r.get_path("billing.zip"), Some(&Value::Null));
    assert_eq!(
        r.get("created_ms"),
        Some(&Value::Timestamp(1_700_000_000_123_000))
    );
    assert_eq!(
        r.get("updated_us"),
        Some(&Value::Timestamp(1_700_000_000_123_456))
    );
    assert_eq!(r.get("day"), Some(&Value::Date(19_700)));
    assert_eq!(
        r.get("amount"),
        Some(&Value::Decimal(Decimal::new(-123_456, 2)))
    );
    assert_eq!(r.get("fee"), Some(&Value::Decimal(Decimal::new(4_250, 3))));
    assert_eq!(
        r.get("uid"),
        Some(&Value::from("6d8f3a4e-1b2c-4d5e-8f90-0123456789ab"))
    );
    assert_eq!(r.get("checksum"), Some(&Value::Bytes(vec![1, 2, 3, 4])));
    assert_eq!(r.get("either"), Some(&Value::from("s")));

    // Column types follow the schema: null unions nullable, enums strings,
    // logical types mapped, the multi-type union dynamic.
    let field = |n: &str| r.schema.field_named(n).unwrap().clone();
    assert!(field("note").nullable && field("note").data_type == DataType::String);
    assert!(!field("id").nullable);
    assert_eq!(field("status").data_type, DataType::String);
    assert_eq!(field("created_ms").data_type, DataType::Timestamp);
    assert_eq!(field("day").data_type, DataType::Date);
    assert_eq!(
        field("amount").data_type,
        DataType::Decimal {
            precision: 38,
            scale: 2
        }
    );
    assert_eq!(field("either").data_type, DataType::Json);
    assert_eq!(field("attrs").data_type.to_string(), "map<string, int64>");
    assert_eq!(
        field("billing").data_type.to_string(),
        "struct<city string, zip string>"
    );

    let nulls = sample_datum(7, None, AvroValue::Union(1, Box::new(AvroValue::Long(5))));
    let r2 = decode_all(&mut d, &nulls).unwrap().remove(0);
    assert_eq!(r2.get("note"), Some(&Value::Null));
    assert_eq!(r2.get("either"), Some(&Value::Int64(5)));
    assert!(Arc::ptr_eq(&r.schema, &r2.schema));
}

#[test]
fn agrees_with_apache_avro_on_the_same_bytes() {
    // Differential check: avro's own reader and ours see the same values.
    let schema = avro_schema();
    let datum = sample_datum(1, Some("x"), AvroValue::Union(0, Box::new(AvroValue::Null)));
    let theirs = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut &datum[..])
        .unwrap();
    let ours = Plan::parse(SCHEMA).unwrap().read_value(&datum).unwrap();
    let AvroValue::Record(fields) = theirs else {
        panic!()
    };
    for (name, v) in fields {
        let mine = ours.get_path(&name).unwrap();
        match (v, mine) {
            (AvroValue::Long(a), Value::Int64(b)) => assert_eq!(a, *b),
            (AvroValue::String(a), Value::String(b)) => assert_eq!(&a, b),
            (AvroValue::Enum(_, a), Value::String(b)) => assert_eq!(&a, b),
            (AvroValue::TimestampMillis(a), Value::Timestamp(b)) => assert_eq!(a * 1000, *b),
            (AvroValue::Date(a), Value::Date(b)) => assert_eq!(a, *b),
            (AvroValue::Array(a), Value::Array(b)) => assert_eq!(a.len(), b.len()),
            (AvroValue::Union(_, inner), mine) => {
                assert_eq!(matches!(*inner, AvroValue::Null), mine.is_null(), "{name}")
            }
            _ => {}
        }
    }
}

#[test]
fn malformed_datums_are_errors_with_offsets() {
    let mut d = AvroDecoder::fixed(Plan::parse(SCHEMA).unwrap());
    let datum = sample_datum(1, Some("x"), AvroValue::Union(0, Box::new(AvroValue::Null)));
    for end in 0..datum.len() {
        let err = decode_all(&mut d, &datum[..end]).unwrap_err();
        assert!(err.is_bad_data(), "{err}");
        let text = err.to_string();
        assert!(
            ["truncated datum", "out of range", "block of"]
                .iter()
                .any(|w| text.contains(w)),
            "{end}: {text}"
        );
    }
    let mut extra = datum.clone();
    extra.push(0);
    let err = decode_all(&mut d, &extra).unwrap_err().to_string();
    assert!(err.contains("1 bytes left after the datum"), "{err}");
    // A bad enum index names the field and the byte.
    let simple = Plan::parse(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"e","type":{"type":"enum","name":"E","symbols":["X"]}}]}"#).unwrap();
    let mut d = AvroDecoder::fixed(simple);
    let err = decode_all(&mut d, &[0x02, 0x04]).unwrap_err().to_string();
    assert_eq!(
        err,
        ": cannot decode avro at byte 1: field `e`: enum index 2 is out of range (0..1)"
    );
    // Invalid UTF-8 in a string, a negative length, an overlong varint.
    let strings =
        Plan::parse(r#"{"type":"record","name":"S","fields":[{"name":"s","type":"string"}]}"#)
            .unwrap();
    let mut d = AvroDecoder::fixed(strings);
    assert!(
        decode_all(&mut d, &[0x04, 0xff, 0xfe])
            .unwrap_err()
            .to_string()
            .contains("field `s`: string is not valid UTF-8")
    );
    assert!(
        decode_all(&mut d, &[0x03])
            .unwrap_err()
            .to_string()
            .contains("negative length -2")
    );
    assert!(
        decode_all(&mut d, &[0xff; 12])
            .unwrap_err()
            .to_string()
            .contains("varint is longer than 64 bits")
    );
    // A `uuid` string must be a UUID (found by fuzzing against apache-avro).
    let uuids = Plan::parse(r#"{"type":"record","name":"U","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#).unwrap();
    let mut d = AvroDecoder::fixed(uuids);
    let err = decode_all(&mut d, &[0x06, b'a', b'b', b'c'])
        .unwrap_err()
        .to_string();
    assert!(err.contains("field `u`: `abc` is not a UUID"), "{err}");
    let mut upper = vec![0x48];
    upper.extend_from_slice(b"6D8F3A4E-1B2C-4D5E-8F90-0123456789AB");
    let r = decode_all(&mut d, &upper).unwrap().remove(0);
    assert_eq!(
        r.get("u"),
        Some(&Value::from("6d8f3a4e-1b2c-4d5e-8f90-0123456789ab"))
    );
    // A block count far beyond the payload is refused without allocating it.
    let arrays = Plan::parse(r#"{"type":"record","name":"A","fields":[{"name":"xs","type":{"type":"array","items":"null"}}]}"#).unwrap();
    let mut d = AvroDecoder::fixed(arrays);
    let mut huge = Vec::new();
    connector_core::format::avro::plan::write_long(&mut huge, i64::MAX / 2);
    assert!(
        decode_all(&mut d, &huge)
            .unwrap_err()
            .to_string()
            .contains("block of")
    );
}

#[test]
fn recursive_and_non_record_schemas() {
    let list = Plan::parse(r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}"#).unwrap();
    let mut out = Vec::new();
    let node = |v: i64, next: Value| {
        Value::Struct(StructValue::from_pairs([
            ("v", Value::Int64(v)),
            ("next", next),
        ]))
    };
    let chain = node(1, node(2, node(3, Value::Null)));
    let Value::Struct(s) = &chain else { panic!() };
    list.write_record(s.schema(), s.values(), &mut out).unwrap();
    let back = list.read_value(&out).unwrap();
    assert_eq!(back.get_path("next.next.v"), Some(&Value::Int64(3)));
    assert_eq!(
        list.schema().field(1).data_type,
        DataType::Json,
        "a recursive field is dynamic"
    );
    // Hostile nesting depth is an error, not a stack overflow.
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        deep.extend_from_slice(&[0x02, 0x02]);
    }
    assert!(
        list.read(&deep)
            .unwrap_err()
            .message()
            .contains("nested deeper than")
    );

    let scalar = Plan::parse(r#""string""#).unwrap();
    let mut d = AvroDecoder::fixed(scalar);
    let r = decode_all(&mut d, &[0x06, b'a', b'b', b'c'])
        .unwrap()
        .remove(0);
    assert_eq!(r.get("value"), Some(&Value::from("abc")));
}

#[test]
fn plain_encoder_round_trip_and_apache_avro_reads_it() {
    let plan = Plan::parse(SCHEMA).unwrap();
    let mut d = AvroDecoder::fixed(plan.clone());
    let datum = sample_datum(9, None, AvroValue::Union(1, Box::new(AvroValue::Long(-1))));
    let record = decode_all(&mut d, &datum).unwrap().remove(0);
    let mut e = AvroEncoder::plain(plan);
    let mut bytes = Vec::new();
    let _ = e.encode(&record, &mut bytes).unwrap();
    assert_eq!(
        bytes, datum,
        "our writer produces the same bytes as apache-avro"
    );
    assert_eq!(decode_all(&mut d, &bytes).unwrap(), vec![record]);
    let schema = avro_schema();
    apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut &bytes[..])
        .unwrap();

    let bad = Record::from_pairs([("id", Value::from("not a number"))]);
    let err = e.encode(&bad, &mut Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("field `id`: cannot write string as Avro long"),
        "{err}"
    );
    let missing = Record::from_pairs([("id", Value::Int64(1))]);
    let err = e.encode(&missing, &mut Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("field `qty`: missing, and the Avro schema gives it no default and no null"),
        "{err}"
    );
}

/// A schema registry speaking Confluent's REST API on a loopback socket.
#[derive(Default)]
struct Registry {
    schemas: Mutex<Vec<(String, String)>>,
    fail_next: AtomicUsize,
    calls: Mutex<Vec<String>>,
    auth: Option<String>,
}

type Shared = Arc<Registry>;

fn registry_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

impl Registry {
    fn check(&self, headers: &HeaderMap, call: String) -> Option<Response> {
        self.calls.lock().unwrap().push(call);
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Some(registry_error(
                StatusCode::SERVICE_UNAVAILABLE,
                50301,
                "leader not available",
            ));
        }
        if let Some(expected) = &self.auth {
            let given = headers.get("authorization").and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                return Some(registry_error(
                    StatusCode::UNAUTHORIZED,
                    401,
                    "Unauthorized",
                ));
            }
        }
        None
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

async fn by_id(State(r): State<Shared>, headers: HeaderMap, Path(id): Path<u32>) -> Response {
    if let Some(resp) = r.check(&headers, format!("GET /schemas/ids/{id}")) {
        return resp;
    }
    let schemas = r.schemas.lock().unwrap();
    match schemas.get(id as usize - 1) {
        Some((_, schema)) if id > 0 => Json(json!({"schema": schema})).into_response(),
        _ => registry_error(
            StatusCode::NOT_FOUND,
            40403,
            &format!("Schema {id} not found"),
        ),
    }
}

async fn register(
    State(r): State<Shared>,
    headers: HeaderMap,
    Path(subject): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Some(resp) = r.check(&headers, format!("POST /subjects/{subject}/versions")) {
        return resp;
    }
    let schema = body["schema"].as_str().unwrap_or_default().to_owned();
    if apache_avro::Schema::parse_str(&schema).is_err() {
        return registry_error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    }
    let mut schemas = r.schemas.lock().unwrap();
    let id = match schemas
        .iter()
        .position(|(s, text)| *s == subject && *text == schema)
    {
        Some(i) => i + 1,
        None => {
            schemas.push((subject, schema));
            schemas.len()
        }
    };
    Json(json!({"id": id})).into_response()
}

async fn latest(
    State(r): State<Shared>,
    headers: HeaderMap,
    Path(subject): Path<String>,
) -> Response {
    if let Some(resp) = r.check(&headers, format!("GET /subjects/{subject}/versions/latest")) {
        return resp;
    }
    let schemas = r.schemas.lock().unwrap();
    let versions: Vec<(usize, &String)> = schemas
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s == subject)
        .map(|(i, (_, text))| (i + 1, text))
        .collect();
    match versions.last() {
        Some((id, text)) => {
            Json(json!({"subject": subject, "id": id, "version": versions.len(), "schema": text}))
                .into_response()
        }
        None => registry_error(
            StatusCode::NOT_FOUND,
            40401,
            &format!("Subject '{subject}' not found."),
        ),
    }
}

fn start_registry(registry: Registry) -> (Shared, SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(registry);
    let app = Router::new()
        .route("/schemas/ids/{id}", get(by_id))
        .route("/subjects/{subject}/versions", post(register))
        .route("/subjects/{subject}/versions/latest", get(latest))
        .with_state(shared.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (shared, addr, rt)
}

fn config(addr: SocketAddr, key: Option<&str>, secret: Option<&str>) -> RegistryConfig {
    RegistryConfig {
        address: format!("http://{addr}"),
        api_key: key.map(Secret::new),
        api_secret: secret.map(Secret::new),
    }
}

fn fast_backoff() -> Backoff {
    Backoff {
        attempts: 4,
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

fn wire(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

#[test]
fn confluent_wire_format_with_registry_auth_and_cache() {
    let registry = Registry {
        auth: Some("Basic a2V5OnNlY3JldA==".into()), // key:secret
        ..Registry::default()
    };
    registry
        .schemas
        .lock()
        .unwrap()
        .push(("orders-value".into(), SCHEMA.into()));
    let (registry, addr, _rt) = start_registry(registry);

    let format = FormatConfig::new(DataFormat::AVRO)
        .with_component("kafka source")
        .with_registry(config(addr, Some("key"), Some("secret")));
    let mut decoder = format.decoder().unwrap();
    let datum = sample_datum(5, Some("n"), AvroValue::Union(0, Box::new(AvroValue::Null)));
    let payload = wire(1, &datum);
    let mut out = Vec::new();
    block_on(async {
        for _ in 0..3 {
            decode_message(&mut decoder, &payload, &MessageMeta::default(), &mut out)
                .await
                .unwrap();
        }
    });
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].get("id"), Some(&Value::Int64(5)));
    assert_eq!(
        registry.calls(),
        ["GET /schemas/ids/1"],
        "fetched once, then cached"
    );

    // Wrong credentials: a permanent error that points at the properties.
    let mut wrong = FormatConfig::new(DataFormat::AVRO)
        .with_registry(config(addr, Some("key"), Some("nope")))
        .decoder()
        .unwrap();
    let err = block_on(decode_message(
        &mut wrong,
        &payload,
        &MessageMeta::default(),
        &mut Vec::new(),
    ))
    .unwrap_err();
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("status 401") && text.contains("check schema_registry_api_key"),
        "{text}"
    );
    assert!(!text.contains("nope"), "secrets stay out of errors: {text}");
}

#[test]
fn unknown_id_is_a_decode_error_and_transient_failures_are_retried() {
    let (registry, addr, _rt) = start_registry(Registry::default());
    registry
        .schemas
        .lock()
        .unwrap()
        .push(("t-value".into(), SCHEMA.into()));
    let client = RegistryClient::new(&config(addr, None, None))
        .unwrap()
        .with_backoff(fast_backoff());
    let mut decoder = AvroDecoder::registry(client);
    let datum = sample_datum(5, None, AvroValue::Union(0, Box::new(AvroValue::Null)));

    let err = block_on(decode_message(
        &mut decoder,
        &wire(9, &datum),
        &MessageMeta::default(),
        &mut Vec::new(),
    ))
    .unwrap_err();
    assert!(err.is_bad_data(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("schema id 9 is not in the schema registry"),
        "{text}"
    );
    assert!(text.contains("Schema 9 not found"), "{text}");
    // Remembered: the next message with that id does not ask again.
    let _ = block_on(decode_message(
        &mut decoder,
        &wire(9, &datum),
        &MessageMeta::default(),
        &mut Vec::new(),
    ));
    assert_eq!(registry.calls(), ["GET /schemas/ids/9"]);

    // Two 503s, then success: retried with backoff.
    registry.fail_next.store(2, Ordering::SeqCst);
    let mut out = Vec::new();
    block_on(decode_message(
        &mut decoder,
        &wire(1, &datum),
        &MessageMeta::default(),
        &mut out,
    ))
    .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(registry.calls().len(), 4);

    // Not the wire format.
    let err = decode_all(&mut decoder, &datum).unwrap_err().to_string();
    assert!(
        err.contains("not in the Confluent wire format: the first byte is 0x0a"),
        "{err}"
    );
    assert!(
        split_wire_format(&[0, 0, 1])
            .unwrap_err()
            .contains("shorter than the 5-byte header")
    );
}

#[test]
fn registry_down_is_a_retryable_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let client = RegistryClient::new(&config(addr, None, None))
        .unwrap()
        .with_backoff(fast_backoff());
    let mut decoder = AvroDecoder::registry(client);
    let err = block_on(decode_message(
        &mut decoder,
        &wire(1, &[2]),
        &MessageMeta::default(),
        &mut Vec::new(),
    ))
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "schema registry: get schema id 1 from http://{addr}"
        )),
        "{text}"
    );
    assert!(text.contains("gave up after 4 attempts"), "{text}");

    // A registry that keeps failing with 503 is retryable too.
    let (registry, addr, _rt) = start_registry(Registry::default());
    registry.fail_next.store(100, Ordering::SeqCst);
    let client = RegistryClient::new(&config(addr, None, None))
        .unwrap()
        .with_backoff(fast_backoff());
    let err = block_on(client.schema_by_id(1)).unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .contains("status 503, error code 50301: leader not available"),
        "{err}"
    );
}

#[test]
fn encoder_registers_fixed_schema_and_writes_the_wire_format() {
    let (registry, addr, _rt) = start_registry(Registry::default());
    let format = FormatConfig::new(DataFormat::AVRO)
        .with_registry(config(addr, None, None))
        .with_avro_schema(SCHEMA)
        .with_default_subject("orders-value");
    let mut encoder = format.encoder().unwrap();
    let mut decoder = format.decoder().unwrap();
    let datum = sample_datum(3, Some("x"), AvroValue::Union(0, Box::new(AvroValue::Null)));
    let record = AvroDecoder::fixed(Plan::parse(SCHEMA).unwrap()).decode_one(&datum);
    let mut bytes = Vec::new();
    block_on(encode_record(&mut encoder, &record, &mut bytes)).unwrap();
    let (id, body) = split_wire_format(&bytes).unwrap();
    assert_eq!((id, body), (1, &datum[..]));
    let mut second = Vec::new();
    block_on(encode_record(&mut encoder, &record, &mut second)).unwrap();
    assert_eq!(second, bytes);
    let mut out = Vec::new();
    block_on(decode_message(
        &mut decoder,
        &bytes,
        &MessageMeta::default(),
        &mut out,
    ))
    .unwrap();
    assert_eq!(out, vec![record]);
    assert_eq!(
        registry.calls(),
        ["POST /subjects/orders-value/versions", "GET /schemas/ids/1"]
    );
}

#[test]
fn encoder_uses_latest_schema_or_registers_a_derived_one() {
    let (registry, addr, _rt) = start_registry(Registry::default());
    let format = FormatConfig::new(DataFormat::AVRO)
        .with_registry(config(addr, None, None))
        .with_default_subject("events-value");
    let mut encoder = format.encoder().unwrap();
    let mut decoder = format.decoder().unwrap();
    let record = Record::from_pairs([
        ("id", Value::Int64(1)),
        ("name", Value::from("ada")),
        ("at", Value::Timestamp(1_700_000_000_000_001)),
        ("price", Value::Decimal(Decimal::new(1999, 2))),
        ("tags", Value::Array(vec!["x".into()])),
        (
            "user",
            Value::Struct(StructValue::from_pairs([("age", Value::Int64(36))])),
        ),
        ("missing", Value::Null),
    ]);
    let mut bytes = Vec::new();
    block_on(encode_record(&mut encoder, &record, &mut bytes)).unwrap();
    assert_eq!(
        registry.calls(),
        [
            "GET /subjects/events-value/versions/latest",
            "POST /subjects/events-value/versions"
        ]
    );
    let mut out = Vec::new();
    block_on(decode_message(
        &mut decoder,
        &bytes,
        &MessageMeta::default(),
        &mut out,
    ))
    .unwrap();
    let back = &out[0];
    for (name, value) in record.iter() {
        assert_eq!(back.get(name), Some(value), "{name}");
    }
    // A new encoder finds the registered schema as the subject's latest.
    let mut again = format.encoder().unwrap();
    let mut bytes2 = Vec::new();
    block_on(encode_record(&mut again, &record, &mut bytes2)).unwrap();
    assert_eq!(bytes2, bytes);
    assert_eq!(
        registry.calls().last().unwrap(),
        "GET /subjects/events-value/versions/latest"
    );

    let err = FormatConfig::new(DataFormat::AVRO)
        .with_registry(config(addr, None, None))
        .encoder()
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("property `schema_subject`"),
        "{err}"
    );
}

trait DecodeOne {
    fn decode_one(&mut self, payload: &[u8]) -> Record;
}

impl DecodeOne for AvroDecoder {
    fn decode_one(&mut self, payload: &[u8]) -> Record {
        decode_all(self, payload).unwrap().remove(0)
    }
}

const ENVELOPE: &str = r#"{"type": "record", "name": "Envelope", "namespace": "pg.public.users", "fields": [
  {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
    {"name": "id", "type": "int"}, {"name": "email", "type": ["null", "string"], "default": null}]}], "default": null},
  {"name": "after", "type": ["null", "Value"], "default": null},
  {"name": "op", "type": "string"},
  {"name": "ts_ms", "type": ["null", "long"], "default": null}]}"#;

const KEY: &str = r#"{"type": "record", "name": "Key", "namespace": "pg.public.users", "fields": [{"name": "id", "type": "int"}]}"#;

#[test]
fn debezium_avro_upsert_resolves_value_and_key_schemas_from_the_registry() {
    use connector_core::ChangeKind;
    let (registry, addr, _rt) = start_registry(Registry::default());
    {
        let mut schemas = registry.schemas.lock().unwrap();
        schemas.push(("users-value".into(), ENVELOPE.into()));
        schemas.push(("users-key".into(), KEY.into()));
    }
    let format =
        FormatConfig::new(DataFormat::DEBEZIUM_AVRO_UPSERT).with_registry(config(addr, None, None));
    let mut decoder = format.decoder().unwrap();
    let envelope = Plan::parse(ENVELOPE).unwrap();
    let row = |id: i64, email: &str| {
        Value::Struct(StructValue::from_pairs([
            ("id", Value::Int64(id)),
            ("email", Value::from(email)),
        ]))
    };
    let event = Record::from_pairs([
        ("before", Value::Null),
        ("after", row(7, "a@b.c")),
        ("op", Value::from("u")),
        ("ts_ms", Value::Int64(1_000)),
    ]);
    let mut datum = Vec::new();
    envelope
        .write_record(&event.schema, &event.values, &mut datum)
        .unwrap();
    let mut key_datum = Vec::new();
    let key = Record::from_pairs([("id", Value::Int64(7))]);
    Plan::parse(KEY)
        .unwrap()
        .write_record(&key.schema, &key.values, &mut key_datum)
        .unwrap();
    let key_bytes = wire(2, &key_datum);
    let meta = MessageMeta {
        key: Some(&key_bytes),
        ..MessageMeta::default()
    };

    let mut out = Vec::new();
    block_on(decode_message(
        &mut decoder,
        &wire(1, &datum),
        &meta,
        &mut out,
    ))
    .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, ChangeKind::Upsert);
    assert_eq!(out[0].get("email"), Some(&Value::from("a@b.c")));
    assert_eq!(out[0].key.as_deref(), Some(&key_bytes[..]));

    // A tombstone deletes by the Avro key, whose schema is fetched too.
    let mut out = Vec::new();
    block_on(decode_message(&mut decoder, b"", &meta, &mut out)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, ChangeKind::Delete);
    assert_eq!(out[0].schema.names().collect::<Vec<_>>(), ["id"]);
    assert_eq!(out[0].get("id"), Some(&Value::Int64(7)));
    assert_eq!(
        registry.calls(),
        ["GET /schemas/ids/1", "GET /schemas/ids/2"]
    );
}
