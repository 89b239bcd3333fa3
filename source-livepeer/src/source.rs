//! The source: polls on a schedule, backs off on errors, turns each metric
//! of an answer into a record.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use connector_core::check::CheckReport;
use connector_core::format::{Decoder, MessageMeta, decode_message};
use connector_core::value::now_micros;
use connector_core::{BadRecord, Batch, Error, FailureKind, Position, Properties, Result, Source};
use serde_json::value::RawValue;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::client::{ApiClient, PollFailure};
use crate::config::{LivepeerConfig, SPEC};

/// The longest wait between polls after errors (unless the interval is longer).
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the source has seen so far (see [`LivepeerSource::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Requests made.
    pub polls: u64,
    /// Requests that failed (transport errors and non-`2xx` answers).
    pub errors: u64,
    /// Answers not emitted because they repeated the last one within an interval.
    pub duplicates: u64,
    /// The latest failures, as logged, oldest first (at most 16).
    pub recent_errors: VecDeque<String>,
}

impl PollStats {
    /// The last failure, as logged.
    pub fn last_error(&self) -> Option<&str> {
        self.recent_errors.back().map(String::as_str)
    }
}

/// Polls `GET {base_url}/data/views/now` every `interval` and emits one
/// record per metric of the answer (a JSON array): with `data_type` `json`
/// each metric's keys become columns (`playbackId`, `device`, `browser`,
/// `country`, `viewCount`, `errorRate`, as the API sends them), with `text`
/// each metric is one `raw` column holding its JSON text. Each record's
/// event time is the time of the poll.
///
/// Polls happen at the start of each interval; at most one answer is
/// emitted per interval. A failed poll (no connection, timeout, `401`,
/// `429`, `5xx`...) is logged with the API's own message, counted in
/// [`stats`](Self::stats), and tried again after a wait that doubles with
/// each failure in a row (from a quarter of the interval, at most one
/// second, up to five minutes or the interval if longer) and is at least
/// what a `Retry-After` header asks. An answer identical to the one
/// emitted less than an interval ago is not emitted again.
///
/// The answers are snapshots, so nothing is acknowledged upstream: a batch
/// the sink fails to deliver is not polled again.
pub struct LivepeerSource {
    config: LivepeerConfig,
    client: ApiClient,
    decoder: Box<dyn Decoder>,
    component: String,
    /// When the next poll happens (`None`: now).
    next_poll: Option<Instant>,
    /// When the next interval starts.
    next_slot: Option<Instant>,
    failures: u32,
    /// The last emitted answer and when its poll was due.
    last_emitted: Option<(Bytes, Instant)>,
    answers: u64,
    stats: PollStats,
}

impl LivepeerSource {
    /// A source from a typed config.
    pub fn new(config: LivepeerConfig) -> Result<Self> {
        let component = SPEC.component();
        let endpoint = config
            .endpoint()
            .map_err(|e| Error::config(component.clone(), "base_url", e))?;
        let client = ApiClient::new(&component, endpoint, config.api_key.clone(), config.timeout)?;
        let decoder = config.format.decoder()?;
        Ok(LivepeerSource {
            config,
            client,
            decoder,
            component,
            next_poll: None,
            next_slot: None,
            failures: 0,
            last_emitted: None,
            answers: 0,
            stats: PollStats::default(),
        })
    }

    /// A source from the `livepeer` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        LivepeerSource::new(LivepeerConfig::from_properties(props)?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &LivepeerConfig {
        &self.config
    }

    /// Polls, failures and skipped repeats so far.
    pub fn stats(&self) -> &PollStats {
        &self.stats
    }

    /// The wait after `failures` failed polls in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let interval = self.config.interval;
        let first = (interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let cap = MAX_BACKOFF.max(interval);
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        first.saturating_mul(factor).min(cap)
    }

    /// Starts a new interval when its time has come.
    fn enter_slot(&mut self, now: Instant) {
        let interval = self.config.interval;
        match self.next_slot {
            None => self.next_slot = Some(now + interval),
            Some(slot) if now >= slot => {
                // Skip intervals missed while failing; never poll in a burst.
                let behind = now.duration_since(slot);
                let skipped = (behind.as_nanos() / interval.as_nanos().max(1)) as u32;
                self.next_slot = Some(slot + interval.saturating_mul(skipped.saturating_add(1)));
            }
            Some(_) => {}
        }
    }

    fn failed(&mut self, failure: PollFailure) {
        self.stats.errors += 1;
        self.failures += 1;
        let mut wait = self.backoff(self.failures);
        if let Some(asked) = failure.retry_after {
            wait = wait.max(asked);
        }
        let reason = format!("GET {}: {}", self.client.endpoint(), failure.reason);
        warn!(
            source = %self.component,
            error = %reason,
            failures_in_a_row = self.failures,
            retry_in_ms = wait.as_millis() as u64,
            "livepeer poll failed; polling goes on"
        );
        if self.stats.recent_errors.len() == 16 {
            self.stats.recent_errors.pop_front();
        }
        self.stats.recent_errors.push_back(reason);
        self.next_poll = Some(Instant::now() + wait);
    }

    /// The records of one API answer (a JSON array of metrics), as a poll
    /// at `polled_at` (microseconds since the epoch) makes them; elements
    /// that do not decode become bad records naming their index. Useful to
    /// replay recorded answers.
    pub async fn decode_answer(&mut self, body: &[u8], polled_at: i64) -> Batch {
        let answer = self.answers;
        self.answers += 1;
        let position = Position::Sequence(answer);
        let mut batch = Batch::default();
        batch.source_bytes = body.len() as u64;
        let elements: Vec<&RawValue> = match serde_json::from_slice(body) {
            Ok(elements) => elements,
            Err(e) => {
                let error = Error::decode(
                    "json",
                    format!("answer #{answer}"),
                    format!("expected a JSON array of metrics: {e}"),
                )
                .in_component(self.component.clone());
                batch.bad.push(BadRecord::undecodable(
                    error,
                    Bytes::copy_from_slice(body),
                    Some(position),
                ));
                return batch;
            }
        };
        let meta = MessageMeta {
            timestamp: Some(polled_at),
            position: Some(&position),
            ..MessageMeta::default()
        };
        for (index, element) in elements.iter().enumerate() {
            let bytes = element.get().as_bytes();
            if let Err(e) =
                decode_message(&mut self.decoder, bytes, &meta, &mut batch.records).await
            {
                let error = e
                    .in_component(self.component.clone())
                    .at(format!("element {index}"));
                batch.bad.push(BadRecord::undecodable(
                    error,
                    Bytes::copy_from_slice(bytes),
                    Some(position.clone()),
                ));
            }
        }
        batch
    }
}

impl std::fmt::Debug for LivepeerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivepeerSource")
            .field("endpoint", &self.client.endpoint().as_str())
            .field("interval", &self.config.interval)
            .field("stats", &self.stats)
            .finish()
    }
}

#[async_trait]
impl Source for LivepeerSource {
    fn name(&self) -> &str {
        &self.component
    }

    /// Waits for the next poll and returns the records of the next answer
    /// worth emitting. Cancel-safe: the schedule lives in `self` and an
    /// answer only changes state once it is fully read.
    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        loop {
            if let Some(at) = self.next_poll {
                tokio::time::sleep_until(at).await;
            }
            let now = Instant::now();
            // When this poll was due: polls of successive intervals are due
            // exactly an interval apart, however late the timer fires.
            let due = self.next_poll.unwrap_or(now);
            self.enter_slot(now);
            self.stats.polls += 1;
            let polled_at = now_micros();
            let body = match self.client.get().await {
                Ok(body) => body,
                Err(failure) => {
                    self.failed(failure);
                    continue;
                }
            };
            if self.failures > 0 {
                debug!(source = %self.component, failures = self.failures, "livepeer polls work again");
            }
            self.failures = 0;
            self.next_poll = self.next_slot;
            let repeated = self.last_emitted.as_ref().is_some_and(|(last, at)| {
                *last == body && due.saturating_duration_since(*at) < self.config.interval
            });
            if repeated {
                self.stats.duplicates += 1;
                debug!(source = %self.component, "answer repeats the last one within the interval; not emitted");
                continue;
            }
            let batch = self.decode_answer(&body, polled_at).await;
            self.last_emitted = Some((body, due));
            if batch.is_empty() {
                continue;
            }
            return Ok(Some(batch));
        }
    }

    /// Connects to the API host, then makes one authenticated request.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.component.clone());
        let endpoint = self.client.endpoint().clone();
        let host = endpoint.host_str().unwrap_or_default().to_owned();
        let port = endpoint.port_or_known_default().unwrap_or(443);
        let reached = report
            .step(format!("connect to {host}:{port}"), timeout, async {
                tokio::net::TcpStream::connect((host.as_str(), port))
                    .await
                    .map(|s| {
                        s.peer_addr()
                            .map(|a| format!("reached {a}"))
                            .unwrap_or_default()
                    })
                    .map_err(|e| (FailureKind::Unreachable, e.to_string()))
            })
            .await;
        if !reached {
            return report;
        }
        let client = &self.client;
        report
            .step(format!("GET {endpoint} with the API key"), timeout, async {
                let body = client.get().await.map_err(|f| (f.kind, f.reason))?;
                match serde_json::from_slice::<Vec<&RawValue>>(&body) {
                    Ok(metrics) => Ok(format!("authenticated; {} metrics now", metrics.len())),
                    Err(e) => Err((
                        FailureKind::Invalid,
                        format!("the answer is not a JSON array of metrics: {e}"),
                    )),
                }
            })
            .await;
        report
    }
}
