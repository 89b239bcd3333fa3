//! The target table: created from the record schema with `engine` and
//! `suffix`, prepared by `init_sql`, or existing with its columns mapped by
//! name; and the errors when records and table do not fit.

mod common;

use std::time::Duration;

use connector_core::{Pipeline, Properties};
use sink_clickhouse::ClickHouseSink;
use testkit::clickhouse::ClickHouse;

use common::{IdSource, ids_in};

async fn run(
    count: i64,
    sink: ClickHouseSink,
) -> connector_core::Result<connector_core::PipelineReport> {
    let (source, _) = IdSource::new(count, 25, Duration::ZERO);
    Pipeline::new(source).to(sink).run().await
}

#[tokio::test]
async fn creates_the_table_with_engine_and_suffix() {
    let server = ClickHouse::start();
    let props = Properties::from_pairs([
        ("hosts", format!("127.0.0.1:{}", server.http_port())),
        ("table_name", "created".into()),
        ("engine", "MergeTree".into()),
        (
            "suffix",
            "PARTITION BY id % 4 ORDER BY (name, id) SETTINGS index_granularity = 1024".into(),
        ),
        ("batch_count", "40".into()),
    ]);
    let report = run(100, ClickHouseSink::from_properties(&props).unwrap())
        .await
        .unwrap();
    assert_eq!(report.metrics.records_out, 100);
    assert_eq!(ids_in(&server, "created"), (0..100).collect::<Vec<_>>());
    let create = server.query("SHOW CREATE TABLE created");
    assert!(
        create.contains("id Int64") && create.contains("name String"),
        "{create}"
    );
    assert!(
        create.contains(
            "ENGINE = MergeTree PARTITION BY id % 4 ORDER BY (name, id) SETTINGS index_granularity = 1024"
        ),
        "{create}"
    );
    assert_eq!(
        server.query("SELECT arraySort(groupUniqArray(partition)) FROM system.parts WHERE table = 'created' AND active"),
        "['0','1','2','3']",
        "partitioned by the suffix"
    );

    // A second sink finds the table already there and appends.
    let again = run(10, ClickHouseSink::from_properties(&props).unwrap())
        .await
        .unwrap();
    assert_eq!(again.metrics.records_out, 10);
    assert_eq!(server.query("SELECT count() FROM created"), "110");
}

#[tokio::test]
async fn merge_tree_without_a_sorting_key_gets_one() {
    let server = ClickHouse::start();
    let sink = ClickHouseSink::new(common::config(&server, "plain").engine("MergeTree")).unwrap();
    run(30, sink).await.unwrap();
    assert_eq!(ids_in(&server, "plain").len(), 30);
    let create = server.query("SHOW CREATE TABLE plain");
    assert!(
        create.contains("ENGINE = MergeTree ORDER BY tuple()"),
        "{create}"
    );
}

#[tokio::test]
async fn init_sql_runs_once_before_the_first_insert() {
    let server = ClickHouse::start();
    // No IF NOT EXISTS on the table: the second run meets an existing
    // table and goes on. The marker insert counts the runs.
    let init_sql = "CREATE DATABASE IF NOT EXISTS app;
        CREATE TABLE app.events (id Int64, name String, note String DEFAULT 'init;sql') \
            ENGINE = MergeTree ORDER BY id;
        CREATE TABLE IF NOT EXISTS app.runs (n UInt8) ENGINE = Memory;
        INSERT INTO app.runs VALUES (1)";
    let config = || {
        common::config(&server, "app.events")
            .init_sql(init_sql)
            .engine("Log") // ignored: init_sql wins
            .batch_count(10)
    };
    let report = run(100, ClickHouseSink::new(config()).unwrap())
        .await
        .unwrap();
    assert_eq!(report.metrics.batches_delivered, 10);
    assert_eq!(
        server.query("SELECT count() FROM app.runs"),
        "1",
        "once per sink, not per batch"
    );
    assert_eq!(ids_in(&server, "app.events"), (0..100).collect::<Vec<_>>());
    assert_eq!(
        server.query("SELECT DISTINCT note FROM app.events"),
        "init;sql"
    );
    assert!(
        server
            .query("SHOW CREATE TABLE app.events")
            .contains("MergeTree")
    );

    run(5, ClickHouseSink::new(config()).unwrap())
        .await
        .unwrap();
    assert_eq!(server.query("SELECT count() FROM app.runs"), "2");
    assert_eq!(server.query("SELECT count() FROM app.events"), "105");
}

