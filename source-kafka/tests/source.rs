//! The Kafka source against librdkafka's mock cluster (a real Kafka protocol
//! implementation in the test process): every data type, message metadata,
//! resuming from committed offsets, redelivery of failed batches, commits
//! held back by an undelivered batch, and bad data.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{WAIT, collect, expect_records, init_logs, numbers, props};
use connector_core::memory::{CollectSink, Outcome};
use connector_core::{BadDataPolicy, ChangeKind, Error, Header, Pipeline, Position, Source, Value};
use kafka_common::testing::{MockKafka, TestMessage};
use source_kafka::KafkaSource;

fn json(n: i64) -> TestMessage {
    TestMessage::new(format!(r#"{{"n":{n}}}"#))
}

#[tokio::test]
async fn every_data_type_reaches_the_sink() {
    init_logs();
    let kafka = MockKafka::start();
    // data_type, payload, extra properties
    type Case = (
        &'static str,
        Vec<u8>,
        &'static [(&'static str, &'static str)],
    );
    let cases: [Case; 4] = [
        (
            "json",
            br#"{"id":7,"name":"ada","tags":["x"],"ok":true}"#.to_vec(),
            &[],
        ),
        ("text", "héllo wörld".as_bytes().to_vec(), &[]),
        ("binary", vec![0, 159, 146, 150, 255], &[]),
        (
            "delimited",
            b"7,ada,\"a, b\"".to_vec(),
            &[("fields", "id,name,note")],
        ),
    ];
    for (data_type, payload, extra) in cases {
        let topic = format!("topic-{data_type}");
        kafka.create_topic(&topic, 2);
        kafka.produce(&topic, (0..20).map(|_| TestMessage::new(payload.clone())));
        let mut p = props(&kafka, &topic, data_type);
        for (k, v) in extra {
            p.set(*k, *v);
        }
        let (handle, collected, _) = collect(KafkaSource::from_properties(&p).unwrap());
        expect_records(&collected, 20).await;
        handle.stop();
        let report = handle.join().await.unwrap();
        assert_eq!(report.metrics.records_out, 20, "{data_type}");
        let r = &collected.records()[0];
        match data_type {
            "json" => {
                assert_eq!(r.get("id"), Some(&Value::Int64(7)));
                assert_eq!(r.get("name").and_then(Value::as_str), Some("ada"));
                assert_eq!(r.get("ok"), Some(&Value::Boolean(true)));
                assert_eq!(r.get_path("tags.0").and_then(Value::as_str), Some("x"));
            }
            "text" => assert_eq!(r.get("raw").and_then(Value::as_str), Some("héllo wörld")),
            "binary" => assert_eq!(
                r.get("self").and_then(Value::as_bytes),
                Some(&[0, 159, 146, 150, 255][..])
            ),
            "delimited" => {
                assert_eq!(r.get("id").and_then(Value::as_str), Some("7"));
                assert_eq!(r.get("note").and_then(Value::as_str), Some("a, b"));
            }
            _ => unreachable!(),
        }
        assert!(
            collected
                .records()
                .iter()
                .all(|r| r.kind == ChangeKind::Insert)
        );
    }
}

#[tokio::test]
async fn records_carry_key_timestamp_headers_and_position() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("meta", 3);
    kafka.produce("meta", [json(0).partition(2)]);
    kafka.produce(
        "meta",
        [json(1)
            .partition(2)
            .key("user-1")
            .timestamp(1_700_000_000_123)
            .header("trace", Some(b"abc"))
            .header("empty", None)],
    );
    let (handle, collected, _) =
        collect(KafkaSource::from_properties(&props(&kafka, "meta", "json")).unwrap());
    expect_records(&collected, 2).await;
    handle.stop();
    handle.join().await.unwrap();
    let records = collected.records();
    let r = records
        .iter()
        .find(|r| r.get("n") == Some(&Value::Int64(1)))
        .unwrap();
    assert_eq!(r.key.as_deref(), Some(&b"user-1"[..]));
    assert_eq!(r.timestamp, Some(1_700_000_000_123_000));
    assert_eq!(
        r.headers,
        vec![
            Header::new("trace", &b"abc"[..]),
            Header {
                name: "empty".into(),
                value: None
            }
        ]
    );
    assert_eq!(
        r.position,
        Some(Position::Offset {
            topic: "meta".into(),
            partition: 2,
            offset: 1
        })
    );
    let first = records
        .iter()
        .find(|r| r.get("n") == Some(&Value::Int64(0)))
        .unwrap();
    assert_eq!(first.key, None);
    assert!(first.headers.is_empty());
}

#[tokio::test]
async fn a_restart_resumes_from_the_committed_offsets() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("resume", 2);
    kafka.produce("resume", (0..300).map(json));
    let source_props = props(&kafka, "resume", "json").with("id", "resume-test");

    let source = KafkaSource::from_properties(&source_props).unwrap();
    assert_eq!(source.group(), "timeplus-source-resume-test");
    let (handle, collected, status) = collect(source);
    expect_records(&collected, 300).await;
    handle.stop();
    handle.join().await.unwrap();
    let committed = kafka.committed("timeplus-source-resume-test", "resume");
    assert_eq!(committed.values().sum::<i64>(), 300, "{committed:?}");
    assert_eq!(status.committed_offsets(), committed);

    kafka.produce("resume", (300..500).map(json));
    let (handle, collected, _) = collect(KafkaSource::from_properties(&source_props).unwrap());
    expect_records(&collected, 200).await;
    // Nothing more arrives: the first 300 are not read again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle.stop();
    handle.join().await.unwrap();
    let mut got = numbers(&collected.records());
    got.sort_unstable();
    assert_eq!(got, (300..500).collect::<Vec<_>>());
}

