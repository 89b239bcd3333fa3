//! Arrow conversion at the edges: values that do not fit name their row,
//! column and reason; bad records can be set aside; Arrow types from other
//! producers (narrow integers, views, dictionaries, other timestamp units
//! and zones, 256-bit decimals, large and fixed-size lists) read back.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryViewArray, Date64Array, Decimal256Array, DictionaryArray,
    DurationMillisecondArray, FixedSizeBinaryArray, Float32Array, Int8Array, Int16Array,
    LargeListArray, LargeStringArray, RecordBatch, StringArray, StringViewArray,
    Time64MicrosecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt32Array,
    UInt64Array, UnionArray,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{
    DataType as ArrowType, Field as ArrowField, Int32Type, Int64Type, UnionFields, i256,
};
use connector_core::arrow::{ArrowOptions, FromArrow, ToArrow};
use connector_core::{
    Batch, ChangeKind, DataType, Decimal, Field, Position, Record, Schema, StructValue, Value,
};

fn schema(fields: Vec<Field>) -> Arc<Schema> {
    Arc::new(Schema::new(fields))
}

fn convert_err(schema: &Arc<Schema>, records: &[Record]) -> String {
    let err = ToArrow::new(schema.clone(), ArrowOptions::default())
        .unwrap()
        .convert(records)
        .unwrap_err();
    assert!(err.is_bad_data(), "{err}");
    err.to_string()
}

#[test]
fn a_wrong_type_names_row_position_column_and_value() {
    let s = schema(vec![Field::required("id", DataType::Int64)]);
    let records: Vec<Record> = [Value::Int64(1), Value::Int64(2), Value::from("x")]
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            Record::new(s.clone(), vec![v]).with_position(Position::Offset {
                topic: "events".into(),
                partition: 0,
                offset: 7 + i as i64,
            })
        })
        .collect();
    assert_eq!(
        convert_err(&s, &records),
        "arrow conversion: cannot encode record at row 2 (topic events partition 0 offset 9) as arrow: \
         column `id`: expected int64, found string \"x\""
    );
}

#[test]
fn nested_problems_name_the_path() {
    let user = schema(vec![Field::required("id", DataType::Int64)]);
    let s = schema(vec![
        Field::new(
            "payload",
            DataType::Struct(schema(vec![Field::new(
                "user",
                DataType::Struct(user.clone()),
            )])),
        ),
        Field::new("tags", DataType::Array(Box::new(DataType::String))),
        Field::new(
            "attrs",
            DataType::Map(Box::new(DataType::String), Box::new(DataType::Int64)),
        ),
        Field::new(
            "price",
            DataType::Decimal {
                precision: 5,
                scale: 2,
            },
        ),
    ]);
    let payload = |id: Value| {
        Value::Struct(StructValue::from_pairs([(
            "user",
            Value::Struct(StructValue::new(user.clone(), vec![id])),
        )]))
    };
    let record = |values: Vec<Value>| Record::new(s.clone(), values);
    let ok = || {
        vec![
            payload(Value::Int64(1)),
            Value::Null,
            Value::Null,
            Value::Null,
        ]
    };

    let mut v = ok();
    v[0] = payload(Value::Null);
    assert!(convert_err(&s, &[record(ok()), record(v)]).ends_with(
        "at row 1 as arrow: column `payload.user.id`: null in a field that is not nullable"
    ));

    let mut v = ok();
    v[1] = Value::Array(vec!["a".into(), Value::Int64(5)]);
    assert!(
        convert_err(&s, &[record(v)]).ends_with("column `tags[1]`: expected string, found int64 5")
    );

    let mut v = ok();
    v[2] = Value::Map(vec![
        ("a".into(), Value::Int64(1)),
        (Value::Null, Value::Int64(2)),
    ]);
    assert!(
        convert_err(&s, &[record(v)])
            .ends_with("column `attrs[1].key`: null map key (Arrow map keys cannot be null)")
    );

    let mut v = ok();
    v[2] = Value::Map(vec![("a".into(), Value::from("one"))]);
    assert!(
        convert_err(&s, &[record(v)])
            .ends_with("column `attrs[0].value`: expected int64, found string \"one\"")
    );

    for too_big in [Decimal::new(100_000, 2), Decimal::new(1, 3)] {
        let mut v = ok();
        v[3] = Value::Decimal(too_big);
        let text = convert_err(&s, &[record(v)]);
        assert!(
            text.contains(&format!(
                "column `price`: {too_big} does not fit decimal(5, 2)"
            )),
            "{text}"
        );
    }
    let mut v = ok();
    v[3] = Value::Decimal(Decimal::new(-99_999, 2));
    ToArrow::new(s.clone(), ArrowOptions::default())
        .unwrap()
        .convert(&[record(v)])
        .unwrap();
}

