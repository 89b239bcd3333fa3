//! Crash test: a child process runs kafka source → file sink and is killed
//! with SIGKILL at random moments, several times, then restarted, against a
//! mock Kafka cluster hosted by this (parent) process, so the cluster and
//! its committed offsets outlive every child.
//!
//! At the end every produced record was written at least once, and the
//! records written twice are exactly those that were written but not yet
//! committed at each kill, which is never more than the batches in flight.
//!
//! This file is its own `main` (`harness = false`): run without the child
//! variables it is the parent; the parent starts itself again as the child.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use connector_core::{Batch, BatchLimits, Pipeline, Position, Result, Sink, Value};
use kafka_common::testing::{MockKafka, TestMessage};
use source_kafka::{KafkaSource, KafkaSourceConfig};

const TOPIC: &str = "crash";
const GROUP: &str = "crash-group";
const PARTITIONS: i32 = 4;
/// Messages per source batch and records per sink batch.
const BATCH: usize = 50;
/// Sink batches in flight and batches queued between source and sink.
const MAX_IN_FLIGHT: usize = 4;
const CHANNEL: usize = 2;
/// The most records a kill can repeat: every batch that can be in flight
/// (sent to the sink, queued, being read, being committed).
const IN_FLIGHT_BOUND: usize = (MAX_IN_FLIGHT + CHANNEL + 2) * BATCH;
const KILLS: usize = 6;

const ENV_BROKERS: &str = "KAFKA_CRASH_CHILD_BROKERS";
const ENV_OUTPUT: &str = "KAFKA_CRASH_CHILD_OUTPUT";

fn main() {
    if let (Ok(brokers), Ok(output)) = (std::env::var(ENV_BROKERS), std::env::var(ENV_OUTPUT)) {
        child(&brokers, Path::new(&output));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = "kill_and_restart_loses_nothing";
    if args.iter().any(|a| a == "--list") {
        println!("{name}: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !name.contains(filter.as_str())
    {
        println!("running 0 tests (filtered out: {name})");
        return;
    }
    println!("running 1 test\ntest {name} ...");
    parent();
    println!("test {name} ... ok");
}

/// The child: kafka source → file sink until killed.
fn child(brokers: &str, output: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config = KafkaSourceConfig::new(
            KafkaClientConfigOf::plaintext(brokers),
            TOPIC,
            source_kafka::StartOffset::Earliest,
            connector_core::format::FormatConfig::new(connector_core::format::DataFormat::JSON),
        )
        .with_group(GROUP)
        .with_max_batch_messages(BATCH)
        // Commit as soon as the previous commit is answered.
        .with_commit_interval(Duration::ZERO);
        // The dead child stays in the group until its session times out.
        config.client.options.extend([
            ("session.timeout.ms".to_owned(), "3000".to_owned()),
            ("heartbeat.interval.ms".to_owned(), "300".to_owned()),
        ]);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(output)
            .unwrap();
        let sink = FileSink { file };
        let result = Pipeline::new(KafkaSource::new(config).unwrap())
            .to(sink)
            .max_in_flight(MAX_IN_FLIGHT)
            .channel_capacity(CHANNEL)
            .run()
            .await;
        eprintln!("child pipeline ended: {result:?}");
    });
}

/// Client settings for plain TCP.
struct KafkaClientConfigOf;

impl KafkaClientConfigOf {
    fn plaintext(brokers: &str) -> kafka_common::KafkaClientConfig {
        kafka_common::KafkaClientConfig::new(brokers.split(',')).without_tls()
    }
}

/// Appends `partition offset n` per record, then acknowledges the batch;
/// a little slow, like a real destination, so that kills land mid-stream.
struct FileSink {
    file: std::fs::File,
}

#[async_trait]
impl Sink for FileSink {
    fn name(&self) -> &str {
        "file sink"
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: BATCH,
            max_wait: Duration::ZERO,
        }
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut text = String::new();
        for r in &batch.records {
            let Some(Position::Offset {
                partition, offset, ..
            }) = &r.position
            else {
                panic!("record without position");
            };
            let n = r.get("n").and_then(Value::as_i64).unwrap();
            text.push_str(&format!("{partition} {offset} {n}\n"));
        }
        // One write per batch; a kill cannot lose what the OS has.
        self.file.write_all(text.as_bytes()).unwrap();
        batch.delivered();
        Ok(())
    }
}

/// One line of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    partition: i32,
    offset: i64,
    n: i64,
}