#[tokio::test]
async fn latest_starts_after_what_is_already_there() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("latest", 1);
    kafka.produce("latest", (0..50).map(json));
    let p = props(&kafka, "latest", "json").with("offset", "latest");
    let (handle, collected, status) = collect(KafkaSource::from_properties(&p).unwrap());
    common::eventually("the partition to be assigned", || {
        !status.assigned_partitions().is_empty()
    })
    .await;
    // The start position is resolved just after assignment; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    kafka.produce("latest", (50..60).map(json));
    expect_records(&collected, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.stop();
    handle.join().await.unwrap();
    assert_eq!(numbers(&collected.records()), (50..60).collect::<Vec<_>>());
}

#[tokio::test]
async fn failed_batches_are_read_again() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("redeliver", 2);
    kafka.produce(
        "redeliver",
        (0..400).map(|n| json(n).partition((n % 2) as i32)),
    );
    let mut failures = 0;
    let (sink, collected) = CollectSink::new();
    let sink = sink.with_outcome(move |_| {
        failures += 1;
        if failures <= 3 {
            Outcome::Fail(Error::transient(
                "test sink",
                "write",
                "destination unavailable",
            ))
        } else {
            Outcome::Deliver
        }
    });
    let source =
        KafkaSource::from_properties(&props(&kafka, "redeliver", "json").with("group", "g"))
            .unwrap();
    let handle = Pipeline::new(source).to(sink).spawn();
    expect_records(&collected, 400).await;
    common::eventually("commits to reach the end", || {
        kafka.committed("g", "redeliver").values().sum::<i64>() == 400
    })
    .await;
    handle.stop();
    let report = handle.join().await.unwrap();
    assert!(report.metrics.batches_failed >= 3, "{:?}", report.metrics);
    // Every record arrived, each partition in offset order.
    let records = collected.records();
    let mut got = numbers(&records);
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, (0..400).collect::<Vec<_>>());
    for partition in 0..2 {
        let offsets: Vec<i64> = records
            .iter()
            .filter_map(|r| match &r.position {
                Some(Position::Offset {
                    partition: p,
                    offset,
                    ..
                }) if *p == partition => Some(*offset),
                _ => None,
            })
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: {offsets:?}"
        );
    }
}

/// Resolving acks by hand: a batch that is not delivered holds back the
/// commits of the batches after it, even when those are delivered.
#[tokio::test]
async fn an_undelivered_batch_holds_back_later_commits() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("gap", 1);
    kafka.produce("gap", (0..30).map(json));
    let config = source_kafka::KafkaSourceConfig::from_properties(
        &props(&kafka, "gap", "json").with("group", "gap"),
    )
    .unwrap()
    .with_max_batch_messages(10)
    .with_commit_interval(Duration::ZERO);
    let mut source = KafkaSource::new(config).unwrap();
    let mut batches = Vec::new();
    let mut read = 0;
    while read < 30 {
        let batch = tokio::time::timeout(WAIT, source.next_batch())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        read += batch.len();
        batches.push(batch);
    }
    assert!(batches.len() >= 3);
    let first = batches.remove(0);
    for b in batches {
        b.delivered();
    }
    // Let the source act on the outcomes (next_batch is cancel-safe).
    let _ = tokio::time::timeout(Duration::from_secs(2), source.next_batch()).await;
    assert_eq!(
        kafka.committed("gap", "gap"),
        BTreeMap::new(),
        "nothing may be committed past the first batch"
    );

    first.delivered();
    let _ = tokio::time::timeout(Duration::from_secs(2), source.next_batch()).await;
    assert_eq!(kafka.committed("gap", "gap"), BTreeMap::from([(0, 30)]));
    source.close().await.unwrap();
}