#[test]
fn changelogs_need_the_change_kind_column() {
    let s = schema(vec![Field::new("n", DataType::Int64)]);
    let records = vec![
        Record::new(s.clone(), vec![Value::Int64(1)]),
        Record::new(s.clone(), vec![Value::Int64(1)]).with_kind(ChangeKind::Delete),
    ];
    let err = ToArrow::new(s.clone(), ArrowOptions::values_only())
        .unwrap()
        .convert(&records)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at row 1"), "{err}");
    assert!(
        err.contains("change kind is `delete`, but the conversion has no change-kind column"),
        "{err}"
    );

    let clash = schema(vec![Field::new("_change_kind", DataType::String)]);
    let err = ToArrow::new(clash, ArrowOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the record field `_change_kind` has the name of a metadata column"),
        "{err}"
    );
}

#[test]
fn bad_records_can_be_set_aside() {
    let s = schema(vec![Field::required("n", DataType::Int64)]);
    let mut records: Vec<Record> = (0..6)
        .map(|i| {
            let v = if i % 3 == 1 {
                Value::from("bad")
            } else {
                Value::Int64(i)
            };
            Record::new(s.clone(), vec![v]).with_position(Position::Sequence(i as u64))
        })
        .collect();
    let to_arrow = ToArrow::new(s, ArrowOptions::default())
        .unwrap()
        .with_component("test source");
    let (rb, bad) = to_arrow.convert_skipping_bad(&mut records).unwrap();
    assert_eq!(rb.num_rows(), 4);
    assert_eq!(records.len(), 4);
    let ns = rb
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!(ns.values().to_vec(), vec![0, 2, 3, 5]);
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].position, Some(Position::Sequence(1)));
    assert_eq!(bad[1].position, Some(Position::Sequence(4)));
    assert!(
        bad[1]
            .error
            .to_string()
            .starts_with("test source: cannot encode record at row 3 (record #4)"),
        "{}",
        bad[1].error
    );
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn arrow_types_of_other_producers_read_back() {
    let item = Arc::new(ArrowField::new("item", ArrowType::Int16, true));
    let large_list = LargeListArray::try_new(
        item,
        arrow::buffer::OffsetBuffer::new(ScalarBuffer::from(vec![0i64, 2, 2])),
        Arc::new(Int16Array::from(vec![Some(1), None])),
        Some(vec![true, false].into()),
    )
    .unwrap();
    let rb = batch(vec![
        ("i8", Arc::new(Int8Array::from(vec![-8, 8]))),
        ("u32", Arc::new(UInt32Array::from(vec![u32::MAX, 0]))),
        ("f32", Arc::new(Float32Array::from(vec![1.5, -0.25]))),
        ("large", Arc::new(LargeStringArray::from(vec!["a", "b"]))),
        (
            "view",
            Arc::new(StringViewArray::from(vec![
                Some("a string longer than twelve bytes"),
                None,
            ])),
        ),
        (
            "bview",
            Arc::new(BinaryViewArray::from(vec![&b"x"[..], &b""[..]])),
        ),
        (
            "dict",
            Arc::new(DictionaryArray::<Int32Type>::from_iter([
                Some("red"),
                Some("red"),
            ])) as ArrayRef,
        ),
        (
            "ny",
            Arc::new(
                TimestampNanosecondArray::from(vec![1_700_000_000_123_456_789, -1])
                    .with_timezone("America/New_York"),
            ),
        ),
        (
            "naive_s",
            Arc::new(TimestampSecondArray::from(vec![86_400, -1])),
        ),
        ("d64", Arc::new(Date64Array::from(vec![86_400_000 * 3, 0]))),
        (
            "d256",
            Arc::new(
                Decimal256Array::from(vec![i256::from_i128(-12_345), i256::from_i128(7)])
                    .with_precision_and_scale(50, 2)
                    .unwrap(),
            ),
        ),
        (
            "fixed",
            Arc::new(FixedSizeBinaryArray::try_from_iter([[1u8, 2], [3, 4]].into_iter()).unwrap()),
        ),
        ("ll", Arc::new(large_list)),
        (
            "dur",
            Arc::new(DurationMillisecondArray::from(vec![1_500, -2])),
        ),
        (
            "tod",
            Arc::new(Time64MicrosecondArray::from(vec![3_600_000_000 + 1, 0])),
        ),
    ]);
    let records = FromArrow::new(ArrowOptions::default())
        .convert(&rb)
        .unwrap();
    let s = &records[0].schema;
    assert_eq!(
        s.to_string(),
        "(i8 int64 not null, u32 int64 not null, f32 float64 not null, large string not null, view string, \
         bview bytes not null, dict string not null, ny timestamp not null, naive_s timestamp not null, \
         d64 date not null, d256 decimal(38, 2) not null, fixed bytes not null, ll array<int64>, \
         dur int64 not null, tod string not null)"
    );
    let row0: Vec<Value> = records[0].values.clone();
    assert_eq!(
        row0,
        vec![
            Value::Int64(-8),
            Value::Int64(i64::from(u32::MAX)),
            Value::Float64(1.5),
            Value::from("a"),
            Value::from("a string longer than twelve bytes"),
            Value::Bytes(b"x".to_vec()),
            Value::from("red"),
            Value::Timestamp(1_700_000_000_123_456),
            Value::Timestamp(86_400_000_000),
            Value::Date(3),
            Value::Decimal(Decimal::new(-12_345, 2)),
            Value::Bytes(vec![1, 2]),
            Value::Array(vec![Value::Int64(1), Value::Null]),
            Value::Int64(1_500_000),
            Value::from("01:00:00.000001"),
        ]
    );
    assert_eq!(records[1].get("view"), Some(&Value::Null));
    assert_eq!(records[1].get("ll"), Some(&Value::Null));
    assert_eq!(
        records[1].get("naive_s"),
        Some(&Value::Timestamp(-1_000_000))
    );
    // Nanoseconds are truncated to microseconds.
    assert_eq!(records[1].get("ny"), Some(&Value::Timestamp(0)));
}

