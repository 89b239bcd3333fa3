//! Pipeline behaviour: backpressure, batching, bad-data policies, fan-out,
//! delivery outcomes reaching the source, and graceful shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_core::memory::{CollectSink, Outcome};
use connector_core::pipeline::StopReason;
use connector_core::{
    AckStatus, AckTracker, BadDataPolicy, BadRecord, Batch, BatchLimits, CancellationToken, Error,
    Pipeline, Position, Record, Result, Source, Value, async_trait,
};

/// A source of numbered records that tracks the outcome of every batch the
/// way a real source does (an `AckTracker`), and can plant bad payloads.
struct NumberSource {
    next: u64,
    end: Option<u64>,
    batch: u64,
    bad_every: Option<u64>,
    produced_batches: Arc<AtomicU64>,
    tracker: AckTracker<u64>,
    outcomes: Arc<Mutex<Vec<(u64, AckStatus)>>>,
}

struct Probe {
    produced_batches: Arc<AtomicU64>,
    outcomes: Arc<Mutex<Vec<(u64, AckStatus)>>>,
}

impl Probe {
    fn outcomes(&self) -> Vec<(u64, AckStatus)> {
        self.outcomes.lock().unwrap().clone()
    }

    fn all_delivered(&self) -> bool {
        self.outcomes().iter().all(|(_, s)| s.is_delivered())
    }
}

impl NumberSource {
    fn new(end: Option<u64>, batch: u64) -> (Self, Probe) {
        let produced_batches = Arc::new(AtomicU64::new(0));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        (
            NumberSource {
                next: 0,
                end,
                batch,
                bad_every: None,
                produced_batches: produced_batches.clone(),
                tracker: AckTracker::new(),
                outcomes: outcomes.clone(),
            },
            Probe {
                produced_batches,
                outcomes,
            },
        )
    }

    fn with_bad_every(mut self, n: u64) -> Self {
        self.bad_every = Some(n);
        self
    }

    fn collect_outcomes(&mut self) {
        while let Some(outcome) = self.tracker.try_next() {
            self.outcomes.lock().unwrap().push(outcome);
        }
    }
}

#[async_trait]
impl Source for NumberSource {
    fn name(&self) -> &str {
        "number source"
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        self.collect_outcomes();
        let end = self.end.unwrap_or(u64::MAX);
        if self.next >= end {
            return Ok(None);
        }
        tokio::task::yield_now().await;
        let last = (self.next + self.batch).min(end);
        let mut batch = Batch::with_ack(Vec::new(), self.tracker.track(self.next));
        for n in self.next..last {
            let position = Position::Sequence(n);
            if self.bad_every.is_some_and(|k| n % k == k - 1) {
                batch.bad.push(BadRecord::undecodable(
                    Error::decode("json", "line 1", "expected value")
                        .in_component("number source")
                        .at(&position),
                    format!("{{bad {n}").into_bytes(),
                    Some(position),
                ));
            } else {
                batch.records.push(
                    Record::from_pairs([("n", Value::Int64(n as i64))]).with_position(position),
                );
            }
        }
        self.next = last;
        self.produced_batches.fetch_add(1, Ordering::SeqCst);
        Ok(Some(batch))
    }

    async fn close(&mut self) -> Result<()> {
        // Every emitted batch is resolved by now; record the outcomes.
        while let Some(outcome) = self.tracker.next().await {
            self.outcomes.lock().unwrap().push(outcome);
        }
        Ok(())
    }
}

fn numbers(records: &[Record]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r.get("n").and_then(Value::as_i64).unwrap())
        .collect()
}

#[tokio::test]
async fn delivers_everything_and_reports_outcomes_to_the_source() {
    let (source, probe) = NumberSource::new(Some(1000), 7);
    let (sink, collected) = CollectSink::new();
    let report = Pipeline::new(source).to(sink).run().await.unwrap();
    assert_eq!(report.stopped_by, StopReason::EndOfInput);
    assert_eq!(numbers(&collected.records()), (0..1000).collect::<Vec<_>>());
    assert_eq!(report.metrics.records_in, 1000);
    assert_eq!(report.metrics.records_out, 1000);
    assert_eq!(report.metrics.batches_in_flight, 0);
    let outcomes = probe.outcomes();
    assert_eq!(outcomes.len(), 143, "one outcome per source batch");
    assert!(probe.all_delivered());
    let tokens: Vec<u64> = outcomes.iter().map(|(t, _)| *t).collect();
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "outcomes arrive in order"
    );
}

