//! Batch → Arrow RecordBatch → Batch for every record type: nested
//! structs, lists, maps, decimals, timestamps, json, nulls at every level,
//! change kinds, keys and event times; and the Arrow types each one maps to.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType as ArrowType, Int8Type, TimeUnit};
use connector_core::arrow::{ArrowOptions, FromArrow, ToArrow, infer_schema, to_arrow_schema};
use connector_core::{
    Batch, ChangeKind, DataType, Decimal, Field, Record, Schema, StructValue, Value,
};
use serde_json::json;

fn int() -> DataType {
    DataType::Int64
}

fn array(t: DataType) -> DataType {
    DataType::Array(Box::new(t))
}

fn map(k: DataType, v: DataType) -> DataType {
    DataType::Map(Box::new(k), Box::new(v))
}

fn point_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::required("x", DataType::Float64),
        Field::new("label", DataType::String),
    ]))
}

fn inner_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::required("id", int()),
        Field::new("points", array(DataType::Struct(point_schema()))),
        Field::new("scores", map(DataType::String, DataType::Float64)),
    ]))
}

/// One field of every type, nested types nested in each other.
fn all_types() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::required("row", int()),
        Field::new("flag", DataType::Boolean),
        Field::new("count", int()),
        Field::new("ratio", DataType::Float64),
        Field::new("name", DataType::String),
        Field::new("blob", DataType::Bytes),
        Field::new("at", DataType::Timestamp),
        Field::new("day", DataType::Date),
        Field::new(
            "price",
            DataType::Decimal {
                precision: 12,
                scale: 3,
            },
        ),
        Field::new(
            "big",
            DataType::Decimal {
                precision: 38,
                scale: 0,
            },
        ),
        Field::new("tags", array(DataType::String)),
        Field::new("matrix", array(array(int()))),
        Field::new("inner", DataType::Struct(inner_schema())),
        Field::new("attrs", map(DataType::String, DataType::Json)),
        Field::new("by_id", map(int(), DataType::Struct(point_schema()))),
        Field::new(
            "nested_maps",
            array(map(DataType::String, array(DataType::Date))),
        ),
        Field::new("payload", DataType::Json),
    ]))
}

fn point(x: f64, label: Option<&str>) -> Value {
    Value::Struct(StructValue::new(
        point_schema(),
        vec![Value::Float64(x), label.into()],
    ))
}

fn full_row(schema: &Arc<Schema>) -> Record {
    let inner = StructValue::new(
        inner_schema(),
        vec![
            Value::Int64(7),
            Value::Array(vec![point(1.5, Some("a")), Value::Null, point(-2.0, None)]),
            Value::Map(vec![
                ("p50".into(), Value::Float64(0.5)),
                ("p99".into(), Value::Null),
            ]),
        ],
    );
    Record::new(
        schema.clone(),
        vec![
            Value::Int64(0),
            Value::Boolean(true),
            Value::Int64(i64::MIN),
            Value::Float64(f64::INFINITY),
            Value::from("ünïcödé ✓"),
            Value::Bytes(vec![0, 159, 146, 150, 255]),
            Value::Timestamp(1_700_000_000_123_456),
            Value::Date(19_675),
            Value::Decimal(Decimal::new(-123_456_789, 3)),
            Value::Decimal(Decimal::new(
                99_999_999_999_999_999_999_999_999_999_999_999_999,
                0,
            )),
            Value::Array(vec!["a".into(), Value::Null, "".into()]),
            Value::Array(vec![
                Value::Array(vec![Value::Int64(1), Value::Int64(2)]),
                Value::Array(vec![]),
                Value::Null,
                Value::Array(vec![Value::Null]),
            ]),
            Value::Struct(inner),
            Value::Map(vec![
                ("n".into(), Value::from_json(json!(1))),
                (
                    "obj".into(),
                    Value::from_json(json!({"a": [1, 2.5, "x"], "b": null})),
                ),
                ("none".into(), Value::Null),
            ]),
            Value::Map(vec![
                (Value::Int64(-1), point(0.25, Some("q"))),
                (Value::Int64(2), Value::Null),
            ]),
            Value::Array(vec![
                Value::Map(vec![(
                    "d".into(),
                    Value::Array(vec![Value::Date(-1), Value::Null]),
                )]),
                Value::Map(vec![]),
                Value::Null,
            ]),
            Value::from_json(json!({"deep": {"list": [true, null, {"k": "v"}]}, "n": -3})),
        ],
    )
    .with_kind(ChangeKind::UpdateAfter)
    .with_key(&b"key-0"[..])
    .with_timestamp(1_700_000_000_000_000)
}

