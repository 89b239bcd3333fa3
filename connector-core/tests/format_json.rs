//! JSON decoding and encoding: types, shapes, declared schemas, timestamps,
//! malformed input and round trips.

use std::sync::Arc;

use connector_core::format::declared::{Converter, parse_schema};
use connector_core::format::json::{JsonDecoder, JsonEncoder};
use connector_core::format::timestamp::{TimestampField, TimestampFormat};
use connector_core::format::{Decoder, Encoder, MessageMeta, Progress};
use connector_core::{DataType, Decimal, Error, Record, StructValue, Value};

fn decode(decoder: &mut JsonDecoder, payload: &[u8]) -> Result<Vec<Record>, Error> {
    let mut out = Vec::new();
    let progress = decoder.decode(payload, &MessageMeta::default(), &mut out)?;
    assert_eq!(progress, Progress::Done);
    Ok(out)
}

fn decode_err(decoder: &mut JsonDecoder, payload: &[u8]) -> String {
    let mut out = vec![Record::from_pairs([("kept", Value::Int64(1))])];
    let err = decoder
        .decode(payload, &MessageMeta::default(), &mut out)
        .expect_err("payload should not decode");
    assert_eq!(out.len(), 1, "nothing is appended on error");
    assert!(err.is_bad_data());
    err.to_string()
}

#[test]
fn object_keeps_types_and_structure() {
    let mut d = JsonDecoder::new();
    let records = decode(
        &mut d,
        br#"{"i": -3, "u": 7, "f": 2.5, "b": true, "s": "x\ny", "n": null,
             "o": {"a": {"deep": [1, 2]}}, "arr": [1, "two", null, {"k": false}], "e": []}"#,
    )
    .unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.get("i"), Some(&Value::Int64(-3)));
    assert_eq!(r.get("u"), Some(&Value::Int64(7)));
    assert_eq!(r.get("f"), Some(&Value::Float64(2.5)));
    assert_eq!(r.get("b"), Some(&Value::Boolean(true)));
    assert_eq!(r.get("s"), Some(&Value::from("x\ny")));
    assert_eq!(r.get("n"), Some(&Value::Null));
    assert_eq!(
        r.get_path("o.a.deep"),
        Some(&Value::Array(vec![Value::Int64(1), Value::Int64(2)]))
    );
    assert!(matches!(r.get("o"), Some(Value::Struct(_))));
    let arr = r.get("arr").unwrap();
    assert_eq!(arr.get_path("1"), Some(&Value::from("two")));
    assert_eq!(arr.get_path("3.k"), Some(&Value::Boolean(false)));
    assert_eq!(r.get("e"), Some(&Value::Array(vec![])));
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
            "int64",
            "float64",
            "boolean",
            "string",
            "json",
            "struct<a struct<deep array<int64>>>",
            "array<json>",
            "array<json>"
        ]
    );
    // Keys keep document order.
    let names: Vec<&str> = r.schema.names().collect();
    assert_eq!(names, ["i", "u", "f", "b", "s", "n", "o", "arr", "e"]);
}