#[tokio::test]
async fn slow_sink_bounds_records_in_flight() {
    let (source, probe) = NumberSource::new(None, 10);
    let (sink, collected) = CollectSink::new();
    let sink = sink
        .with_delay(Duration::from_millis(20))
        .with_batch_limits(BatchLimits {
            max_records: 10,
            max_wait: Duration::ZERO,
        });
    let stop = CancellationToken::new();
    let capacity = 2;
    let in_flight = 2;
    let handle = Pipeline::new(source)
        .to(sink)
        .channel_capacity(capacity)
        .max_in_flight(in_flight)
        .shutdown_on(stop.clone())
        .spawn();
    let mut max_gap = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let produced = probe.produced_batches.load(Ordering::SeqCst) * 10;
        let received = collected.len() as u64;
        max_gap = max_gap.max(produced.saturating_sub(received));
        let m = handle.metrics();
        assert!(m.batches_in_flight <= in_flight as u64, "{m:?}");
    }
    stop.cancel();
    let report = handle.join().await.unwrap();
    // Batches queued in the channel, in flight at the sink, one being
    // gathered, one in the source's hands: 10 records each.
    let bound = (capacity + in_flight + 2) as u64 * 10;
    assert!(
        max_gap <= bound,
        "source ran {max_gap} records ahead of a slow sink (bound {bound})"
    );
    assert!(report.metrics.records_out > 0);
    assert_eq!(report.metrics.records_out, collected.len() as u64);
}

#[tokio::test]
async fn batches_follow_the_sink_limits() {
    let (source, probe) = NumberSource::new(Some(1000), 7);
    let (sink, collected) = CollectSink::new();
    let sink = sink.with_batch_limits(BatchLimits {
        max_records: 100,
        max_wait: Duration::from_millis(50),
    });
    Pipeline::new(source).to(sink).run().await.unwrap();
    let sizes = collected.batch_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), 1000);
    assert!(sizes.iter().all(|&s| s <= 100), "{sizes:?}");
    assert_eq!(sizes.iter().filter(|&&s| s == 100).count(), 10, "{sizes:?}");
    assert_eq!(numbers(&collected.records()), (0..1000).collect::<Vec<_>>());
    assert!(probe.all_delivered());
}

#[tokio::test(start_paused = true)]
async fn partial_batches_leave_after_max_wait() {
    let (mut tx, source) = connector_core::memory::channel(4);
    let (sink, collected) = CollectSink::new();
    let sink = sink.with_batch_limits(BatchLimits {
        max_records: 100,
        max_wait: Duration::from_millis(500),
    });
    let handle = Pipeline::new(source).to(sink).spawn();
    use connector_core::Sink as _;
    tx.send(Batch::new(vec![Record::from_pairs([(
        "n",
        Value::Int64(1),
    )])]))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        collected.is_empty(),
        "held until the batch fills or max_wait passes"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(collected.len(), 1);
    drop(tx);
    handle.join().await.unwrap();
}

#[tokio::test]
async fn bad_data_fail_policy_stops_without_acknowledging() {
    let (source, probe) = NumberSource::new(Some(100), 10);
    let source = source.with_bad_every(25);
    let (sink, collected) = CollectSink::new();
    let err = Pipeline::new(source).to(sink).run().await.unwrap_err();
    assert!(err.is_bad_data());
    assert_eq!(
        err.to_string(),
        "number source: cannot decode json at record #24, line 1: expected value"
    );
    assert!(
        collected
            .records()
            .iter()
            .all(|r| r.get("n").and_then(Value::as_i64).unwrap() < 20)
    );
    let outcomes = probe.outcomes();
    let (token, status) = outcomes
        .iter()
        .find(|(t, _)| *t == 20)
        .expect("batch with the bad record");
    assert_eq!(*token, 20);
    assert!(
        !status.is_settled(),
        "the batch holding the bad record must not be committed"
    );
}

