//! What queries do with the acks of source batches: a plain query delivers
//! what it consumed and fails what it did not; an INSERT into a sink table
//! resolves the source's acks only with the sink's outcome. Bad records,
//! changelogs, schemaless sources and a second reader of a live stream.

mod common;

use std::sync::{Arc, Mutex};

use common::{Extra, NumberedSource, delivered, failed, outcomes, query};
use connector_core::memory::{CollectSink, Outcome};
use connector_core::{DataType, Error, Field, Schema, Value};
use connector_datafusion::{BadRecordPolicy, SessionContextExt, SourceTable};
use datafusion::prelude::SessionContext;

fn n_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64)]))
}

async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match ctx.sql(sql).await {
        Ok(df) => df.collect().await.unwrap_err().to_string(),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_delivers_the_batches_it_consumed() {
    let (source, acks) = NumberedSource::new(100, 10);
    let ctx = SessionContext::new();
    ctx.register_source("t", source).await.unwrap();
    let rows = query(&ctx, "SELECT sum(n) AS s, count(*) AS c FROM t").await;
    assert_eq!(rows[0].get("s"), Some(&Value::Int64(4950)));
    assert_eq!(rows[0].get("c"), Some(&Value::Int64(100)));
    let list = outcomes(&acks, 10).await;
    assert_eq!(delivered(&list), (0..10).collect::<Vec<_>>(), "{list:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_fails_the_batch_it_stopped_in() {
    let (source, acks) = NumberedSource::new(100, 10);
    let ctx = SessionContext::new();
    ctx.register_source("t", source).await.unwrap();
    let rows = query(&ctx, "SELECT n FROM t LIMIT 15").await;
    assert_eq!(rows.len(), 15);
    let list = outcomes(&acks, 2).await;
    assert_eq!(delivered(&list), vec![0], "batch 0 was consumed");
    assert_eq!(
        failed(&list),
        vec![1],
        "batch 1 was cut short: the source delivers it again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_resolves_source_acks_only_after_the_sink_delivered() {
    let (source, acks) = NumberedSource::new(1_000, 100);
    let seen = acks.clone();
    let early = Arc::new(Mutex::new(Vec::new()));
    let early_seen = early.clone();
    // The sink holds every batch until its flush; while it does, no source
    // batch may count as delivered.
    let (sink, collected) = CollectSink::new();
    let sink = sink.with_outcome(move |_| {
        early_seen
            .lock()
            .unwrap()
            .extend(delivered(&seen.lock().unwrap()));
        Outcome::Hold
    });
    let ctx = SessionContext::new();
    ctx.register_source("numbers", source).await.unwrap();
    ctx.register_sink("out", sink, n_schema()).unwrap();

    let result = query(
        &ctx,
        "INSERT INTO out SELECT n FROM numbers WHERE n % 2 = 0",
    )
    .await;
    assert_eq!(result[0].get("count"), Some(&Value::Int64(500)));
    assert_eq!(collected.len(), 500);
    assert!(
        early.lock().unwrap().is_empty(),
        "source acks resolved before the sink delivered"
    );
    let list = outcomes(&acks, 10).await;
    assert_eq!(delivered(&list), (0..10).collect::<Vec<_>>(), "{list:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_from_a_partitioned_table_holds_every_partitions_acks() {
    // Several partitions are merged before the sink; the statement's scope
    // must hold the acks of all of them until the sink delivered, however
    // early the merge finishes reading its inputs.
    for _ in 0..10 {
        let (a, acks_a) = NumberedSource::new(300, 30);
        let (b, acks_b) = NumberedSource::new(300, 30);
        let table = SourceTable::partitioned(vec![Box::new(a), Box::new(b)])
            .build()
            .await
            .unwrap();
        let (sink, collected) = CollectSink::new();
        let sink = sink.with_outcome(|_| Outcome::Hold);
        let ctx = SessionContext::new();
        ctx.register_source_table("numbers", &table).unwrap();
        ctx.register_sink("out", sink, n_schema()).unwrap();
        let result = query(&ctx, "INSERT INTO out SELECT n FROM numbers WHERE n >= 0").await;
        assert_eq!(result[0].get("count"), Some(&Value::Int64(600)));
        assert_eq!(collected.len(), 600);
        for acks in [acks_a, acks_b] {
            let list = outcomes(&acks, 10).await;
            assert_eq!(delivered(&list), (0..10).collect::<Vec<_>>(), "{list:?}");
        }
    }
}

/// A sink that delivers its first batch and then does `then` to the next.
fn second_batch(then: fn() -> Outcome) -> CollectSink {
    let mut n = 0;
    CollectSink::new().0.with_outcome(move |_| {
        n += 1;
        if n == 1 { Outcome::Deliver } else { then() }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_fails_the_statement_and_the_source_acks() {
    for (then, text) in [
        (
            (|| Outcome::Fail(Error::transient("collect sink", "write", "disk on fire")))
                as fn() -> Outcome,
            "collect sink: write: disk on fire",
        ),
        (
            || {
                Outcome::Reject(Error::rejected(
                    "collect sink",
                    "batch",
                    "column n is not a number",
                ))
            },
            "collect sink: rejected batch: column n is not a number",
        ),
    ] {
        let (source, acks) = NumberedSource::new(1_000, 100);
        let ctx = SessionContext::new();
        ctx.register_source("numbers", source).await.unwrap();
        let table = ctx
            .register_sink("out", second_batch(then), n_schema())
            .unwrap();
        let err = error_of(&ctx, "INSERT INTO out SELECT n FROM numbers").await;
        assert!(err.contains(text), "{err}");
        // The statement failed after the sink took batch 0: nothing the
        // statement read counts as delivered, the source reads it again.
        let produced = outcomes(&acks, 2).await;
        assert!(produced.len() >= 2, "{produced:?}");
        assert!(delivered(&produced).is_empty(), "{produced:?}");
        assert_eq!(failed(&produced).len(), produced.len(), "{produced:?}");
        assert_eq!(table.rows_written(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_fail_the_query_or_are_skipped() {
    for (extra, text) in [
        (
            Extra::Undecodable,
            "numbered source: cannot decode json at line 1 column 2: expected value",
        ),
        (
            Extra::WrongType,
            "numbered source: cannot encode record at row 5 (record #15) as arrow: \
             column `n`: expected int64, found string \"seven\"",
        ),
    ] {
        let (source, acks) = NumberedSource::new(30, 10);
        let ctx = SessionContext::new();
        ctx.register_source("t", source.with_extra(extra, 1))
            .await
            .unwrap();
        let err = error_of(&ctx, "SELECT n FROM t").await;
        assert!(err.contains(text), "{extra:?}: {err}");
        let list = outcomes(&acks, 2).await;
        assert_eq!(
            failed(&list),
            vec![1],
            "{extra:?}: the bad batch is not delivered"
        );

        let (source, acks) = NumberedSource::new(30, 10);
        let table = SourceTable::builder(source.with_extra(extra, 1))
            .bad_records(BadRecordPolicy::Skip)
            .build()
            .await
            .unwrap();
        ctx.deregister_table("t").unwrap();
        ctx.register_source_table("t", &table).unwrap();
        let rows = query(&ctx, "SELECT count(*) AS c FROM t").await;
        let kept = if extra == Extra::WrongType { 29 } else { 30 };
        assert_eq!(rows[0].get("c"), Some(&Value::Int64(kept)), "{extra:?}");
        assert_eq!(table.bad_records(), 1);
        let list = outcomes(&acks, 3).await;
        assert_eq!(delivered(&list), vec![0, 1, 2], "{extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changelogs_need_the_change_kind_column() {
    let (source, _) = NumberedSource::new(20, 10);
    let ctx = SessionContext::new();
    ctx.register_source("t", source.with_extra(Extra::Delete, 1))
        .await
        .unwrap();
    let err = error_of(&ctx, "SELECT n FROM t").await;
    assert!(err.contains("change kind is `delete`"), "{err}");

    let (source, _) = NumberedSource::new(20, 10);
    let table = SourceTable::builder(source.with_extra(Extra::Delete, 1))
        .change_kind_column()
        .build()
        .await
        .unwrap();
    ctx.deregister_table("t").unwrap();
    ctx.register_source_table("t", &table).unwrap();
    let rows = query(
        &ctx,
        "SELECT n, _change_kind AS kind FROM t WHERE _change_kind <> 'insert'",
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get("n"), Some(&Value::Int64(10)));
    assert_eq!(rows[0].get("kind"), Some(&Value::from("delete")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_has_one_reader_at_a_time() {
    let (source, _) = NumberedSource::new(100, 10);
    let ctx = SessionContext::new();
    ctx.register_source("t", source).await.unwrap();
    let err = error_of(&ctx, "SELECT a.n FROM t a JOIN t b ON a.n = b.n").await;
    assert!(err.contains("already being read by another query"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schemaless_source_gets_a_schema_from_its_first_batch() {
    use connector_core::format::json::JsonDecoder;
    use connector_core::format::{Decoder, MessageMeta};
    use connector_core::{Batch, Sink, memory};

    let (mut tx, rx) = memory::channel(4);
    let mut decoder = JsonDecoder::new();
    let batch = |decoder: &mut JsonDecoder, lines: &[&str]| {
        let mut records = Vec::new();
        for line in lines {
            let _ = decoder
                .decode(line.as_bytes(), &MessageMeta::default(), &mut records)
                .unwrap();
        }
        Batch::new(records)
    };
    tx.send(batch(
        &mut decoder,
        &[
            r#"{"user": "ada", "clicks": 3, "meta": {"ua": "firefox"}}"#,
            r#"{"user": "bob", "clicks": 4.5, "extra": true}"#,
        ],
    ))
    .await
    .unwrap();
    tx.send(batch(
        &mut decoder,
        &[r#"{"clicks": 1, "user": "cy", "unknown": 1}"#],
    ))
    .await
    .unwrap();
    tx.close().await.unwrap();

    let ctx = SessionContext::new();
    let table = ctx.register_source("clicks", rx).await.unwrap();
    assert_eq!(
        table.schema().to_string(),
        "(user string, clicks float64, meta struct<ua string>, extra boolean)"
    );
    let rows = query(
        &ctx,
        "SELECT user, clicks, meta['ua'] AS ua, extra FROM clicks ORDER BY user",
    )
    .await;
    let values: Vec<Vec<Value>> = rows.into_iter().map(|r| r.values).collect();
    assert_eq!(
        values,
        vec![
            vec![
                "ada".into(),
                Value::Float64(3.0),
                "firefox".into(),
                Value::Null
            ],
            vec![
                "bob".into(),
                Value::Float64(4.5),
                Value::Null,
                Value::Boolean(true)
            ],
            vec!["cy".into(), Value::Float64(1.0), Value::Null, Value::Null],
        ]
    );
}
