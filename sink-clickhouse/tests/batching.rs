//! Batching through `Pipeline`: the sink's `batch_count` and
//! `batch_duration` decide how records are grouped into inserts (counted
//! by the server's query log), and each batch's ack resolves only when its
//! insert was accepted.

mod common;

use std::time::Duration;

use connector_core::{Ack, Batch, Pipeline, Record, Sink, Value, memory};
use sink_clickhouse::ClickHouseSink;
use source_generator::{GeneratorConfig, GeneratorSource, Template};
use testkit::clickhouse::ClickHouse;

use common::{id_schema, insert_sizes, wait_for};

fn records(ids: std::ops::Range<i64>) -> Vec<Record> {
    let schema = id_schema();
    ids.map(|id| {
        Record::new(
            schema.clone(),
            vec![Value::Int64(id), Value::String(format!("n{id}"))],
        )
    })
    .collect()
}

fn create_table(server: &ClickHouse) {
    server.query("CREATE TABLE t (id Int64, name String) ENGINE = MergeTree ORDER BY id");
}

#[tokio::test]
async fn defaults_are_128_records_or_100ms() {
    let server = ClickHouse::start();
    let sink = ClickHouseSink::new(common::config(&server, "t")).unwrap();
    let limits = sink.batch_limits();
    assert_eq!(
        (limits.max_records, limits.max_wait),
        (128, Duration::from_millis(100))
    );
}

#[tokio::test]
async fn full_batches_are_inserted_at_batch_count() {
    let server = ClickHouse::start();
    create_table(&server);
    let sink = ClickHouseSink::new(
        common::config(&server, "t")
            .batch_count(10)
            .batch_duration(Duration::from_secs(3600)),
    )
    .unwrap();
    let (mut tx, source) = memory::channel(64);
    let pipeline = Pipeline::new(source).to(sink).spawn();

    // 25 records, one per source batch: two inserts of 10 go out at once...
    let mut acks = Vec::new();
    for id in 0..25 {
        let (ack, outcome) = Ack::channel();
        tx.send(Batch::with_ack(records(id..id + 1), ack))
            .await
            .unwrap();
        acks.push(outcome);
    }
    assert_eq!(wait_for(&server, "SELECT count() FROM t", "20").await, "20");
    for outcome in acks.drain(..20) {
        assert!(outcome.await.is_delivered());
    }
    // ...while the last 5 wait for a full batch (or an hour).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.query("SELECT count() FROM t"), "20");

    // The end of the input sends the partial batch.
    tx.close().await.unwrap();
    let report = pipeline.join().await.unwrap();
    assert_eq!(report.metrics.records_out, 25);
    for outcome in acks {
        assert!(outcome.await.is_delivered());
    }
    let mut sizes = insert_sizes(&server, "t");
    sizes.sort_unstable();
    assert_eq!(sizes, vec![5, 10, 10]);
}

#[tokio::test]
async fn partial_batches_are_inserted_after_batch_duration() {
    let server = ClickHouse::start();
    create_table(&server);
    let sink = ClickHouseSink::new(
        common::config(&server, "t")
            .batch_count(1000)
            .batch_duration(Duration::from_millis(200)),
    )
    .unwrap();
    let (mut tx, source) = memory::channel(64);
    let pipeline = Pipeline::new(source).to(sink).spawn();

    // Far below batch_count, and the input stays open: only the wait can
    // send these.
    let (ack, first) = Ack::channel();
    tx.send(Batch::with_ack(records(0..7), ack)).await.unwrap();
    assert!(first.await.is_delivered());
    assert_eq!(server.query("SELECT count() FROM t"), "7");

    let (ack, second) = Ack::channel();
    tx.send(Batch::with_ack(records(7..10), ack)).await.unwrap();
    assert!(second.await.is_delivered());
    assert_eq!(server.query("SELECT count() FROM t"), "10");

    tx.close().await.unwrap();
    pipeline.join().await.unwrap();
    let mut sizes = insert_sizes(&server, "t");
    sizes.sort_unstable();
    assert_eq!(sizes, vec![3, 7]);
}

#[tokio::test]
async fn generated_events_go_in_as_batches_of_batch_count() {
    let server = ClickHouse::start();
    let source = GeneratorSource::new(
        GeneratorConfig::new(Template::Devops)
            .interval(Duration::ZERO)
            .seed(3)
            .count(1000),
    );
    let sink = ClickHouseSink::new(
        common::config(&server, "devops")
            .engine("MergeTree")
            .suffix("ORDER BY (hostname, time)"),
    )
    .unwrap();
    let report = Pipeline::new(source).to(sink).run().await.unwrap();
    assert_eq!(report.metrics.records_out, 1000);
    assert_eq!(server.query("SELECT count() FROM devops"), "1000");
    let mut sizes = insert_sizes(&server, "devops");
    sizes.sort_unstable();
    assert_eq!(sizes, [vec![104], vec![128; 7]].concat());
    assert_eq!(
        server.query("SELECT arraySort(groupUniqArray(hostname)) FROM devops"),
        "['host_0','host_1','host_2']"
    );
}
