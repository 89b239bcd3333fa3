//! `INSERT INTO` sink tables: a collecting sink gets exactly the rows plain
//! Rust computes from the same seeded records; change kinds and the sink's
//! batch limits carry through; a real ClickHouse server holds every row
//! by the time the statement returns.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{f64_of, generate, iot, query, str_of};
use connector_core::memory::CollectSink;
use connector_core::{BatchLimits, ChangeKind, DataType, Field, Schema, Value};
use connector_datafusion::{SessionContextExt, SinkTable};
use datafusion::prelude::SessionContext;
use sink_clickhouse::{ClickHouseConfig, ClickHouseSink, Endpoint};
use source_generator::GeneratorSource;
use testkit::clickhouse::ClickHouse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_select_into_a_collecting_sink_matches_plain_rust() {
    let config = iot(5, 30_000);
    let records = generate(config.clone()).await;
    let ctx = SessionContext::new();
    ctx.register_source("iot", GeneratorSource::new(config))
        .await
        .unwrap();
    let (sink, collected) = CollectSink::new();
    let sink = sink.with_batch_limits(BatchLimits {
        max_records: 500,
        max_wait: Duration::ZERO,
    });
    let schema = Arc::new(Schema::new(vec![
        Field::required("device", DataType::String),
        Field::new("level", DataType::String),
        Field::new("doubled", DataType::Float64),
        Field::new("at", DataType::Timestamp),
    ]));
    let table = ctx.register_sink("alerts", sink, schema.clone()).unwrap();

    let result = query(
        &ctx,
        "INSERT INTO alerts \
         SELECT device, CASE WHEN number > 90 THEN 'high' ELSE 'low' END, number * 2, time \
         FROM iot WHERE number > 80 OR number < 1",
    )
    .await;

    let mut expected: Vec<(String, String, f64)> = records
        .iter()
        .map(|r| (str_of(r, "device").to_owned(), f64_of(r, "number")))
        .filter(|(_, n)| *n > 80.0 || *n < 1.0)
        .map(|(d, n)| (d, if n > 90.0 { "high" } else { "low" }.to_owned(), n * 2.0))
        .collect();
    assert_eq!(
        result[0].get("count"),
        Some(&Value::Int64(expected.len() as i64))
    );
    assert_eq!(table.rows_written(), expected.len() as u64);
    let got_records = collected.records();
    assert!(
        got_records
            .iter()
            .all(|r| *r.schema == *schema && r.kind == ChangeKind::Insert)
    );
    assert!(
        got_records
            .iter()
            .all(|r| r.get("at").and_then(Value::as_timestamp_micros).is_some())
    );
    let mut got: Vec<(String, String, f64)> = got_records
        .iter()
        .map(|r| {
            (
                str_of(r, "device").to_owned(),
                str_of(r, "level").to_owned(),
                f64_of(r, "doubled"),
            )
        })
        .collect();
    let key = |t: &(String, String, f64)| (t.0.clone(), t.1.clone(), t.2.to_bits());
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected);
    assert!(
        collected.batch_sizes().iter().all(|&n| n <= 500),
        "the sink's batch limit holds: {:?}",
        collected.batch_sizes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_kind_column_sets_each_records_kind() {
    let (sink, collected) = CollectSink::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::String),
        Field::new("n", DataType::Int64),
    ]));
    let table = SinkTable::with_change_kind(sink, schema).unwrap();
    let ctx = SessionContext::new();
    ctx.register_sink_table("cdc", &table).unwrap();
    query(
        &ctx,
        "INSERT INTO cdc VALUES ('a', 1, 'delete'), ('b', 2, NULL), ('c', 3, 'update_after')",
    )
    .await;
    query(&ctx, "INSERT INTO cdc (name, n) VALUES ('d', 4)").await;
    let kinds: Vec<(String, ChangeKind)> = collected
        .records()
        .iter()
        .map(|r| (str_of(r, "name").to_owned(), r.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("a".into(), ChangeKind::Delete),
            ("b".into(), ChangeKind::Insert),
            ("c".into(), ChangeKind::UpdateAfter),
            ("d".into(), ChangeKind::Insert),
        ]
    );
    let err = ctx
        .sql("INSERT INTO cdc VALUES ('e', 5, 'remove')")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`remove` is not a change kind"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_table_cannot_be_read_or_overwritten() {
    let (sink, _) = CollectSink::new();
    let ctx = SessionContext::new();
    ctx.register_sink(
        "out",
        sink,
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64)])),
    )
    .unwrap();
    let err = ctx
        .sql("SELECT * FROM out")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("can only be the target of INSERT INTO"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_select_into_clickhouse() {
    let server = ClickHouse::start();
    server.query(
        "CREATE TABLE iot (device String, number Float64, time DateTime('UTC')) \
         ENGINE = MergeTree ORDER BY (device, time)",
    );
    let config = iot(9, 20_000);
    let records = generate(config.clone()).await;

    let sink = ClickHouseSink::new(
        ClickHouseConfig::new("iot", vec![Endpoint::http("127.0.0.1", server.http_port())])
            .batch_count(4_000)
            .retry_timeout(Duration::from_secs(60)),
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::required("device", DataType::String),
        Field::required("number", DataType::Float64),
        Field::required("time", DataType::Timestamp),
    ]));
    let ctx = SessionContext::new();
    ctx.register_source("gen", GeneratorSource::new(config))
        .await
        .unwrap();
    let table = ctx.register_sink("clickhouse", sink, schema).unwrap();

    let result = query(
        &ctx,
        "INSERT INTO clickhouse SELECT device, round(number, 2), time FROM gen WHERE device <> 'device_0'",
    )
    .await;
    // Read right away: the statement returned only after the sink delivered.
    let on_server =
        server.query("SELECT count(), round(sum(number), 2), uniqExact(device) FROM iot");

    let kept: Vec<f64> = records
        .iter()
        .filter(|r| str_of(r, "device") != "device_0")
        .map(|r| (f64_of(r, "number") * 100.0).round() / 100.0)
        .collect();
    assert_eq!(
        result[0].get("count"),
        Some(&Value::Int64(kept.len() as i64))
    );
    let fields: Vec<&str> = on_server.split('\t').collect();
    assert_eq!(fields[0], kept.len().to_string(), "{on_server}");
    let sum: f64 = fields[1].parse().unwrap();
    assert!((sum - kept.iter().sum::<f64>()).abs() < 0.01, "{on_server}");
    assert_eq!(fields[2], "2");
    table.close().await.unwrap();
}