#[tokio::test]
async fn bad_data_skip_policy_counts_and_goes_on() {
    let (source, probe) = NumberSource::new(Some(100), 10);
    let source = source.with_bad_every(25);
    let (sink, collected) = CollectSink::new();
    let report = Pipeline::new(source)
        .on_bad_data(BadDataPolicy::Skip)
        .to(sink)
        .run()
        .await
        .unwrap();
    assert_eq!(report.metrics.bad_records, 4);
    assert_eq!(collected.len(), 96);
    assert!(
        probe.all_delivered(),
        "skipped records are settled, so the source moves past them"
    );
}

#[tokio::test]
async fn bad_data_goes_to_the_dead_letter_sink() {
    let (source, probe) = NumberSource::new(Some(100), 10);
    let source = source.with_bad_every(25);
    let (sink, collected) = CollectSink::new();
    let (dlq, dead) = CollectSink::new();
    let report = Pipeline::new(source)
        .to(sink)
        .dead_letter(dlq)
        .try_map(|r| match r.get("n").and_then(Value::as_i64) {
            Some(50) => Err(Error::rejected("step", "record 50", "fifty is not allowed")),
            _ => Ok(()),
        })
        .run()
        .await
        .unwrap();
    assert_eq!(collected.len(), 95);
    assert_eq!(report.metrics.dead_lettered, 5);
    let dead = dead.records();
    assert_eq!(dead.len(), 5);
    assert_eq!(
        dead[0].get("payload").and_then(Value::as_bytes),
        Some(&b"{bad 24"[..])
    );
    assert_eq!(
        dead[0].get("position").and_then(Value::as_str),
        Some("record #24")
    );
    let refused = dead
        .iter()
        .find(|r| !r.get("record").unwrap().is_null())
        .unwrap();
    assert!(
        refused
            .get("error")
            .and_then(Value::as_str)
            .unwrap()
            .contains("fifty is not allowed")
    );
    assert_eq!(
        refused.get("record").unwrap().get_path("n"),
        Some(&Value::Int64(50))
    );
    assert!(probe.all_delivered());
}

#[tokio::test]
async fn failed_deliveries_reach_the_source() {
    let (source, probe) = NumberSource::new(Some(50), 10);
    let (sink, collected) = CollectSink::new();
    let mut calls = 0;
    let sink = sink.with_outcome(move |_| {
        calls += 1;
        if calls == 2 {
            Outcome::Fail(Error::transient("collect sink", "write", "disk full"))
        } else {
            Outcome::Deliver
        }
    });
    let report = Pipeline::new(source)
        .batch_limits(BatchLimits {
            max_records: 10,
            max_wait: Duration::ZERO,
        })
        .to(sink)
        .run()
        .await
        .unwrap();
    assert_eq!(collected.len(), 40);
    assert_eq!(report.metrics.batches_failed, 1);
    let failed: Vec<u64> = probe
        .outcomes()
        .iter()
        .filter(|(_, s)| !s.is_settled())
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        failed,
        vec![10],
        "exactly the second batch must be redelivered"
    );
}

#[tokio::test]
async fn sink_rejections_follow_the_policy() {
    let reject_second = || {
        let mut calls = 0;
        move |_: &Batch| {
            calls += 1;
            if calls == 2 {
                Outcome::Reject(Error::rejected("collect sink", "batch", "type mismatch"))
            } else {
                Outcome::Deliver
            }
        }
    };
    let limits = BatchLimits {
        max_records: 10,
        max_wait: Duration::ZERO,
    };

    let (source, _probe) = NumberSource::new(Some(50), 10);
    let (sink, _) = CollectSink::new();
    let err = Pipeline::new(source)
        .batch_limits(limits)
        .to(sink.with_outcome(reject_second()))
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "collect sink: rejected batch: type mismatch"
    );

    let (source, probe) = NumberSource::new(Some(50), 10);
    let (sink, collected) = CollectSink::new();
    let report = Pipeline::new(source)
        .batch_limits(limits)
        .on_bad_data(BadDataPolicy::Skip)
        .to(sink.with_outcome(reject_second()))
        .run()
        .await
        .unwrap();
    assert_eq!(collected.len(), 40);
    assert_eq!(report.metrics.batches_rejected, 1);
    assert_eq!(report.metrics.bad_records, 10);
    assert!(probe.outcomes().iter().all(|(_, s)| s.is_settled()));
}