#[test]
fn array_of_objects_gives_records_sharing_one_schema() {
    let mut d = JsonDecoder::new();
    let payload = br#"[{"id": 1, "user": {"name": "a"}}, {"id": 2, "user": {"name": "b"}}, {"id": 3, "user": {"name": "c"}}]"#;
    let records = decode(&mut d, payload).unwrap();
    assert_eq!(records.len(), 3);
    assert!(Arc::ptr_eq(&records[0].schema, &records[2].schema));
    let s0 = records[0].get("user").and_then(Value::as_struct).unwrap();
    let s2 = records[2].get("user").and_then(Value::as_struct).unwrap();
    assert!(
        Arc::ptr_eq(s0.schema(), s2.schema()),
        "nested schemas are shared too"
    );
    // And across payloads.
    let again = decode(&mut d, br#"{"id": 4, "user": {"name": "d"}}"#).unwrap();
    assert!(Arc::ptr_eq(&records[0].schema, &again[0].schema));
    assert_eq!(decode(&mut d, b"[]").unwrap().len(), 0);
}

#[test]
fn schema_follows_changing_shapes() {
    let mut d = JsonDecoder::new();
    let a = decode(&mut d, br#"{"x": null, "y": 1}"#).unwrap().remove(0);
    assert_eq!(a.schema.field(0).data_type, DataType::Json);
    // A field seen as null is pinned down by its first value.
    let b = decode(&mut d, br#"{"x": "s", "y": 2}"#).unwrap().remove(0);
    assert_eq!(b.schema.field(0).data_type, DataType::String);
    let c = decode(&mut d, br#"{"x": "t", "y": 3}"#).unwrap().remove(0);
    assert!(Arc::ptr_eq(&b.schema, &c.schema));
    // A type change widens to json.
    let e = decode(&mut d, br#"{"x": 5, "y": 4}"#).unwrap().remove(0);
    assert_eq!(e.schema.field(0).data_type, DataType::Json);
    assert_eq!(e.get("x"), Some(&Value::Int64(5)));
    // Other keys, other order.
    let f = decode(&mut d, br#"{"y": 5, "z": true}"#).unwrap().remove(0);
    assert_eq!(f.schema.names().collect::<Vec<_>>(), ["y", "z"]);
    assert_eq!(f.get("z"), Some(&Value::Boolean(true)));
    let g = decode(&mut d, br#"{"y": 6}"#).unwrap().remove(0);
    assert_eq!(g.schema.len(), 1);
    // A repeated key: the last value wins.
    let h = decode(&mut d, br#"{"y": 1, "y": 2}"#).unwrap().remove(0);
    assert_eq!((h.schema.len(), h.get("y")), (1, Some(&Value::Int64(2))));
    let i = decode(&mut d, br#"{"a": 1, "b": 2, "a": 3}"#)
        .unwrap()
        .remove(0);
    assert_eq!(i.schema.names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(i.get("a"), Some(&Value::Int64(3)));
}

#[test]
fn numbers_and_escapes() {
    let mut d = JsonDecoder::new();
    let r = decode(
        &mut d,
        br#"{"big": 18446744073709551615, "min": -9223372036854775808, "exp": 1e3, "esc\"key": "\u00e9\ud83d\ude00"}"#,
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        r.get("big"),
        Some(&Value::Decimal(Decimal::new(18_446_744_073_709_551_615, 0)))
    );
    assert_eq!(r.get("min"), Some(&Value::Int64(i64::MIN)));
    assert_eq!(r.get("exp"), Some(&Value::Float64(1000.0)));
    assert_eq!(r.get("esc\"key"), Some(&Value::from("é😀")));
}

#[test]
fn malformed_input_names_format_position_and_reason() {
    let mut d = JsonDecoder::new();
    let cases: &[(&[u8], &str)] = &[
        (
            b"42",
            "cannot decode json at line 1 column 2: invalid type: integer `42`, expected a JSON object or an array of objects",
        ),
        (b"\"text\"", "expected a JSON object or an array of objects"),
        (
            b"",
            "line 1 column 0: truncated input: EOF while parsing a value",
        ),
        (b"   ", "truncated input"),
        (
            br#"{"a": 1"#,
            "line 1 column 7: truncated input: EOF while parsing an object",
        ),
        (
            br#"{"a": [1, 2"#,
            "truncated input: EOF while parsing a list",
        ),
        (
            br#"{"a": 1} {"b": 2}"#,
            "line 1 column 10: trailing characters",
        ),
        (
            br#"[{"a": 1}, {"a": 2}, 3]"#,
            "array index 2 (line 1 column 22): invalid type: integer `3`, expected a JSON object",
        ),
        (
            br#"[{"a": 1}, {"a": tru}]"#,
            "array index 1 (line 1 column 21): expected ident",
        ),
        (b"{\"a\": \"\xff\xfe\"}", "invalid UTF-8 at byte 7"),
        (b"\n\n{\"a\" 1}", "line 3 column 6: expected `:`"),
        (br#"{"a": NaN}"#, "expected value"),
        (br#"{1: 2}"#, "key must be a string"),
    ];
    for (payload, want) in cases {
        let err = decode_err(&mut d, payload);
        assert!(
            err.contains(want),
            "{:?}: {err}",
            String::from_utf8_lossy(payload)
        );
    }
    // The decoder still works after errors.
    assert_eq!(decode(&mut d, br#"{"a": 1}"#).unwrap().len(), 1);
}

#[test]
fn every_truncation_and_corruption_is_an_error_not_a_panic() {
    let payload = br#"[{"id": 1, "name": "ada \u00e9", "tags": ["x", {"y": [1.5e3, null, false]}], "o": {"p": {"q": -0}}}, {"id": 2}]"#;
    let mut d = JsonDecoder::new();
    assert_eq!(decode(&mut d, payload).unwrap().len(), 2);
    for end in 0..payload.len() {
        assert!(
            decode(&mut d, &payload[..end]).is_err(),
            "prefix of {end} bytes decoded"
        );
    }
    for i in 0..payload.len() {
        for byte in [b'{', b'}', b'"', b'\\', 0xff, b',', b']'] {
            let mut bad = payload.to_vec();
            bad[i] = byte;
            let _ = decode(&mut d, &bad);
        }
    }
    let deep = format!("[{}", r#"{"a":"#.repeat(100_000));
    let err = decode_err(&mut d, deep.as_bytes());
    assert!(err.contains("recursion limit exceeded"), "{err}");
    let deep_arrays = format!("{{\"a\": {}", "[".repeat(100_000));
    let err = decode_err(&mut d, deep_arrays.as_bytes());
    assert!(err.contains("recursion limit exceeded"), "{err}");
}

fn declared(schema: &str, strict: bool) -> JsonDecoder {
    JsonDecoder::new().with_schema(
        Arc::new(parse_schema(&schema.into()).unwrap()),
        Converter {
            strict,
            ..Converter::default()
        },
    )
}

#[test]
fn declared_schema_converts_and_drops_undeclared_keys() {
    let mut d = declared(
        "id bigint, price float, name string, ok boolean, at datetime, raw bytea, tags array<bigint>, user struct<id bigint, name string>, any struct",
        false,
    );
    let r = decode(
        &mut d,
        br#"{"id": "12", "price": 3, "name": 42, "ok": "1", "at": 1500, "raw": "aGk=",
             "tags": [1, "2"], "user": "{\"id\": 7, \"name\": \"ada\", \"extra\": 1}",
             "any": {"free": [1]}, "undeclared": {"big": [1, 2, 3]}}"#,
    )
    .unwrap()
    .remove(0);
    assert_eq!(r.schema.len(), 9);
    assert_eq!(r.get("undeclared"), None);
    assert_eq!(r.get("id"), Some(&Value::Int64(12)));
    assert_eq!(r.get("price"), Some(&Value::Float64(3.0)));
    assert_eq!(r.get("name"), Some(&Value::from("42")));
    assert_eq!(r.get("ok"), Some(&Value::Boolean(true)));
    assert_eq!(r.get("at"), Some(&Value::Timestamp(1_500_000)));
    assert_eq!(r.get("raw"), Some(&Value::Bytes(b"hi".to_vec())));
    assert_eq!(
        r.get("tags"),
        Some(&Value::Array(vec![Value::Int64(1), Value::Int64(2)]))
    );
    let user = r.get("user").and_then(Value::as_struct).unwrap();
    assert_eq!(user.schema().names().collect::<Vec<_>>(), ["id", "name"]);
    assert_eq!(user.get("id"), Some(&Value::Int64(7)));
    assert_eq!(r.get_path("any.free.0"), Some(&Value::Int64(1)));
    // Missing fields are null when lenient.
    let sparse = decode(&mut d, br#"{"id": 1}"#).unwrap().remove(0);
    assert_eq!(sparse.get("name"), Some(&Value::Null));
    assert!(Arc::ptr_eq(&r.schema, &sparse.schema));
}

#[test]
fn declared_schema_errors_name_the_field() {
    let mut d = declared(
        "id bigint, name string, tags array<string>, user struct<id bigint>",
        true,
    );
    let cases: &[(&[u8], &str)] = &[
        (
            br#"{"id": 12.5, "name": "a", "tags": [], "user": {"id": 1}}"#,
            "field `id`: expected a bigint but got a number (12.5)",
        ),
        (
            br#"{"id": 1, "name": {"x": 1}, "tags": [], "user": {"id": 1}}"#,
            "field `name`: expected a string but got an object",
        ),
        (
            br#"{"id": 1, "name": "a", "tags": "x", "user": {"id": 1}}"#,
            "field `tags`: expected an array but got a string",
        ),
        (
            br#"{"id": 1, "name": [1], "tags": [], "user": {"id": 1}}"#,
            "field `name`: expected a string but got an array",
        ),
        (
            br#"{"id": 1, "name": "a", "tags": [], "user": {"id": "x"}}"#,
            "field `user.id`: expected a bigint but got the string `x`",
        ),
        (
            br#"{"id": 1, "name": "a", "tags": []}"#,
            "field `user` is missing (strict validation)",
        ),
        (
            br#"{"id": 1, "name": "a", "tags": [], "user": {}}"#,
            "field `user.id` is missing (strict validation)",
        ),
        (
            br#"[{"id": 1, "name": "a", "tags": [], "user": {"id": 1}}, {"id": true}]"#,
            "array index 1 (line 1 column 68): field `id`: expected a bigint but got a boolean",
        ),
    ];
    for (payload, want) in cases {
        let err = decode_err(&mut d, payload);
        assert!(
            err.contains(want),
            "{}: {err}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn timestamp_field_sets_event_time() {
    let micros = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    };
    let mut ms = JsonDecoder::new().with_timestamp(TimestampField::new("ts", "").unwrap());
    let r = decode(&mut ms, br#"{"ts": 1700000000123, "v": 1}"#)
        .unwrap()
        .remove(0);
    assert_eq!(r.timestamp, Some(1_700_000_000_123_000));
    let r = decode(&mut ms, br#"{"ts": "2024-01-02T03:04:05.5+01:00"}"#)
        .unwrap()
        .remove(0);
    assert_eq!(r.timestamp, Some(micros("2024-01-02T02:04:05.5Z")));
    let r = decode(&mut ms, br#"{"v": 1}"#).unwrap().remove(0);
    assert_eq!(r.timestamp, None);
    assert!(
        decode_err(&mut ms, br#"{"ts": "soon"}"#)
            .contains("timestamp field `ts`: `soon` is not an RFC 3339 timestamp")
    );
    assert!(
        decode_err(&mut ms, br#"{"ts": [1]}"#)
            .contains("timestamp field `ts` holds array<int64>, not a time")
    );

    let mut pattern = JsonDecoder::new()
        .with_timestamp(TimestampField::new("meta.at", "yyyy-MM-dd HH:mm:ss.SSS").unwrap());
    let r = decode(
        &mut pattern,
        br#"[{"meta": {"at": "2024-01-02 03:04:05.678"}}]"#,
    )
    .unwrap()
    .remove(0);
    assert_eq!(r.timestamp, Some(micros("2024-01-02T03:04:05.678Z")));
    let err = decode_err(&mut pattern, br#"[{"meta": {"at": "2024-01-02"}}]"#);
    assert!(
        err.contains("array index 0")
            && err.contains("does not match timestamp format `yyyy-MM-dd HH:mm:ss.SSS`"),
        "{err}"
    );

    // With a declared datetime field, the field's value and the event time agree.
    let format: TimestampFormat = "dd/MM/yyyy HH:mm".parse().unwrap();
    let mut d = JsonDecoder::new()
        .with_schema(
            Arc::new(parse_schema(&"at datetime, v bigint".into()).unwrap()),
            Converter {
                timestamps: format.clone(),
                ..Converter::default()
            },
        )
        .with_timestamp(TimestampField {
            field: "at".into(),
            format,
        });
    let r = decode(&mut d, br#"{"at": "02/01/2024 03:04", "v": 1}"#)
        .unwrap()
        .remove(0);
    assert_eq!(
        r.get("at"),
        Some(&Value::Timestamp(micros("2024-01-02T03:04:00Z")))
    );
    assert_eq!(r.timestamp, Some(micros("2024-01-02T03:04:00Z")));
}

#[test]
fn round_trip_encode_decode() {
    let nested = StructValue::from_pairs([
        ("name", Value::from("ada")),
        (
            "scores",
            Value::Array(vec![Value::Float64(1.5), Value::Float64(-2.25)]),
        ),
    ]);
    let record = Record::from_pairs([
        ("id", Value::Int64(42)),
        ("neg", Value::Int64(i64::MIN)),
        ("price", Value::Float64(9.75)),
        ("ok", Value::Boolean(false)),
        (
            "note",
            Value::from("quote \" backslash \\ newline \n unicode é"),
        ),
        ("missing", Value::Null),
        ("user", Value::Struct(nested)),
        (
            "tags",
            Value::Array(vec![Value::from("a"), Value::from("b")]),
        ),
    ]);
    let mut encoder = JsonEncoder::new();
    let mut bytes = Vec::new();
    let _ = encoder.encode(&record, &mut bytes).unwrap();
    let mut d = JsonDecoder::new();
    let back = decode(&mut d, &bytes).unwrap();
    assert_eq!(back, vec![record.clone()]);
    // Twice through the same decoder: same result, shared schema.
    let again = decode(&mut d, &bytes).unwrap();
    assert_eq!(again, vec![record]);
    assert!(Arc::ptr_eq(&back[0].schema, &again[0].schema));
    assert_eq!(encoder.content_type(), "application/json");

    // Floats parse exactly (found by fuzzing: without exact parsing the
    // last digit of this one changed on the way back).
    for f in [
        1.700_044_444_444_444_5e84,
        5e-324,
        f64::MAX,
        -0.1,
        2.225_073_858_507_201e-308,
    ] {
        let r = Record::from_pairs([("f", Value::Float64(f))]);
        let mut bytes = Vec::new();
        let _ = encoder.encode(&r, &mut bytes).unwrap();
        assert_eq!(
            decode(&mut JsonDecoder::new(), &bytes).unwrap(),
            vec![r],
            "{f:e}"
        );
    }
}
