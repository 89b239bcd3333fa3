//! Delimited (CSV) decoding and encoding: RFC 4180 quoting, names, declared
//! types, malformed input and round trips.

use std::sync::Arc;

use connector_core::format::declared::{Converter, parse_schema};
use connector_core::format::delimited::{DelimitedDecoder, DelimitedEncoder, parse_delimiter};
use connector_core::format::timestamp::TimestampField;
use connector_core::format::{Decoder, Encoder, MessageMeta};
use connector_core::{Error, Record, Value};

fn decode(decoder: &mut DelimitedDecoder, payload: &[u8]) -> Result<Vec<Record>, Error> {
    let mut out = Vec::new();
    let _ = decoder.decode(payload, &MessageMeta::default(), &mut out)?;
    Ok(out)
}

fn strings(record: &Record) -> Vec<(String, String)> {
    record
        .iter()
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.as_str().unwrap_or("<not a string>").to_owned(),
            )
        })
        .collect()
}

#[test]
fn rfc4180_quoting_with_embedded_delimiters_newlines_and_quotes() {
    let payload =
        b"1,\"Smith, John\",\"He said \"\"hi\"\"\",\"line one\r\nline two\"\r\n2,plain,,\"\"\n";
    let mut d = DelimitedDecoder::new(b',');
    let records = decode(&mut d, payload).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        strings(&records[0]),
        [
            ("col0".into(), "1".into()),
            ("col1".into(), "Smith, John".into()),
            ("col2".into(), "He said \"hi\"".into()),
            ("col3".into(), "line one\r\nline two".into()),
        ]
    );
    assert_eq!(
        records[1].values,
        vec![
            Value::from("2"),
            Value::from("plain"),
            Value::from(""),
            Value::from("")
        ]
    );
    assert!(Arc::ptr_eq(&records[0].schema, &records[1].schema));
}

#[test]
fn fields_name_columns_and_blank_lines_are_skipped() {
    let mut d = DelimitedDecoder::new(b'\t').with_fields(["device", "temp", "note"]);
    let records = decode(&mut d, b"dev1\t21.5\tok\n\n\r\ndev2\t19\n").unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].get("temp"), Some(&Value::from("21.5")));
    // Fewer values than names: the rest are null.
    assert_eq!(records[1].get("note"), Some(&Value::Null));
    let err = decode(&mut d, b"a\tb\tc\n1\t2\t3\t4\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "cannot decode delimited at line 2: line 2 has 4 values but 3 columns are named"
        ),
        "{err}"
    );
}

#[test]
fn declared_schema_converts_columns() {
    let schema = Arc::new(
        parse_schema(&"id bigint, price float, ok boolean, at datetime, name string".into())
            .unwrap(),
    );
    let mut d = DelimitedDecoder::new(b';')
        .with_schema(schema.clone(), Converter::default())
        .with_timestamp(TimestampField::new("at", "yyyy-MM-dd HH:mm:ss").unwrap());
    let r = decode(&mut d, b"7;2.5;true;1970-01-01 00:00:02;\"a;b\"")
        .unwrap()
        .remove(0);
    // Without a declared format, datetime text is RFC 3339 (lenient); the
    // timestamp field has its own format.
    assert_eq!(r.get("id"), Some(&Value::Int64(7)));
    assert_eq!(r.get("price"), Some(&Value::Float64(2.5)));
    assert_eq!(r.get("ok"), Some(&Value::Boolean(true)));
    assert_eq!(r.get("at"), Some(&Value::Timestamp(2_000_000)));
    assert_eq!(r.get("name"), Some(&Value::from("a;b")));
    assert_eq!(r.timestamp, Some(2_000_000));
    // Empty non-string fields are null; empty strings stay strings.
    let r = decode(&mut d, b"8;;;;").unwrap().remove(0);
    assert_eq!(
        r.values,
        vec![
            Value::Int64(8),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::from("")
        ]
    );
    let err = decode(
        &mut d,
        b"1;1.0;true;1970-01-01 00:00:00;x\n2.5;1;true;1970-01-01 00:00:00;y",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("at line 2: field `id`: expected a bigint but got the string `2.5`"),
        "{err}"
    );

    // Named columns matched to declared fields by name; undeclared ones dropped.
    let mut named = DelimitedDecoder::new(b',')
        .with_fields(["name", "junk", "id"])
        .with_schema(
            schema,
            Converter {
                strict: true,
                ..Converter::default()
            },
        );
    let err = decode(&mut named, b"ada,x,3").unwrap_err().to_string();
    assert!(
        err.contains("field `price` is missing (strict validation)"),
        "{err}"
    );
}