#[test]
fn arrow_values_without_a_record_counterpart_are_errors() {
    let rb = batch(vec![
        ("ok", Arc::new(UInt64Array::from(vec![1, 2, 3])) as ArrayRef),
        ("big", Arc::new(UInt64Array::from(vec![1, u64::MAX, 3]))),
    ]);
    let err = FromArrow::new(ArrowOptions::default())
        .convert(&rb)
        .unwrap_err();
    assert!(err.is_bad_data());
    let text = err.to_string();
    assert!(
        text.starts_with("arrow conversion: cannot decode arrow at row 1: column `big`: "),
        "{text}"
    );

    let union = UnionArray::try_new(
        UnionFields::try_new(vec![0], vec![ArrowField::new("a", ArrowType::Int32, true)]).unwrap(),
        ScalarBuffer::from(vec![0i8]),
        None,
        vec![Arc::new(arrow::array::Int32Array::from(vec![1]))],
    )
    .unwrap();
    let err = FromArrow::new(ArrowOptions::default())
        .convert(&batch(vec![("u", Arc::new(union) as ArrayRef)]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("column `u`: arrow type Union"), "{err}");
    assert!(
        err.contains("has no counterpart in the record model"),
        "{err}"
    );

    let json = schema(vec![Field::new("payload", DataType::Json)]);
    let rb = batch(vec![(
        "payload",
        Arc::new(StringArray::from(vec![r#"{"a":1}"#, "{oops"])) as ArrayRef,
    )]);
    let err = FromArrow::with_schema(json, ArrowOptions::default())
        .convert(&rb)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "arrow conversion: cannot decode arrow at row 1: column `payload`: not valid JSON text"
        ),
        "{err}"
    );

    let rb = batch(vec![
        (
            "n",
            Arc::new(arrow::array::Int64Array::from(vec![1, 2])) as ArrayRef,
        ),
        (
            "_change_kind",
            Arc::new(StringArray::from(vec![Some("delete"), Some("remove")])),
        ),
    ]);
    let err = Batch::from_record_batch(&rb).unwrap_err().to_string();
    assert!(
        err.ends_with("at row 1: column `_change_kind`: `remove` is not a change kind (insert, update_before, update_after, delete or upsert)"),
        "{err}"
    );
    let rb = rb.slice(0, 1);
    let back = Batch::from_record_batch(&rb).unwrap();
    assert_eq!(back.records[0].kind, ChangeKind::Delete);
}

#[test]
fn a_declared_schema_reads_engine_types() {
    // What an engine hands a sink table: its own integer widths, views and
    // dictionaries, in whatever column order.
    let declared = schema(vec![
        Field::required("id", DataType::Int64),
        Field::new("name", DataType::String),
        Field::new("at", DataType::Timestamp),
        Field::new("missing", DataType::Boolean),
    ]);
    let rb = batch(vec![
        (
            "at",
            Arc::new(TimestampSecondArray::from(vec![1, 2]).with_timezone("+02:00")) as ArrayRef,
        ),
        (
            "name",
            Arc::new(DictionaryArray::<Int64Type>::from_iter([Some("a"), None])),
        ),
        ("id", Arc::new(Int16Array::from(vec![4, 5]))),
    ]);
    let records = FromArrow::with_schema(declared.clone(), ArrowOptions::default())
        .convert(&rb)
        .unwrap();
    assert!(Arc::ptr_eq(&records[0].schema, &declared));
    assert_eq!(
        records[1].values,
        vec![
            Value::Int64(5),
            Value::Null,
            Value::Timestamp(2_000_000),
            Value::Null
        ]
    );
    let strict = schema(vec![Field::required("gone", DataType::Int64)]);
    let err = FromArrow::with_schema(strict, ArrowOptions::default())
        .convert(&rb)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("column `gone`: missing from the batch, and the field is not nullable"),
        "{err}"
    );
}