#[tokio::test]
async fn shutdown_flushes_the_sink_and_resolves_every_ack() {
    let (source, probe) = NumberSource::new(None, 10);
    let (sink, collected) = CollectSink::new();
    // The sink holds every ack until it is flushed, like a buffering sink.
    let sink = sink.with_outcome(|_| Outcome::Hold);
    let stop = CancellationToken::new();
    let handle = Pipeline::new(source)
        .to(sink)
        .shutdown_on(stop.clone())
        .spawn();
    assert!(collected.wait_for(100, Duration::from_secs(10)).await);
    stop.cancel();
    let report = handle.join().await.unwrap();
    assert_eq!(report.stopped_by, StopReason::Shutdown);
    let outcomes = probe.outcomes();
    assert_eq!(
        outcomes.len() as u64,
        probe.produced_batches.load(Ordering::SeqCst)
    );
    assert!(
        probe.all_delivered(),
        "every batch read before shutdown is delivered"
    );
    assert_eq!(report.metrics.records_out, collected.len() as u64);
    assert_eq!(report.metrics.batches_in_flight, 0);
}

#[tokio::test]
async fn fan_out_acknowledges_after_every_sink() {
    let (source, probe) = NumberSource::new(Some(30), 10);
    let (a, got_a) = CollectSink::new();
    let (b, got_b) = CollectSink::new();
    let mut calls = 0;
    let b = b.with_outcome(move |_| {
        calls += 1;
        if calls == 1 {
            Outcome::Fail(Error::transient("collect sink", "write", "timeout"))
        } else {
            Outcome::Deliver
        }
    });
    Pipeline::new(source)
        .batch_limits(BatchLimits {
            max_records: 10,
            max_wait: Duration::ZERO,
        })
        .to(a)
        .to(b)
        .run()
        .await
        .unwrap();
    assert_eq!(got_a.len(), 30);
    assert_eq!(got_b.len(), 20);
    let settled: Vec<bool> = probe
        .outcomes()
        .iter()
        .map(|(_, s)| s.is_settled())
        .collect();
    assert_eq!(
        settled,
        vec![false, true, true],
        "a batch one sink failed is not delivered"
    );
}

#[tokio::test]
async fn filtered_records_still_settle_their_batch() {
    let (source, probe) = NumberSource::new(Some(100), 10);
    let (sink, collected) = CollectSink::new();
    Pipeline::new(source)
        .filter(|r| r.get("n").and_then(Value::as_i64).unwrap() >= 95)
        .to(sink)
        .run()
        .await
        .unwrap();
    assert_eq!(numbers(&collected.records()), vec![95, 96, 97, 98, 99]);
    assert!(probe.all_delivered());
    assert_eq!(probe.outcomes().len(), 10);
}

#[tokio::test]
async fn a_pipeline_without_a_sink_is_a_configuration_error() {
    let (source, _) = NumberSource::new(Some(1), 1);
    let err = Pipeline::new(source).run().await.unwrap_err();
    assert!(err.is_config());
    assert!(err.to_string().contains("no sink"));
    let (source, _) = NumberSource::new(Some(1), 1);
    let (sink, _) = CollectSink::new();
    let err = Pipeline::new(source)
        .on_bad_data(BadDataPolicy::DeadLetter)
        .to(sink)
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no dead-letter sink"));
}

#[tokio::test]
async fn chained_pipelines_pass_acks_upstream() {
    let (source, probe) = NumberSource::new(Some(200), 20);
    let (tx, rx) = connector_core::memory::channel(2);
    let (sink, collected) = CollectSink::new();
    let downstream = Pipeline::new(rx).to(sink).spawn();
    Pipeline::new(source).to(tx).run().await.unwrap();
    downstream.join().await.unwrap();
    assert_eq!(collected.len(), 200);
    assert!(probe.all_delivered());
    assert_eq!(probe.outcomes().len(), 10);
}