/// A row where every nullable field is null (and the struct holds nulls inside).
fn null_row(schema: &Arc<Schema>) -> Record {
    let mut values = vec![Value::Null; schema.len()];
    values[0] = Value::Int64(1);
    values[12] = Value::Struct(StructValue::new(
        inner_schema(),
        vec![Value::Int64(0), Value::Null, Value::Null],
    ));
    Record::new(schema.clone(), values).with_kind(ChangeKind::Delete)
}

/// Rows with other values in places: empty containers, negatives, other kinds.
fn other_row(schema: &Arc<Schema>, row: i64, kind: ChangeKind) -> Record {
    let mut r = full_row(schema).with_kind(kind);
    r.values[0] = Value::Int64(row);
    r.values[1] = Value::Boolean(false);
    r.values[3] = Value::Float64(-0.0);
    r.values[6] = Value::Timestamp(-86_400_000_001);
    r.values[7] = Value::Date(-719_162);
    r.values[8] = Value::Decimal(Decimal::new(5, 3));
    r.values[10] = Value::Array(vec![]);
    r.values[13] = Value::Map(vec![]);
    r.values[16] = Value::from_json(json!([1, "two", 3.5, false]));
    if kind == ChangeKind::Upsert {
        // A null struct whose own fields are not nullable.
        r.values[12] = Value::Null;
    }
    r.key = None;
    r.timestamp = None;
    r
}

fn options() -> ArrowOptions {
    ArrowOptions::default()
        .key_column("_key")
        .event_time_column("_event_time")
}

#[test]
fn every_type_round_trips() {
    let schema = all_types();
    let records = vec![
        full_row(&schema),
        null_row(&schema),
        other_row(&schema, 2, ChangeKind::Insert),
        other_row(&schema, 3, ChangeKind::UpdateBefore),
        other_row(&schema, 4, ChangeKind::Upsert),
    ];
    let to_arrow = ToArrow::new(schema.clone(), options()).unwrap();
    let rb = to_arrow.convert(&records).unwrap();
    assert_eq!(rb.num_rows(), 5);
    assert_eq!(rb.num_columns(), schema.len() + 3);
    rb.columns()
        .iter()
        .for_each(|c| c.to_data().validate_full().unwrap());

    let back = FromArrow::new(options()).convert(&rb).unwrap();
    assert_eq!(back.len(), records.len());
    for (i, (got, want)) in back.iter().zip(&records).enumerate() {
        assert_eq!(got.kind, want.kind, "row {i}");
        assert_eq!(got.key, want.key, "row {i}");
        assert_eq!(got.timestamp, want.timestamp, "row {i}");
        for ((name, g), w) in got.iter().zip(&want.values) {
            assert_eq!(g, w, "row {i}, column {name}");
        }
        assert_eq!(got, want, "row {i}");
    }
    assert_eq!(*back[0].schema, *schema, "the schema comes back too");
}

#[test]
fn batch_methods_round_trip_with_the_change_kind() {
    let schema = all_types();
    let batch = Batch::new(vec![
        other_row(&schema, 0, ChangeKind::Delete),
        null_row(&schema),
    ]);
    let rb = batch.to_record_batch().unwrap();
    assert_eq!(rb.schema().fields().last().unwrap().name(), "_change_kind");
    let back = Batch::from_record_batch(&rb).unwrap();
    assert_eq!(back.len(), 2);
    for (got, want) in back.records.iter().zip(&batch.records) {
        assert_eq!(got.kind, want.kind);
        assert_eq!(got.values, want.values);
    }
}