#[tokio::test]
async fn existing_table_columns_are_mapped_by_name() {
    let server = ClickHouse::start();
    server.query(
        "CREATE TABLE existing (
            name String,
            extra Nullable(String),
            created DateTime DEFAULT toDateTime('2020-01-01 00:00:00', 'UTC'),
            id Int64,
            doubled Int64 MATERIALIZED id * 2,
            tags Array(String)
        ) ENGINE = MergeTree ORDER BY id",
    );
    let sink = ClickHouseSink::new(common::config(&server, "existing")).unwrap();
    run(3, sink).await.unwrap();
    assert_eq!(
        server.query(
            "SELECT id, name, extra, toUInt32(created), doubled, tags FROM existing ORDER BY id"
        ),
        "0\tn0\t\\N\t1577836800\t0\t[]\n1\tn1\t\\N\t1577836800\t2\t[]\n2\tn2\t\\N\t1577836800\t4\t[]"
    );
}

/// Runs 10 records into a table made by `create` and returns the error.
async fn mapping_error(create: &str) -> String {
    let server = ClickHouse::start();
    server.query(create);
    let sink = ClickHouseSink::new(common::config(&server, "t")).unwrap();
    let (source, outcomes) = IdSource::new(10, 10, Duration::ZERO);
    let err = Pipeline::new(source)
        .to(sink)
        .run()
        .await
        .expect_err("records that do not fit the table stop a pipeline with the fail policy");
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(
        outcomes.rejected.len(),
        10,
        "the batch is rejected, not failed"
    );
    assert_eq!(server.query("SELECT count() FROM t"), "0");
    err.to_string()
}

#[tokio::test]
async fn a_missing_required_column_is_named() {
    let err = mapping_error(
        "CREATE TABLE t (id Int64, name String, score Float64, note Nullable(String), \
         day Date DEFAULT today()) ENGINE = MergeTree ORDER BY id",
    )
    .await;
    assert_eq!(
        err,
        "clickhouse sink: rejected 10 records (record #0 to record #9): \
         column `score` (Float64) has no default and the records have no field `score`"
    );
}

#[tokio::test]
async fn an_impossible_type_is_named() {
    let err = mapping_error(
        "CREATE TABLE t (id Array(Int64), name String) ENGINE = MergeTree ORDER BY tuple()",
    )
    .await;
    assert_eq!(
        err,
        "clickhouse sink: rejected 10 records (record #0 to record #9): \
         field `id` (int64) cannot be written to column `id` of type Array(Int64)"
    );
}

#[tokio::test]
async fn a_field_without_a_column_is_named() {
    let err = mapping_error("CREATE TABLE t (id Int64) ENGINE = MergeTree ORDER BY id").await;
    assert_eq!(
        err,
        "clickhouse sink: rejected 10 records (record #0 to record #9): \
         field `name` has no column in `default`.`t` (columns: id)"
    );
}

#[tokio::test]
async fn a_missing_table_stops_the_sink_with_clickhouses_message() {
    let server = ClickHouse::start();
    let sink = ClickHouseSink::new(common::config(&server, "nowhere")).unwrap();
    let (source, outcomes) = IdSource::new(10, 10, Duration::ZERO);
    let err = Pipeline::new(source).to(sink).run().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "clickhouse sink: read the columns of `default`.`nowhere`: \
         Code: 60. DB::Exception: Table default.nowhere doesn't exist.; \
         create the table, or set `engine` (and `suffix`) or `init_sql` so the sink creates it"
    );
    assert!(!err.is_retryable());
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(
        outcomes.failed.len(),
        10,
        "not delivered, to be delivered again"
    );
}