#[test]
fn malformed_input() {
    let mut d = DelimitedDecoder::new(b',');
    let mut out = vec![Record::from_pairs([("kept", Value::Int64(1))])];
    let err = d
        .decode(
            b"ok,fine\nbad,\xff\xfe\n",
            &MessageMeta::default(),
            &mut out,
        )
        .unwrap_err();
    assert_eq!(out.len(), 1, "nothing appended on error");
    assert_eq!(
        err.to_string(),
        ": cannot decode delimited at line 2: field 2 is not valid UTF-8 (at byte 0 of the field)"
    );
    for bad in ["", "ab", "\"", "\n"] {
        assert!(parse_delimiter(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
    assert_eq!(parse_delimiter("|"), Ok(b'|'));
    // Unbalanced quotes never panic; the csv reader takes the rest as the field.
    let r = decode(&mut d, b"a,\"open").unwrap();
    assert_eq!(r[0].get("col1"), Some(&Value::from("open")));
}

#[test]
fn encoder_quotes_where_needed_and_round_trips() {
    let record = Record::from_pairs([
        ("id", Value::from("1")),
        ("name", Value::from("Smith, John")),
        ("quote", Value::from("say \"hi\"")),
        ("lines", Value::from("one\ntwo")),
        ("plain", Value::from("x")),
        ("empty", Value::from("")),
    ]);
    let mut e = DelimitedEncoder::new(b',');
    let mut line = Vec::new();
    let _ = e.encode(&record, &mut line).unwrap();
    assert_eq!(
        String::from_utf8(line.clone()).unwrap(),
        "1,\"Smith, John\",\"say \"\"hi\"\"\",\"one\ntwo\",x,"
    );
    let mut d =
        DelimitedDecoder::new(b',').with_fields(["id", "name", "quote", "lines", "plain", "empty"]);
    assert_eq!(decode(&mut d, &line).unwrap(), vec![record.clone()]);

    // Several records joined by newlines decode back in order.
    let mut body = Vec::new();
    for terminator in [&b"\n"[..], b"\r\n", b""] {
        let _ = e.encode(&record, &mut body).unwrap();
        body.extend_from_slice(terminator);
    }
    assert_eq!(
        decode(&mut d, &body).unwrap(),
        vec![record.clone(), record.clone(), record]
    );

    // A single empty field is quoted so it does not read back as a blank line.
    let one = Record::from_pairs([("only", Value::from(""))]);
    let mut out = Vec::new();
    let _ = e.encode(&one, &mut out).unwrap();
    assert_eq!(out, b"\"\"");
    let mut d1 = DelimitedDecoder::new(b',').with_fields(["only"]);
    assert_eq!(decode(&mut d1, &out).unwrap(), vec![one]);
}

#[test]
fn encoder_writes_typed_values_and_selected_fields() {
    let record = Record::from_pairs([
        ("n", Value::Int64(-3)),
        ("f", Value::Float64(1.5)),
        ("b", Value::Boolean(true)),
        ("t", Value::Timestamp(1_500_000)),
        ("bytes", Value::Bytes(b"hi".to_vec())),
        ("null", Value::Null),
        ("tab", Value::from("a\tb")),
    ]);
    let mut out = Vec::new();
    let _ = DelimitedEncoder::new(b'\t')
        .encode(&record, &mut out)
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "-3\t1.5\ttrue\t1970-01-01T00:00:01.500Z\taGk=\t\t\"a\tb\""
    );
    let mut out = Vec::new();
    let _ = DelimitedEncoder::new(b',')
        .with_fields(["b", "missing", "n"])
        .encode(&record, &mut out)
        .unwrap();
    assert_eq!(out, b"true,,-3");
}
