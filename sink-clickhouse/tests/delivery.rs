//! Delivery: bad rows are refused with a clear error while the rest of
//! their batch goes in; ClickHouse's own refusals reject the batch with its
//! message; a lost answer is not turned into a duplicate; an error no retry
//! can fix stops the pipeline; an unreachable host is skipped.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use connector_core::{
    Ack, AckStatus, BadDataPolicy, Batch, DataType, Field, Pipeline, Position, Properties, Record,
    Schema, Sink, Value, memory,
};
use sink_clickhouse::{ClickHouseSink, Endpoint};
use testkit::clickhouse::ClickHouse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{IdSource, ids_in};

fn level_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::required("id", DataType::Int64),
        Field::required("level", DataType::Int64),
    ]))
}

/// Records `id` with `level = id`, except `bad` whose level is 300.
fn levels(ids: std::ops::Range<i64>, bad: Option<i64>) -> Vec<Record> {
    let schema = level_schema();
    ids.map(|id| {
        let level = if Some(id) == bad { 300 } else { id };
        Record::new(schema.clone(), vec![Value::Int64(id), Value::Int64(level)])
            .with_position(Position::Sequence(id as u64))
    })
    .collect()
}

#[tokio::test]
async fn a_bad_row_gives_a_clear_error_and_the_rest_of_its_batch_goes_in() {
    let server = ClickHouse::start();
    server.query("CREATE TABLE t (id Int64, level UInt8) ENGINE = MergeTree ORDER BY id");
    let (mut tx, source) = memory::channel(4);
    let (ack, outcome) = Ack::channel();
    tx.send(Batch::with_ack(levels(0..10, Some(3)), ack))
        .await
        .unwrap();
    tx.close().await.unwrap();

    let sink = ClickHouseSink::new(common::config(&server, "t")).unwrap();
    let err = Pipeline::new(source).to(sink).run().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "clickhouse sink: rejected record #3: column `level` (UInt8): 300 is out of the UInt8 range"
    );
    assert!(matches!(outcome.await, AckStatus::Rejected(_)));
    assert_eq!(ids_in(&server, "t"), vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
}

#[tokio::test]
async fn with_the_skip_policy_bad_rows_are_counted_and_the_stream_goes_on() {
    let server = ClickHouse::start();
    server.query("CREATE TABLE t (id Int64, level UInt8) ENGINE = MergeTree ORDER BY id");
    let (mut tx, source) = memory::channel(4);
    tx.send(Batch::new(levels(0..10, Some(3)))).await.unwrap();
    tx.send(Batch::new(levels(10..20, Some(15)))).await.unwrap();
    tx.send(Batch::new(levels(20..30, None))).await.unwrap();
    tx.close().await.unwrap();

    let sink = ClickHouseSink::new(common::config(&server, "t").batch_count(10)).unwrap();
    let report = Pipeline::new(source)
        .to(sink)
        .on_bad_data(BadDataPolicy::Skip)
        .run()
        .await
        .unwrap();
    assert_eq!(report.metrics.batches_rejected, 2);
    assert_eq!(report.metrics.batches_delivered, 1);
    let expected: Vec<i64> = (0..30).filter(|i| *i != 3 && *i != 15).collect();
    assert_eq!(ids_in(&server, "t"), expected);
}