/// A batch read by a cancelled `next_batch` is not lost.
#[tokio::test]
async fn next_batch_is_cancel_safe() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("cancel", 1);
    let p = props(&kafka, "cancel", "json").with("group", "cancel");
    let mut source = KafkaSource::from_properties(&p).unwrap();
    let status = source.status();
    // Join the group while nothing is there to read (the consumer is
    // polled, and so joins, only while `next_batch` runs).
    let deadline = tokio::time::Instant::now() + WAIT;
    while status.assigned_partitions().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no assignment");
        let waiting = tokio::time::timeout(Duration::from_millis(100), source.next_batch());
        assert!(waiting.await.is_err(), "nothing to read yet");
    }
    kafka.produce("cancel", (0..100).map(json));
    let mut got = Vec::new();
    while got.len() < 100 {
        // Very short deadlines cancel calls in the middle of their work.
        if let Ok(batch) =
            tokio::time::timeout(Duration::from_micros(50), source.next_batch()).await
        {
            let batch = batch.unwrap().unwrap();
            got.extend(numbers(&batch.records));
            batch.delivered();
        }
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    source.close().await.unwrap();
    assert_eq!(
        kafka.committed("cancel", "cancel"),
        BTreeMap::from([(0, 100)])
    );
}

fn bad_topic(kafka: &MockKafka, topic: &str) {
    kafka.create_topic(topic, 1);
    kafka.produce(
        topic,
        [
            TestMessage::new(r#"{"n":0}"#),
            TestMessage::new(r#"{"n":1"#),
            TestMessage::new(r#"{"n":2}"#),
            TestMessage::new(b"\xff\xfe{".to_vec()),
            TestMessage::new(r#"{"n":4}"#),
        ],
    );
}

#[tokio::test]
async fn bad_payloads_are_skipped_without_stopping_the_partition() {
    init_logs();
    let kafka = MockKafka::start();
    bad_topic(&kafka, "bad-skip");
    let source =
        KafkaSource::from_properties(&props(&kafka, "bad-skip", "json").with("group", "skip"))
            .unwrap();
    let (sink, collected) = CollectSink::new();
    let handle = Pipeline::new(source)
        .to(sink)
        .on_bad_data(BadDataPolicy::Skip)
        .spawn();
    expect_records(&collected, 3).await;
    common::eventually("commits past the bad records", || {
        kafka.committed("skip", "bad-skip") == BTreeMap::from([(0, 5)])
    })
    .await;
    kafka.produce("bad-skip", [json(5)]);
    expect_records(&collected, 4).await;
    handle.stop();
    let report = handle.join().await.unwrap();
    assert_eq!(numbers(&collected.records()), vec![0, 2, 4, 5]);
    assert_eq!(report.metrics.bad_records, 2);
}

#[tokio::test]
async fn bad_payloads_go_to_the_dead_letter_sink_with_their_position() {
    init_logs();
    let kafka = MockKafka::start();
    bad_topic(&kafka, "bad-dl");
    let source =
        KafkaSource::from_properties(&props(&kafka, "bad-dl", "json").with("group", "dl")).unwrap();
    let (sink, collected) = CollectSink::new();
    let (dead, dead_letters) = CollectSink::new();
    let handle = Pipeline::new(source).to(sink).dead_letter(dead).spawn();
    expect_records(&collected, 3).await;
    expect_records(&dead_letters, 2).await;
    handle.stop();
    handle.join().await.unwrap();
    let dead = dead_letters.records();
    let positions: Vec<&str> = dead
        .iter()
        .filter_map(|r| r.get("position").and_then(Value::as_str))
        .collect();
    assert_eq!(
        positions,
        vec![
            "topic bad-dl partition 0 offset 1",
            "topic bad-dl partition 0 offset 3"
        ]
    );
    let error = dead[0].get("error").and_then(Value::as_str).unwrap();
    assert!(
        error.starts_with("kafka source: cannot decode json at topic bad-dl partition 0 offset 1"),
        "{error}"
    );
    assert_eq!(
        dead[0].get("payload").and_then(Value::as_bytes),
        Some(&br#"{"n":1"#[..])
    );
    assert_eq!(kafka.committed("dl", "bad-dl"), BTreeMap::from([(0, 5)]));
}

#[tokio::test]
async fn the_fail_policy_stops_before_the_bad_record_and_commits_nothing_past_it() {
    init_logs();
    let kafka = MockKafka::start();
    bad_topic(&kafka, "bad-fail");
    let p = props(&kafka, "bad-fail", "json").with("group", "fail");
    let config = source_kafka::KafkaSourceConfig::from_properties(&p)
        .unwrap()
        .with_max_batch_messages(1);
    let (sink, collected) = CollectSink::new();
    let err = Pipeline::new(KafkaSource::new(config).unwrap())
        .to(sink)
        .on_bad_data(BadDataPolicy::Fail)
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "kafka source: cannot decode json at topic bad-fail partition 0 offset 1, line 1 column 6: truncated input: EOF while parsing an object"
    );
    assert_eq!(numbers(&collected.records()), vec![0]);
    // A restart meets the bad record again.
    assert_eq!(
        kafka.committed("fail", "bad-fail"),
        BTreeMap::from([(0, 1)])
    );
}

#[tokio::test]
async fn invalid_utf8_text_is_bad_data() {
    init_logs();
    let kafka = MockKafka::start();
    bad_topic(&kafka, "bad-text");
    let source =
        KafkaSource::from_properties(&props(&kafka, "bad-text", "text").with("group", "t"))
            .unwrap();
    let (sink, collected) = CollectSink::new();
    let (dead, dead_letters) = CollectSink::new();
    let handle = Pipeline::new(source).to(sink).dead_letter(dead).spawn();
    expect_records(&collected, 4).await;
    expect_records(&dead_letters, 1).await;
    handle.stop();
    handle.join().await.unwrap();
    let error = dead_letters.records()[0]
        .get("error")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    assert_eq!(
        error,
        "kafka source: cannot decode text at topic bad-text partition 0 offset 3, byte 0: invalid UTF-8"
    );
}

/// A decoder that must look something up (like an Avro decoder meeting a
/// new schema id) before it can decode: the message waits, in order.
struct LookupDecoder {
    known: std::collections::HashSet<u8>,
    wanted: Option<u8>,
    lookups: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl connector_core::format::Decoder for LookupDecoder {
    fn format(&self) -> &'static str {
        "lookup"
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _meta: &connector_core::format::MessageMeta<'_>,
        out: &mut Vec<connector_core::Record>,
    ) -> connector_core::Result<connector_core::format::Progress> {
        let id = payload[0];
        if !self.known.contains(&id) {
            self.wanted = Some(id);
            return Ok(connector_core::format::Progress::NeedsResolve);
        }
        let n: i64 = std::str::from_utf8(&payload[1..]).unwrap().parse().unwrap();
        out.push(connector_core::Record::from_pairs([
            ("n", Value::Int64(n)),
            ("id", Value::Int64(id as i64)),
        ]));
        Ok(connector_core::format::Progress::Done)
    }

    fn resolve(&mut self) -> futures::future::BoxFuture<'_, connector_core::Result<()>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(id) = self.wanted.take() {
                self.known.insert(id);
                self.lookups
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn messages_that_need_a_lookup_wait_for_it_in_order() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("lookup", 1);
    // Schema ids 1, 2 and 3 appear in turn.
    kafka.produce(
        "lookup",
        (0..300).map(|n| {
            let mut payload = vec![1 + (n / 100) as u8];
            payload.extend(n.to_string().bytes());
            TestMessage::new(payload)
        }),
    );
    let lookups = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = lookups.clone();
    let config = source_kafka::KafkaSourceConfig::from_properties(
        &props(&kafka, "lookup", "binary").with("group", "lookup"),
    )
    .unwrap();
    let source = KafkaSource::with_decoders(config, move || {
        Ok(Box::new(LookupDecoder {
            known: Default::default(),
            wanted: None,
            lookups: counter.clone(),
        }))
    });
    let (handle, collected, status) = collect(source);
    expect_records(&collected, 300).await;
    common::eventually("commits", || {
        status.committed_offsets() == BTreeMap::from([(0, 300)])
    })
    .await;
    handle.stop();
    handle.join().await.unwrap();
    assert_eq!(numbers(&collected.records()), (0..300).collect::<Vec<_>>());
    assert_eq!(lookups.load(std::sync::atomic::Ordering::Relaxed), 3);
}
