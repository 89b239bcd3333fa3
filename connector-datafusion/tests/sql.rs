//! SQL over a generator source: filters, projections and aggregates give
//! the same answers as the same computation in plain Rust over the same
//! seeded records; bounded sources end the query; unbounded ones stream.

mod common;

use std::collections::BTreeMap;

use common::{close, f64_of, generate, iot, query, str_of};
use connector_core::Value;
use connector_datafusion::{SessionContextExt, SourceTable};
use datafusion::prelude::SessionContext;
use source_generator::GeneratorSource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_and_projection_match_plain_rust() {
    let config = iot(7, 20_000);
    let expected_records = generate(config.clone()).await;
    let ctx = SessionContext::new();
    ctx.register_source("iot", GeneratorSource::new(config))
        .await
        .unwrap();

    let got = query(
        &ctx,
        "SELECT device, number, number * 2 AS doubled FROM iot \
         WHERE number > 75.5 AND device <> 'device_2'",
    )
    .await;

    let mut expected: Vec<(String, f64)> = expected_records
        .iter()
        .filter(|r| f64_of(r, "number") > 75.5 && str_of(r, "device") != "device_2")
        .map(|r| (str_of(r, "device").to_owned(), f64_of(r, "number")))
        .collect();
    let mut got_pairs: Vec<(String, f64)> = got
        .iter()
        .map(|r| {
            assert_eq!(f64_of(r, "doubled"), f64_of(r, "number") * 2.0);
            assert_eq!(r.schema.len(), 3, "only the projected columns");
            (str_of(r, "device").to_owned(), f64_of(r, "number"))
        })
        .collect();
    let key = |p: &(String, f64)| (p.0.clone(), p.1.to_bits());
    expected.sort_by_key(key);
    got_pairs.sort_by_key(key);
    assert!(expected.len() > 3_000, "the filter keeps a good share");
    assert_eq!(got_pairs, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_match_plain_rust() {
    let config = iot(42, 50_000);
    let records = generate(config.clone()).await;
    let ctx = SessionContext::new();
    ctx.register_source("iot", GeneratorSource::new(config))
        .await
        .unwrap();

    let got = query(
        &ctx,
        "SELECT device, count(*) AS n, avg(number) AS avg, min(number) AS min, \
         max(number) AS max, sum(number) AS sum \
         FROM iot GROUP BY device ORDER BY device",
    )
    .await;

    #[derive(Default)]
    struct Agg {
        n: i64,
        sum: f64,
        min: f64,
        max: f64,
    }
    let mut expected: BTreeMap<String, Agg> = BTreeMap::new();
    for r in &records {
        let x = f64_of(r, "number");
        let a = expected
            .entry(str_of(r, "device").to_owned())
            .or_insert(Agg {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                ..Agg::default()
            });
        a.n += 1;
        a.sum += x;
        a.min = a.min.min(x);
        a.max = a.max.max(x);
    }
    assert_eq!(got.len(), expected.len());
    for (row, (device, a)) in got.iter().zip(&expected) {
        assert_eq!(str_of(row, "device"), device);
        assert_eq!(row.get("n"), Some(&Value::Int64(a.n)), "{device}");
        assert_eq!(f64_of(row, "min"), a.min, "{device}");
        assert_eq!(f64_of(row, "max"), a.max, "{device}");
        assert!(close(f64_of(row, "sum"), a.sum), "{device}");
        assert!(close(f64_of(row, "avg"), a.sum / a.n as f64), "{device}");
    }
    assert_eq!(
        got.iter()
            .map(|r| r.get("n").unwrap().as_i64().unwrap())
            .sum::<i64>(),
        50_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_utc_instants_in_sql() {
    let config = iot(3, 5_000);
    let records = generate(config.clone()).await;
    let ctx = SessionContext::new();
    let table = ctx
        .register_source("iot", GeneratorSource::new(config))
        .await
        .unwrap();
    assert_eq!(
        table
            .arrow_schema()
            .field_with_name("time")
            .unwrap()
            .data_type()
            .to_string(),
        "Timestamp(µs, \"+00:00\")"
    );

    let got = query(
        &ctx,
        "SELECT count(*) AS recent, min(time) AS first, max(time) AS last, \
         count(DISTINCT date_trunc('day', time)) AS days \
         FROM iot WHERE time > now() - INTERVAL '1 hour' AND time < now() + INTERVAL '1 hour' \
         AND time > '2024-01-01T00:00:00+08:00'",
    )
    .await;
    assert_eq!(got[0].get("recent"), Some(&Value::Int64(5_000)));
    let first = got[0]
        .get("first")
        .and_then(Value::as_timestamp_micros)
        .unwrap();
    let last = got[0]
        .get("last")
        .and_then(Value::as_timestamp_micros)
        .unwrap();
    let generated: Vec<i64> = records
        .iter()
        .map(|r| r.get("time").and_then(Value::as_timestamp_micros).unwrap())
        .collect();
    // `now()` is the statement's start; the stream is generated after it,
    // so the window reaches past it. Another run of the generator: same
    // values, its own clock.
    assert!(first <= last);
    assert!(
        last - first
            <= generated.iter().max().unwrap() - generated.iter().min().unwrap() + 1_000_000
    );
    assert!(matches!(got[0].get("days"), Some(Value::Int64(1 | 2))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbounded_source_streams_and_continues_where_a_query_stopped() {
    // No count: the generator never ends.
    let config = common::iot(11, 0);
    let config = source_generator::GeneratorConfig {
        count: None,
        batch_size: 100,
        ..config
    };
    let plain = generate(source_generator::GeneratorConfig {
        count: Some(300),
        ..config.clone()
    })
    .await;
    let table = SourceTable::builder(GeneratorSource::new(config))
        .unbounded(true)
        .build()
        .await
        .unwrap();
    let ctx = SessionContext::new();
    ctx.register_source_table("live", &table).unwrap();

    let numbers = |rows: &[connector_core::Record]| {
        rows.iter().map(|r| f64_of(r, "number")).collect::<Vec<_>>()
    };
    let first = query(&ctx, "SELECT number FROM live LIMIT 5").await;
    assert_eq!(numbers(&first), numbers(&plain[..5]));
    // The first query stopped inside batch 1; the live stream goes on from batch 2.
    let second = query(&ctx, "SELECT number FROM live LIMIT 5").await;
    assert_eq!(numbers(&second), numbers(&plain[100..105]));

    // DataFusion refuses to wait for the end of an endless stream.
    let err = ctx
        .sql("SELECT device, count(*) FROM live GROUP BY device")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.to_lowercase().contains("unbounded") || err.contains("infinite"),
        "{err}"
    );
}
