//! `text` and `binary`: decoding, encoding, templates, malformed input and
//! round trips.

use connector_core::format::binary::{BinaryDecoder, BinaryEncoder};
use connector_core::format::template::Template;
use connector_core::format::text::{TextDecoder, TextEncoder};
use connector_core::format::{Decoder, Encoder, MessageMeta};
use connector_core::{DataType, Position, Record, Value};

fn decode(decoder: &mut dyn Decoder, payload: &[u8]) -> connector_core::Result<Vec<Record>> {
    let mut out = Vec::new();
    let _ = decoder.decode(payload, &MessageMeta::default(), &mut out)?;
    Ok(out)
}

#[test]
fn text_round_trip_and_invalid_utf8() {
    let mut d = TextDecoder::new();
    let mut e = TextEncoder::new();
    for text in [
        "",
        "hello",
        "multi\nline\r\n",
        "ünïcødé 😀",
        "{\"json\": \"stays text\"}",
    ] {
        let records = decode(&mut d, text.as_bytes()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].get("raw"), Some(&Value::from(text)));
        assert_eq!(records[0].schema.field(0).data_type, DataType::String);
        let mut out = Vec::new();
        let _ = e.encode(&records[0], &mut out).unwrap();
        assert_eq!(out, text.as_bytes());
        assert_eq!(decode(&mut d, &out).unwrap(), records);
    }
    let err = decode(&mut d, b"ok so far \xc3\x28").unwrap_err();
    assert_eq!(
        err.to_string(),
        ": cannot decode text at byte 10: invalid UTF-8"
    );
    assert!(err.is_bad_data());
}

#[test]
fn text_encoder_template_and_errors() {
    let record = Record::from_pairs([
        ("device", Value::from("d1")),
        ("temp", Value::Float64(21.5)),
    ])
    .with_position(Position::Sequence(4));
    let mut e = TextEncoder::new()
        .with_template(Template::parse("{{ .device }}={{.temp}} {{ .nope }}").unwrap());
    let mut out = Vec::new();
    let _ = e.encode(&record, &mut out).unwrap();
    assert_eq!(out, b"d1=21.5 <no value>");
    assert_eq!(e.content_type(), "text/plain; charset=utf-8");

    let err = TextEncoder::new()
        .encode(&record, &mut out)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        ": cannot encode record record #4 as text: the record has no `raw` column (columns: device, temp); set `text_template` to render records as text"
    );
    let named = TextEncoder::new()
        .with_column("device")
        .encode(&record, &mut Vec::new());
    assert!(named.is_ok());
    let null = Record::from_pairs([("raw", Value::Null)]);
    assert!(
        TextEncoder::new()
            .encode(&null, &mut Vec::new())
            .unwrap_err()
            .to_string()
            .contains("column `raw` is null")
    );
    let mut custom = TextDecoder::with_column("line");
    assert_eq!(
        decode(&mut custom, b"x").unwrap()[0].get("line"),
        Some(&Value::from("x"))
    );
}

#[test]
fn binary_round_trip_any_bytes() {
    let mut d = BinaryDecoder::new();
    let mut e = BinaryEncoder::new();
    let all: Vec<u8> = (0..=255).collect();
    for payload in [&b""[..], b"\x00\xff\xfe", &all] {
        let records = decode(&mut d, payload).unwrap();
        assert_eq!(
            records[0].get("self"),
            Some(&Value::Bytes(payload.to_vec()))
        );
        let mut out = Vec::new();
        let _ = e.encode(&records[0], &mut out).unwrap();
        assert_eq!(out, payload);
        assert_eq!(decode(&mut d, &out).unwrap(), records);
    }
    let mut named = BinaryDecoder::with_column("blob");
    let r = decode(&mut named, b"\x01").unwrap().remove(0);
    assert_eq!(r.get("blob"), Some(&Value::Bytes(vec![1])));
    // The encoder finds the only bytes column when there is no `self`.
    let mut out = Vec::new();
    let _ = e.encode(&r, &mut out).unwrap();
    assert_eq!(out, [1]);
}

#[test]
fn binary_encoder_errors() {
    let mut e = BinaryEncoder::new();
    let two = Record::from_pairs([("a", Value::Bytes(vec![1])), ("b", Value::Bytes(vec![2]))]);
    let err = e.encode(&two, &mut Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("no `self` column and not exactly one bytes column (columns: a, b)"),
        "{err}"
    );
    let int = Record::from_pairs([("self", Value::Int64(1))]);
    assert!(
        e.encode(&int, &mut Vec::new())
            .unwrap_err()
            .to_string()
            .contains("column `self` holds int64, not bytes")
    );
    let text = Record::from_pairs([("only", Value::from("abc"))]);
    let mut out = Vec::new();
    let _ = e.encode(&text, &mut out).unwrap();
    assert_eq!(out, b"abc");
}