#[test]
fn arrow_types_are_the_documented_ones() {
    let arrow = to_arrow_schema(&all_types(), &options()).unwrap();
    let t = |name: &str| arrow.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(t("row"), ArrowType::Int64);
    assert!(!arrow.field_with_name("row").unwrap().is_nullable());
    assert_eq!(t("flag"), ArrowType::Boolean);
    assert_eq!(t("ratio"), ArrowType::Float64);
    assert_eq!(t("name"), ArrowType::Utf8);
    assert_eq!(t("blob"), ArrowType::Binary);
    assert_eq!(
        t("at"),
        ArrowType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
    );
    assert_eq!(t("day"), ArrowType::Date32);
    assert_eq!(t("price"), ArrowType::Decimal128(12, 3));
    let ArrowType::List(item) = t("tags") else {
        panic!("tags: {}", t("tags"))
    };
    assert_eq!(
        (item.name().as_str(), item.is_nullable(), item.data_type()),
        ("item", true, &ArrowType::Utf8)
    );
    let ArrowType::Map(entries, sorted) = t("attrs") else {
        panic!("attrs")
    };
    assert!(!sorted);
    let ArrowType::Struct(kv) = entries.data_type() else {
        panic!("entries")
    };
    assert_eq!(kv[0].name(), "keys");
    assert!(!kv[0].is_nullable());
    assert_eq!(
        kv[1]
            .metadata()
            .get("ARROW:extension:name")
            .map(String::as_str),
        Some("arrow.json")
    );
    let payload = arrow.field_with_name("payload").unwrap();
    assert_eq!(payload.data_type(), &ArrowType::Utf8);
    assert_eq!(
        payload
            .metadata()
            .get("ARROW:extension:name")
            .map(String::as_str),
        Some("arrow.json")
    );
    assert_eq!(
        t("_change_kind"),
        ArrowType::Dictionary(Box::new(ArrowType::Int8), Box::new(ArrowType::Utf8))
    );
    assert_eq!(t("_key"), ArrowType::Binary);
    assert_eq!(
        t("_event_time"),
        ArrowType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
    );

    // Values as an Arrow reader sees them.
    let schema = all_types();
    let rb = ToArrow::new(schema.clone(), options())
        .unwrap()
        .convert(&[full_row(&schema)])
        .unwrap();
    let kinds = rb
        .column_by_name("_change_kind")
        .unwrap()
        .as_dictionary::<Int8Type>();
    assert_eq!(kinds.keys().value(0), 2);
    assert_eq!(kinds.values().as_string::<i32>().value(2), "update_after");
    assert_eq!(
        rb.column_by_name("payload")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        r#"{"deep":{"list":[true,null,{"k":"v"}]},"n":-3}"#
    );
    let price = rb.column_by_name("price").unwrap();
    assert_eq!(
        arrow::util::display::array_value_to_string(price, 0).unwrap(),
        "-123456.789"
    );
    let at = rb.column_by_name("at").unwrap();
    assert_eq!(
        arrow::util::display::array_value_to_string(at, 0).unwrap(),
        "2023-11-14T22:13:20.123456Z"
    );
}