#[tokio::test]
async fn clickhouse_refusing_data_rejects_the_batch_with_its_message() {
    let server = ClickHouse::start();
    // The server checks this, not the sink: `throwIf` fails the insert.
    server.query(
        "CREATE TABLE t (id Int64, level Int64, checked UInt8 MATERIALIZED throwIf(level > 100)) \
         ENGINE = MergeTree ORDER BY id",
    );
    let (mut tx, source) = memory::channel(4);
    let (bad_ack, bad) = Ack::channel();
    let (good_ack, good) = Ack::channel();
    tx.send(Batch::with_ack(levels(0..5, Some(2)), bad_ack))
        .await
        .unwrap();
    tx.send(Batch::with_ack(levels(5..10, None), good_ack))
        .await
        .unwrap();
    tx.close().await.unwrap();

    let sink = ClickHouseSink::new(common::config(&server, "t").batch_count(5)).unwrap();
    Pipeline::new(source)
        .to(sink)
        .on_bad_data(BadDataPolicy::Skip)
        .run()
        .await
        .unwrap();
    match bad.await {
        AckStatus::Rejected(e) => assert_eq!(
            e.to_string(),
            "clickhouse sink: rejected insert of 5 rows: \
             Code: 395. DB::Exception: Value passed to 'throwIf' function is non zero"
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(good.await.is_delivered());
    assert_eq!(
        ids_in(&server, "t"),
        vec![5, 6, 7, 8, 9],
        "the refused insert left nothing"
    );
}

/// A loopback proxy to ClickHouse that, once armed, forwards an INSERT,
/// lets the server answer, and cuts the connection before the answer
/// reaches the client.
struct AnswerEater {
    port: u16,
    armed: Arc<AtomicBool>,
    eaten: Arc<AtomicUsize>,
}

impl AnswerEater {
    async fn start(upstream: u16) -> AnswerEater {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(true));
        let eaten = Arc::new(AtomicUsize::new(0));
        let (armed2, eaten2) = (armed.clone(), eaten.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                tokio::spawn(relay(client, server, armed2.clone(), eaten2.clone()));
            }
        });
        AnswerEater { port, armed, eaten }
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<AtomicBool>,
    eaten: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let insert_seen = Arc::new(AtomicBool::new(false));
    let seen = insert_seen.clone();
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if buf[..n].windows(12).any(|w| w == b"query=INSERT") {
                seen.store(true, Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // HTTP/1.1 without pipelining: an answer arriving after an INSERT
        // was sent is that INSERT's answer.
        if insert_seen.load(Ordering::SeqCst) && armed.swap(false, Ordering::SeqCst) {
            eaten.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

#[tokio::test]
async fn an_insert_whose_answer_was_lost_is_not_repeated() {
    let server = ClickHouse::start();
    server.query("CREATE TABLE t (id Int64, name String) ENGINE = MergeTree ORDER BY id");
    let proxy = AnswerEater::start(server.http_port()).await;
    let config = common::config(&server, "t");
    let config = sink_clickhouse::ClickHouseConfig {
        endpoints: vec![Endpoint::http("127.0.0.1", proxy.port)],
        ..config
    };
    let mut sink = ClickHouseSink::new(config).unwrap();
    let schema = common::id_schema();
    let records: Vec<Record> = (0..50)
        .map(|id| {
            Record::new(
                schema.clone(),
                vec![Value::Int64(id), Value::String(format!("n{id}"))],
            )
        })
        .collect();
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(records, ack)).await.unwrap();
    sink.flush().await.unwrap();
    assert!(outcome.await.is_delivered());
    assert_eq!(
        proxy.eaten.load(Ordering::SeqCst),
        1,
        "the answer was cut off"
    );
    assert!(!proxy.armed.load(Ordering::SeqCst));
    // Once, not twice: the sink found the insert in the query log.
    assert_eq!(ids_in(&server, "t"), (0..50).collect::<Vec<_>>());
    server.query("SYSTEM FLUSH LOGS");
    assert_eq!(
        server.query(
            "SELECT count() FROM system.query_log WHERE type = 2 AND query LIKE 'INSERT INTO%'"
        ),
        "1"
    );
}

#[tokio::test]
async fn a_dropped_table_stops_the_pipeline_with_clickhouses_message() {
    let server = ClickHouse::start();
    server.query("CREATE TABLE t (id Int64, name String) ENGINE = MergeTree ORDER BY id");
    let (source, outcomes) = IdSource::new(100_000, 10, Duration::from_millis(10));
    let sink = ClickHouseSink::new(common::config(&server, "t").batch_count(10)).unwrap();
    let pipeline = Pipeline::new(source).to(sink).spawn();
    while outcomes.lock().unwrap().delivered.len() < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.query("DROP TABLE t");
    let err = tokio::time::timeout(Duration::from_secs(30), pipeline.join())
        .await
        .expect("the pipeline stops")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "clickhouse sink: insert of 10 rows: Code: 60. DB::Exception: Table default.t doesn't exist."
    );
    assert!(!err.is_retryable());
    let outcomes = outcomes.lock().unwrap();
    assert!(
        !outcomes.failed.is_empty(),
        "the refused batch is to be delivered again"
    );
    assert!(
        outcomes.rejected.is_empty(),
        "a missing table is not bad data"
    );
}

#[tokio::test]
async fn an_unreachable_host_is_skipped() {
    let server = ClickHouse::start();
    server.query("CREATE TABLE t (id Int64, name String) ENGINE = MergeTree ORDER BY id");
    let dead = testkit::free_port();
    let props = Properties::from_pairs([
        ("table_name", "t".to_owned()),
        (
            "hosts",
            format!("127.0.0.1:{dead}, 127.0.0.1:{}", server.http_port()),
        ),
    ]);
    let (source, outcomes) = IdSource::new(200, 20, Duration::ZERO);
    let report = Pipeline::new(source)
        .to(ClickHouseSink::from_properties(&props).unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(report.metrics.records_out, 200);
    assert_eq!(outcomes.lock().unwrap().delivered.len(), 200);
    assert_eq!(ids_in(&server, "t"), (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn batches_larger_than_batch_count_become_several_inserts_sharing_the_ack() {
    let server = ClickHouse::start();
    server.query("CREATE TABLE t (id Int64, level UInt8) ENGINE = MergeTree ORDER BY id");
    let mut sink = ClickHouseSink::new(common::config(&server, "t").batch_count(4)).unwrap();
    let (ack, outcome) = Ack::channel();
    sink.send(Batch::with_ack(levels(0..10, None), ack))
        .await
        .unwrap();
    sink.close().await.unwrap();
    assert!(outcome.await.is_delivered());
    let mut sizes = common::insert_sizes(&server, "t");
    sizes.sort_unstable();
    assert_eq!(sizes, vec![2, 4, 4]);
}