/// The complete lines of the output (a line cut by a kill is not counted:
/// its batch was never acknowledged).
fn read_lines(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            let mut parts = l.split(' ').map(|p| p.parse::<i64>().unwrap());
            Line {
                partition: parts.next().unwrap() as i32,
                offset: parts.next().unwrap(),
                n: parts.next().unwrap(),
            }
        })
        .collect()
}

fn produce(kafka: &MockKafka, range: std::ops::Range<i64>) {
    kafka.produce(
        TOPIC,
        range.map(|n| {
            TestMessage::new(format!(r#"{{"n":{n}}}"#)).partition((n % PARTITIONS as i64) as i32)
        }),
    );
}

fn start_child(
    kafka: &MockKafka,
    output: &Path,
    log_dir: tempfile::TempDir,
) -> testkit::ServerProcess {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(ENV_BROKERS, kafka.bootstrap())
        .env(ENV_OUTPUT, output);
    testkit::ServerProcess::start("crash-child", command, log_dir)
}

/// Waits until the output has more than `lines` lines.
fn wait_for_progress(output: &Path, lines: usize, child: &testkit::ServerProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_lines(output).len() <= lines {
        assert!(
            Instant::now() < deadline,
            "the child made no progress; its log:\n{}",
            child.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn parent() {
    let kafka = MockKafka::start();
    kafka.create_topic(TOPIC, PARTITIONS);
    let total: i64 = 30_000;
    produce(&kafka, 0..20_000);
    let dir = tempfile::tempdir().unwrap();
    let output: PathBuf = dir.path().join("delivered.txt");

    // A cheap, seedable random source for the kill moments.
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("seed {seed} (set CRASH_SEED to repeat)");
    let mut state = seed | 1;
    let mut random_ms = |max: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % max
    };

    let mut repeatable = 0; // written but uncommitted at the kills
    for kill in 0..KILLS {
        let before = read_lines(&output).len();
        let mut child = start_child(&kafka, &output, testkit::ServerProcess::temp_dir());
        wait_for_progress(&output, before, &child);
        std::thread::sleep(Duration::from_millis(random_ms(700)));
        child.kill(); // SIGKILL
        // A commit the child sent just before dying may still land.
        std::thread::sleep(Duration::from_millis(300));
        let lines = read_lines(&output);
        let committed = kafka.committed(GROUP, TOPIC);
        let mut written: BTreeMap<i32, i64> = BTreeMap::new();
        for l in &lines {
            let next = written.entry(l.partition).or_default();
            *next = (*next).max(l.offset + 1);
        }
        let uncommitted: i64 = written
            .iter()
            .map(|(p, next)| (next - committed.get(p).copied().unwrap_or(0)).max(0))
            .sum();
        println!(
            "kill {}: {} lines written, {} of them not yet committed",
            kill + 1,
            lines.len() - before,
            uncommitted
        );
        assert!(
            uncommitted as usize <= IN_FLIGHT_BOUND,
            "kill {}: {uncommitted} records written but not committed, more than the {IN_FLIGHT_BOUND} that can be in flight",
            kill + 1
        );
        repeatable += uncommitted as usize;
        if kill == 2 {
            // New records arrive while the readers come and go.
            produce(&kafka, 20_000..total);
        }
    }

    // A last run reads to the end.
    let mut child = start_child(&kafka, &output, testkit::ServerProcess::temp_dir());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen: BTreeSet<i64> = read_lines(&output).iter().map(|l| l.n).collect();
        if seen.len() as i64 == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {total} records arrived; child log:\n{}",
            seen.len(),
            child.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the last commits land, then stop.
    std::thread::sleep(Duration::from_millis(500));
    child.kill();

    let lines = read_lines(&output);
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for l in &lines {
        *counts.entry(l.n).or_default() += 1;
    }
    let missing: Vec<i64> = (0..total).filter(|n| !counts.contains_key(n)).collect();
    assert!(missing.is_empty(), "lost records: {missing:?}");
    let duplicates = lines.len() - counts.len();
    println!(
        "{} records produced, {} lines written, {duplicates} duplicates, {repeatable} written-but-uncommitted at the {KILLS} kills (bound {} per kill)",
        total,
        lines.len(),
        IN_FLIGHT_BOUND
    );
    assert!(
        duplicates <= repeatable,
        "{duplicates} duplicates, but only {repeatable} records were written and not committed at the kills"
    );
    // Each record's offsets are consistent: the same message always has the same value.
    let mut by_position: BTreeMap<(i32, i64), i64> = BTreeMap::new();
    for l in &lines {
        let n = by_position.entry((l.partition, l.offset)).or_insert(l.n);
        assert_eq!(*n, l.n, "offset {}/{} changed value", l.partition, l.offset);
    }
}
