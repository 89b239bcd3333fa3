//! Every supported type round-trips: records go in through the sink, are
//! read back from the real server with a query, and compared.

mod common;

use std::sync::Arc;

use connector_core::{
    Ack, AckStatus, Batch, DataType, Decimal, Field, Record, Schema, Sink, StructValue, Value,
};
use sink_clickhouse::ClickHouseSink;
use testkit::clickhouse::ClickHouse;

/// Sends `records` as one batch and waits for its outcome.
async fn insert(sink: &mut ClickHouseSink, records: Vec<Record>) -> AckStatus {
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(records, ack)).await.unwrap();
    sink.flush().await.unwrap();
    outcome.await
}

const ALL_TYPES: &str = "CREATE TABLE all_types (
    id Int64,
    i8 Int8, i16 Int16, i32 Int32, i64 Int64,
    u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64,
    f32 Float32, f64 Float64,
    d32 Decimal32(2), d64 Decimal(18, 6), d128 Decimal128(10),
    s String, fs FixedString(4), bin String,
    u UUID, d Date, dt DateTime('UTC'),
    e8 Enum8('red' = 1, 'green' = 2), e16 Enum16('small' = -1000, 'big' = 1000),
    n_i Nullable(Int64), n_s Nullable(String), n_dt Nullable(DateTime('UTC')),
    arr Array(Int64), arr_n Array(Nullable(String)), arr2 Array(Array(UInt8)),
    tup Tuple(String, Int64),
    lc LowCardinality(String),
    flag UInt8
) ENGINE = MergeTree ORDER BY id";

/// Version-independent text of every column (dates as numbers, binary as hex).
const READ_BACK: &str = "SELECT id, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, d32, d64, d128, \
    s, hex(fs), hex(bin), u, toUInt16(d), toUInt32(dt), e8, e16, n_i, n_s, \
    if(isNull(n_dt), 'null', toString(toUInt32(assumeNotNull(n_dt)))), \
    arr, arr_n, arr2, tup, lc, flag FROM all_types ORDER BY id";

fn all_types_schema() -> Arc<Schema> {
    use DataType::*;
    let pair = Arc::new(Schema::new(vec![
        Field::required("a", String),
        Field::required("b", Int64),
    ]));
    Arc::new(Schema::new(vec![
        Field::required("id", Int64),
        Field::new("i8", Int64),
        Field::new("i16", Int64),
        Field::new("i32", Int64),
        Field::new("i64", Int64),
        Field::new("u8", Int64),
        Field::new("u16", Int64),
        Field::new("u32", Int64),
        Field::new("u64", String),
        Field::new("f32", Float64),
        Field::new("f64", Float64),
        Field::new(
            "d32",
            Decimal {
                precision: 9,
                scale: 2,
            },
        ),
        Field::new("d64", Float64),
        Field::new("d128", String),
        Field::new("s", String),
        Field::new("fs", String),
        Field::new("bin", Bytes),
        Field::new("u", String),
        Field::new("d", Date),
        Field::new("dt", Timestamp),
        Field::new("e8", String),
        Field::new("e16", Int64),
        Field::new("n_i", Int64),
        Field::new("n_s", String),
        Field::new("n_dt", Timestamp),
        Field::new("arr", Array(Box::new(Int64))),
        Field::new("arr_n", Array(Box::new(String))),
        Field::new("arr2", Array(Box::new(Array(Box::new(Int64))))),
        Field::new("tup", Struct(pair)),
        Field::new("lc", String),
        Field::new("flag", Boolean),
    ]))
}

