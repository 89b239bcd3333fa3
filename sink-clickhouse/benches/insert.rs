//! Inserting 1M generated devops rows into a local ClickHouse: our sink
//! against `clickhouse-client --query "INSERT ... FORMAT JSONEachRow"` of
//! the same rows, in the same run, against the same server.
//!
//! `cargo bench -p sink-clickhouse --bench insert`
//!
//! - `clickhouse_insert_1m/clickhouse_client_jsoneachrow`: the rows as a
//!   JSONEachRow file piped into `clickhouse-client` (process start, JSON
//!   parsing, native protocol), the baseline.
//! - `clickhouse_insert_1m/sink_rowbinary`: the same rows as records sent
//!   to a new `ClickHouseSink` (connect, read the table, encode RowBinary,
//!   HTTP inserts of `batch_count` = 100 000 rows, 2 in flight) until every
//!   ack is resolved. Goal: at least as many rows/s as the client.
//!
//! Each iteration starts from an empty table; both tables are checked to
//! hold exactly the 1M rows at the end.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use connector_core::{Ack, Batch, Record, Sink, Source, Value};
use criterion::{BatchSize, Criterion, Throughput};
use sink_clickhouse::{ClickHouseConfig, ClickHouseSink, Endpoint};
use source_generator::{GeneratorConfig, GeneratorSource, Template};
use testkit::clickhouse::ClickHouse;

const ROWS: usize = 1_000_000;
const BATCH: usize = 100_000;
const GROUP: &str = "clickhouse_insert_1m";

fn table_sql(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (hostname String, region String, rack String, \
         usage_user Float64, usage_system Float64, time DateTime('UTC')) \
         ENGINE = MergeTree ORDER BY (hostname, time)"
    )
}

/// The generator's devops records, seeded so every run inserts the same rows.
fn generate(rt: &tokio::runtime::Runtime) -> Vec<Record> {
    rt.block_on(async {
        let mut source = GeneratorSource::new(
            GeneratorConfig::new(Template::Devops)
                .interval(Duration::ZERO)
                .seed(7)
                .count(ROWS as u64),
        );
        let mut records = Vec::with_capacity(ROWS);
        while let Some(batch) = source.next_batch().await.unwrap() {
            records.extend(batch.records);
        }
        records
    })
}

/// The same rows as JSONEachRow, times as `YYYY-MM-DD hh:mm:ss` (UTC).
fn json_lines(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 160);
    for r in records {
        let text = |i: usize| r.values[i].as_str().unwrap_or_default();
        let float = |i: usize| r.values[i].as_f64().unwrap_or_default();
        let time = r.values[5].as_timestamp_micros().unwrap_or_default();
        let time = chrono::DateTime::from_timestamp_micros(time)
            .unwrap_or_default()
            .format("%Y-%m-%d %H:%M:%S");
        writeln!(
            out,
            r#"{{"hostname":"{}","region":"{}","rack":"{}","usage_user":{},"usage_system":{},"time":"{time}"}}"#,
            text(0),
            text(1),
            text(2),
            float(3),
            float(4),
        )
        .unwrap();
    }
    out
}

fn main() {
    let server = ClickHouse::start();
    server.query(&table_sql("by_client"));
    server.query(&table_sql("by_sink"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let records = generate(&rt);
    assert!(matches!(records[0].values[3], Value::Float64(_)));
    let json = json_lines(&records);
    let json_path = server.data_dir().join("../rows.jsonl");
    std::fs::write(&json_path, &json).unwrap();

    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(ROWS as u64));

    group.bench_function("clickhouse_client_jsoneachrow", |b| {
        b.iter_batched(
            || {
                server.query("TRUNCATE TABLE by_client");
                std::fs::File::open(&json_path).unwrap()
            },
            |file| {
                let status = server
                    .client_command()
                    .args(["--query", "INSERT INTO by_client FORMAT JSONEachRow"])
                    .stdin(Stdio::from(file))
                    .status()
                    .unwrap();
                assert!(status.success());
            },
            BatchSize::PerIteration,
        )
    });

    let config = ClickHouseConfig::new(
        "by_sink",
        vec![Endpoint::http("127.0.0.1", server.http_port())],
    )
    .batch_count(BATCH);
    group.bench_function("sink_rowbinary", |b| {
        b.iter_batched(
            || {
                server.query("TRUNCATE TABLE by_sink");
                let batches: Vec<(Batch, connector_core::AckReceiver)> = records
                    .chunks(BATCH)
                    .map(|chunk| {
                        let (ack, outcome) = Ack::channel();
                        (Batch::with_ack(chunk.to_vec(), ack), outcome)
                    })
                    .collect();
                batches
            },
            |batches| {
                rt.block_on(async {
                    let mut sink = ClickHouseSink::new(config.clone()).unwrap();
                    let mut outcomes = Vec::with_capacity(batches.len());
                    for (batch, outcome) in batches {
                        sink.send(batch).await.unwrap();
                        outcomes.push(outcome);
                    }
                    sink.close().await.unwrap();
                    for outcome in outcomes {
                        assert!(outcome.await.is_delivered());
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    assert_eq!(
        server.query("SELECT count() FROM by_client"),
        ROWS.to_string()
    );
    assert_eq!(
        server.query("SELECT count() FROM by_sink"),
        ROWS.to_string()
    );
    // Same rows both ways. Text columns and times compare exactly; floats
    // by their sums, because 18.16 parses float text not quite exactly.
    let digest = |table: &str| {
        server.query(&format!(
            "SELECT sum(cityHash64(hostname, region, rack, time)), \
             round(sum(usage_user), 3), round(sum(usage_system), 3) FROM {table}"
        ))
    };
    assert_eq!(
        digest("by_client"),
        digest("by_sink"),
        "both tables hold the same rows"
    );

    criterion.final_summary();
    testkit::bench::report_ratio(GROUP, "sink_rowbinary", "clickhouse_client_jsoneachrow");
}