#[test]
fn schemaless_batches_get_one_merged_schema() {
    use connector_core::format::{Decoder, MessageMeta, json::JsonDecoder};
    let mut decoder = JsonDecoder::new();
    let mut records = Vec::new();
    for line in [
        r#"{"id": 1, "v": 1, "seen": null}"#,
        r#"{"id": 2, "v": 2.5, "extra": "x"}"#,
        r#"{"id": 3, "v": null, "nested": {"a": 1}, "tags": []}"#,
        r#"{"id": 4, "nested": {"b": "y"}, "tags": ["t"], "mixed": 1}"#,
        r#"{"id": 5, "mixed": "s", "seen": true}"#,
    ] {
        let _ = decoder
            .decode(line.as_bytes(), &MessageMeta::default(), &mut records)
            .unwrap();
    }
    let batch = Batch::new(records);
    assert!(
        batch.schema().is_none(),
        "the records do not share a schema"
    );

    let schema = infer_schema(&batch.records);
    assert_eq!(
        schema.to_string(),
        "(id int64, v float64, seen boolean, extra string, \
         nested struct<a int64, b string>, tags array<string>, mixed json)"
    );
    let rb = batch.to_record_batch().unwrap();
    assert_eq!(rb.num_rows(), 5);
    let v = rb
        .column_by_name("v")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!(
        (v.value(0), v.value(1), v.is_null(2), v.is_null(3)),
        (1.0, 2.5, true, true)
    );
    let mixed = rb.column_by_name("mixed").unwrap().as_string::<i32>();
    assert_eq!((mixed.value(3), mixed.value(4)), ("1", r#""s""#));

    let back = Batch::from_record_batch(&rb).unwrap();
    assert!(
        back.schema().is_some(),
        "records read back share the merged schema"
    );
    let r = &back.records;
    assert_eq!(r[0].get("v"), Some(&Value::Float64(1.0)));
    assert_eq!(r[1].get("extra"), Some(&Value::from("x")));
    assert_eq!(r[0].get("extra"), Some(&Value::Null));
    assert_eq!(r[2].get_path("nested.a"), Some(&Value::Int64(1)));
    assert_eq!(r[2].get_path("nested.b"), Some(&Value::Null));
    assert_eq!(r[3].get_path("nested.b"), Some(&Value::from("y")));
    assert_eq!(r[2].get("tags"), Some(&Value::Array(vec![])));
    assert_eq!(r[3].get("tags"), Some(&Value::Array(vec!["t".into()])));
    assert_eq!(r[3].get("mixed"), Some(&Value::Int64(1)));
    assert_eq!(r[4].get("mixed"), Some(&Value::from("s")));
    assert_eq!(r[4].get("seen"), Some(&Value::Boolean(true)));
}

#[test]
fn records_of_other_shapes_are_matched_by_name() {
    let target = Arc::new(Schema::new(vec![
        Field::required("id", int()),
        Field::new("name", DataType::String),
    ]));
    let to_arrow = ToArrow::new(target.clone(), ArrowOptions::values_only()).unwrap();
    let rb = to_arrow
        .convert(&[
            Record::from_pairs([
                ("name", Value::from("b")),
                ("id", Value::Int64(2)),
                ("x", Value::Boolean(true)),
            ]),
            Record::from_pairs([("id", Value::Int64(3))]),
        ])
        .unwrap();
    assert_eq!(rb.schema(), *to_arrow.arrow_schema());
    let back = FromArrow::new(ArrowOptions::values_only())
        .convert(&rb)
        .unwrap();
    assert_eq!(back[0].values, vec![Value::Int64(2), Value::from("b")]);
    assert_eq!(back[1].values, vec![Value::Int64(3), Value::Null]);

    let err = to_arrow
        .convert(&[Record::from_pairs([("name", Value::from("no id"))])])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "arrow conversion: cannot encode record at row 0 as arrow: column `id`: \
         missing from the record, and the column is not nullable"
    );
}

#[test]
fn the_same_arrow_schema_gives_one_shared_record_schema() {
    let schema = all_types();
    let to_arrow = ToArrow::new(schema.clone(), options()).unwrap();
    let a = to_arrow.convert(&[full_row(&schema)]).unwrap();
    let b = to_arrow
        .convert(&[null_row(&schema), full_row(&schema)])
        .unwrap();
    let mut from = FromArrow::new(options());
    let ra = from.convert(&a).unwrap();
    let rb = from.convert(&b).unwrap();
    assert!(Arc::ptr_eq(&ra[0].schema, &rb[1].schema));
}

#[test]
fn slices_of_record_batches_read_back_their_rows() {
    let schema = all_types();
    let records: Vec<Record> = (0..6)
        .map(|i| match i % 3 {
            0 => other_row(&schema, i, ChangeKind::Insert),
            1 => {
                let mut r = null_row(&schema);
                r.values[0] = Value::Int64(i);
                r
            }
            _ => {
                let mut r = full_row(&schema);
                r.values[0] = Value::Int64(i);
                r
            }
        })
        .collect();
    let rb = ToArrow::new(schema, options())
        .unwrap()
        .convert(&records)
        .unwrap();
    let slice: RecordBatch = rb.slice(2, 3);
    let back = FromArrow::new(options()).convert(&slice).unwrap();
    assert_eq!(back, records[2..5]);
}

#[test]
fn an_empty_batch_has_no_rows() {
    let rb = Batch::new(vec![]).to_record_batch().unwrap();
    assert_eq!((rb.num_rows(), rb.num_columns()), (0, 1));
    let rb = connector_core::arrow::to_record_batch(&[], &ArrowOptions::values_only()).unwrap();
    assert_eq!((rb.num_rows(), rb.num_columns()), (0, 0));
    assert!(Batch::from_record_batch(&rb).unwrap().is_empty());
}