#[tokio::test]
async fn every_type_of_an_existing_table_round_trips() {
    let server = ClickHouse::start();
    let create = server
        .client_command()
        .args([
            "--allow_experimental_low_cardinality_type=1",
            "--query",
            ALL_TYPES,
        ])
        .output()
        .unwrap();
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );

    let schema = all_types_schema();
    let pair = |a: &str, b: i64| {
        Value::Struct(StructValue::from_pairs([
            ("a", Value::from(a)),
            ("b", Value::Int64(b)),
        ]))
    };
    let row = |values: Vec<Value>| Record::new(schema.clone(), values);
    let records = vec![
        // Minimums, unicode, escapes, every non-null value.
        row(vec![
            Value::Int64(1),
            Value::Int64(-128),
            Value::Int64(-32768),
            Value::Int64(-2147483648),
            Value::Int64(i64::MIN),
            Value::Int64(0),
            Value::Int64(0),
            Value::Int64(0),
            Value::from("0"),
            Value::Float64(0.5),
            Value::Float64(-3.25),
            Value::Decimal(Decimal::new(-12345, 2)),
            Value::Float64(1.5),
            Value::from("-0.0000000001"),
            Value::from("héllo\tworld\n"),
            Value::from("ab"),
            Value::Bytes(vec![0xff, 0x00, 0x41]),
            Value::from("00112233-4455-6677-8899-aabbccddeeff"),
            Value::Date(18262),
            Value::Timestamp(1_577_836_800_123_456),
            Value::from("green"),
            Value::Int64(-1000),
            Value::Int64(-7),
            Value::from("x'y"),
            Value::Timestamp(1_000_000),
            Value::Array(vec![Value::Int64(1), Value::Int64(-2), Value::Int64(3)]),
            Value::Array(vec![Value::from("a"), Value::Null]),
            Value::Array(vec![
                Value::Array(vec![Value::Int64(1), Value::Int64(2)]),
                Value::Array(vec![]),
            ]),
            pair("x", 7),
            Value::from("low"),
            Value::Boolean(true),
        ]),
        // Maximums, special floats, conversions from text.
        row(vec![
            Value::Int64(2),
            Value::Int64(127),
            Value::Int64(32767),
            Value::Int64(2147483647),
            Value::Int64(i64::MAX),
            Value::Int64(255),
            Value::Int64(65535),
            Value::Int64(4294967295),
            Value::from("18446744073709551615"),
            Value::Float64(f64::INFINITY),
            Value::Float64(f64::NAN),
            Value::from("9999999.99"),
            Value::Decimal(Decimal::new(-125, 2)),
            Value::from("12345678901234567890.1234567891"),
            Value::from(""),
            Value::from("abcd"),
            Value::Bytes(vec![]),
            Value::from("ffffffffffffffffffffffffffffffff"),
            Value::from("2149-06-06"),
            Value::from("2106-02-07T06:28:15Z"),
            Value::from("red"),
            Value::from("big"),
            Value::Int64(i64::MAX),
            Value::from(""),
            Value::from("2020-01-01 00:00:01"),
            Value::Array(vec![]),
            Value::Array(vec![]),
            Value::Array(vec![Value::Array(vec![Value::Int64(255)])]),
            pair("", -1),
            Value::from(""),
            Value::Boolean(false),
        ]),
        // NULL everywhere: Nullable columns hold NULL, the others their default.
        row(std::iter::once(Value::Int64(3))
            .chain(std::iter::repeat_n(Value::Null, schema.len() - 1))
            .collect()),
    ];

    let mut sink = ClickHouseSink::new(common::config(&server, "all_types")).unwrap();
    let status = insert(&mut sink, records).await;
    assert!(status.is_delivered(), "{status:?}");
    assert_eq!(
        sink.server_version().unwrap().major,
        18,
        "tests run against Debian's 18.16"
    );

    let expected = [
        "1\t-128\t-32768\t-2147483648\t-9223372036854775808\t0\t0\t0\t0\t0.5\t-3.25\t-123.45\t1.500000\t-0.0000000001\t\
         héllo\\tworld\\n\t61620000\tFF0041\t00112233-4455-6677-8899-aabbccddeeff\t18262\t1577836800\tgreen\tsmall\t-7\tx\\'y\t1\t\
         [1,-2,3]\t['a',NULL]\t[[1,2],[]]\t('x',7)\tlow\t1",
        "2\t127\t32767\t2147483647\t9223372036854775807\t255\t65535\t4294967295\t18446744073709551615\tinf\tnan\t9999999.99\t-1.250000\t12345678901234567890.1234567891\t\
         \t61626364\t\tFFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF\t65535\t4294967295\tred\tbig\t9223372036854775807\t\t1577836801\t\
         []\t[]\t[[255]]\t('',-1)\t\t0",
        "3\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0.00\t0.000000\t0.0000000000\t\t00000000\t\t00000000-0000-0000-0000-000000000000\t0\t0\tred\tsmall\t\\N\t\\N\tnull\t\
         []\t[]\t[]\t('',0)\t\t0",
    ];
    let got = server.query(READ_BACK);
    let got: Vec<String> = got.lines().map(|l| l.to_lowercase()).collect();
    let expected: Vec<String> = expected.iter().map(|l| l.to_lowercase()).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn auto_created_columns_follow_the_mapping_and_round_trip() {
    let server = ClickHouse::start();
    use DataType::*;
    let inner = Arc::new(Schema::new(vec![Field::required("k", String)]));
    let schema = Arc::new(Schema::new(vec![
        Field::required("id", Int64),
        Field::required("flag", Boolean),
        Field::required("x", Float64),
        Field::required("s", String),
        Field::required("raw", Bytes),
        Field::required("at", Timestamp),
        Field::required("day", Date),
        Field::required(
            "price",
            Decimal {
                precision: 10,
                scale: 3,
            },
        ),
        Field::required("tags", Array(Box::new(String))),
        Field::new("maybe", Int64),
        Field::new("maybe_tags", Array(Box::new(Int64))),
        Field::required("obj", Struct(inner.clone())),
        Field::new("any", Json),
    ]));
    let record = |id: i64, maybe: Value, any: Value| {
        Record::new(
            schema.clone(),
            vec![
                Value::Int64(id),
                Value::Boolean(id % 2 == 1),
                Value::Float64(id as f64 / 4.0),
                Value::String(format!("s{id}")),
                Value::Bytes(vec![b'r', id as u8 + b'0']),
                Value::Timestamp(1_700_000_000_000_000 + id * 1_000_000),
                Value::Date(19000 + id as i32),
                Value::Decimal(connector_core::Decimal::new(1000 * id as i128 + 5, 3)),
                Value::Array(vec![Value::from("a"), Value::Null]),
                maybe.clone(),
                if maybe.is_null() {
                    Value::Null
                } else {
                    Value::Array(vec![maybe])
                },
                Value::Struct(StructValue::new(
                    inner.clone(),
                    vec![Value::String(format!("v{id}"))],
                )),
                any,
            ],
        )
    };
    let records = vec![
        record(1, Value::Int64(10), Value::Int64(5)),
        record(2, Value::Null, Value::Null),
    ];
    let config = common::config(&server, "created")
        .engine("MergeTree")
        .suffix("ORDER BY id");
    let mut sink = ClickHouseSink::new(config).unwrap();
    let status = insert(&mut sink, records).await;
    assert!(status.is_delivered(), "{status:?}");

    let columns = server.query("DESCRIBE TABLE created FORMAT TSV");
    // 18.16 has neither Bool, DateTime64 nor Date32.
    let columns: Vec<std::string::String> = columns
        .lines()
        .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join("\t"))
        .collect();
    assert_eq!(
        columns.join("\n"),
        "id\tInt64\nflag\tUInt8\nx\tFloat64\ns\tString\nraw\tString\nat\tDateTime(\\'UTC\\')\n\
         day\tDate\nprice\tDecimal(10, 3)\ntags\tArray(Nullable(String))\nmaybe\tNullable(Int64)\n\
         maybe_tags\tArray(Nullable(Int64))\nobj\tString\nany\tNullable(String)"
    );
    let rows = server.query(
        "SELECT id, flag, x, s, raw, toUInt32(at), toUInt16(day), price, tags, maybe, maybe_tags, obj, any \
         FROM created ORDER BY id",
    );
    assert_eq!(
        rows,
        "1\t1\t0.25\ts1\tr1\t1700000001\t19001\t1.005\t['a',NULL]\t10\t[10]\t{\"k\":\"v1\"}\t5\n\
         2\t0\t0.5\ts2\tr2\t1700000002\t19002\t2.005\t['a',NULL]\t\\N\t[]\t{\"k\":\"v2\"}\t\\N"
    );
}
