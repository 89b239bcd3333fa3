//! The source: keeps the stream open, resumes it after every disconnect,
//! and turns message events into records.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connector_core::check::CheckReport;
use connector_core::{
    AckStatus, AckTracker, BadRecord, Batch, Error, FailureKind, Position, Properties, Result,
    Schema, Source,
};
use eventsource_stream::Event;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::client::{self, Events};
use crate::config::{AblyConfig, SPEC};
use crate::message::{self, ErrorInfo};

/// Most records per batch when many events are ready at once.
const MAX_BATCH: usize = 1024;
/// The first wait before reconnecting after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the source has seen so far (see [`AblySource::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Streams opened.
    pub connections: u64,
    /// Message events received.
    pub messages: u64,
    /// Failures: streams that could not be opened, broke, or sent an error event.
    pub errors: u64,
    /// Times the stream was rewound because the sink failed a batch.
    pub rewinds: u64,
    /// The latest failures, oldest first (at most 16).
    pub recent_errors: VecDeque<String>,
}

impl StreamStats {
    /// The last failure, as logged.
    pub fn last_error(&self) -> Option<&str> {
        self.recent_errors.back().map(String::as_str)
    }
}

/// Subscribes to one channel with Ably's SSE endpoint and emits one record
/// per message: `id`, `name`, `data` (decoded by the message's `encoding`:
/// `json`, `base64`, `utf-8`, and chains such as `json/utf-8/base64`),
/// `timestamp` and `client_id`; the record's event time is the message's.
///
/// The stream is reopened whenever it ends, breaks, goes silent for
/// `idle_timeout` or carries an `error` event, with `lastEvent` set to the
/// id of the last event received, so Ably sends every message published
/// meanwhile (within its two-minute resume window) and none twice. Failed
/// attempts are logged, counted in [`stats`](Self::stats), and retried after
/// a wait that doubles up to a minute.
///
/// A message that cannot be decoded (bad JSON, an encrypted payload) goes
/// to the batch's bad records with its raw event data.
///
/// Delivery is at least once within Ably's resume window: each batch's
/// acknowledgement is tracked, and when the sink fails a batch the stream is
/// reopened after the last event whose batch was delivered, so the failed
/// messages (and any after them) are received again. Messages that failed
/// before any batch was delivered cannot be asked for again (there is no
/// event id before them to resume after); that is logged.
pub struct AblySource {
    config: AblyConfig,
    client: reqwest::Client,
    component: String,
    channel: Arc<str>,
    events: Option<Events>,
    /// Whether the open stream has delivered an event yet.
    flowing: bool,
    last_event_id: Option<String>,
    /// The id of the last event whose batch was delivered (or rejected).
    settled_id: Option<String>,
    /// Each batch's ack, with the stream generation and its last event id.
    tracker: AckTracker<(u64, Option<String>)>,
    /// Bumped when the stream is rewound; outcomes of older batches are moot.
    generation: u64,
    next_connect: Option<Instant>,
    failures: u32,
    stats: StreamStats,
}

impl AblySource {
    /// A source from a typed config.
    pub fn new(config: AblyConfig) -> Result<Self> {
        let component = SPEC.component();
        if config.key_parts().is_none() {
            return Err(Error::config(
                component,
                "api_key",
                "expected `appId.keyId:secret`, as Ably shows API keys",
            ));
        }
        let client = client::http_client(&component, config.timeout)?;
        Ok(AblySource {
            channel: Arc::from(config.channel.as_str()),
            config,
            client,
            component,
            events: None,
            flowing: false,
            last_event_id: None,
            settled_id: None,
            tracker: AckTracker::new(),
            generation: 0,
            next_connect: None,
            failures: 0,
            stats: StreamStats::default(),
        })
    }

    /// A source from the `ably` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        AblySource::new(AblyConfig::from_properties(props)?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &AblyConfig {
        &self.config
    }

    /// Connections, messages and failures so far.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// The id the next connection resumes after.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    fn report(&mut self, reason: String) {
        self.stats.errors += 1;
        if self.stats.recent_errors.len() == 16 {
            self.stats.recent_errors.pop_front();
        }
        self.stats.recent_errors.push_back(reason);
    }

    /// Drops the stream; the next connection comes at once if this one
    /// carried events, else after a growing wait.
    fn disconnected(&mut self, reason: String, failure: bool) {
        self.events = None;
        if self.flowing && !failure {
            self.failures = 0;
            self.next_connect = None;
        } else {
            self.failures += 1;
            let wait = FIRST_BACKOFF
                .saturating_mul(2u32.saturating_pow(self.failures.saturating_sub(1).min(16)))
                .min(MAX_BACKOFF);
            self.next_connect = Some(Instant::now() + wait);
        }
        warn!(
            source = %self.component,
            channel = %self.channel,
            reason = %reason,
            resume_after = self.last_event_id.as_deref().unwrap_or("(start)"),
            "ably stream interrupted; reconnecting"
        );
        self.report(reason);
    }

    /// Acts on a batch's outcome: remember how far delivery got, or rewind
    /// the stream to receive a failed batch again.
    fn settle(&mut self, (generation, last_id): (u64, Option<String>), status: AckStatus) {
        if generation != self.generation {
            return;
        }
        if status.is_settled() {
            if last_id.is_some() {
                self.settled_id = last_id;
            }
            return;
        }
        let reason = status
            .error()
            .map_or_else(|| "not delivered".to_owned(), |e| e.to_string());
        self.generation += 1;
        self.stats.rewinds += 1;
        self.events = None;
        self.next_connect = None;
        match &self.settled_id {
            Some(id) => warn!(
                source = %self.component,
                channel = %self.channel,
                resume_after = %id,
                error = %reason,
                "a batch was not delivered; resuming the stream to receive it again"
            ),
            None => warn!(
                source = %self.component,
                channel = %self.channel,
                error = %reason,
                "a batch was not delivered before any was; its messages cannot be received again"
            ),
        }
        if self.settled_id.is_some() {
            self.last_event_id = self.settled_id.clone();
        }
    }

    /// Handles one event: a message becomes a record (or a bad record); an
    /// error event ends the stream.
    fn handle(&mut self, event: Event, batch: &mut Batch) {
        match event.event.as_str() {
            "message" | "" => {
                self.stats.messages += 1;
                self.flowing = true;
                self.failures = 0;
                let position = (!event.id.is_empty()).then(|| Position::MessageId {
                    topic: self.channel.clone(),
                    id: event.id.clone(),
                });
                batch.source_bytes += event.data.len() as u64;
                match message::to_record(&event.data) {
                    Ok(mut record) => {
                        record.position = position;
                        batch.records.push(record);
                    }
                    Err(reason) => {
                        let at = position
                            .as_ref()
                            .map_or_else(|| "a message event".to_owned(), ToString::to_string);
                        let error = Error::decode("ably message", at, reason)
                            .in_component(self.component.clone());
                        batch.bad.push(BadRecord::undecodable(
                            error,
                            event.data.into_bytes(),
                            position,
                        ));
                    }
                }
                if !event.id.is_empty() {
                    self.last_event_id = Some(event.id);
                }
            }
            "error" => {
                let detail = ErrorInfo::parse(&event.data)
                    .map(|e| e.describe())
                    .unwrap_or(event.data);
                self.disconnected(format!("Ably sent an error: {detail}"), true);
            }
            other => debug!(source = %self.component, event = other, "ignoring event"),
        }
    }
}

impl std::fmt::Debug for AblySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AblySource")
            .field("channel", &self.channel)
            .field("connected", &self.events.is_some())
            .field("last_event_id", &self.last_event_id)
            .field("stats", &self.stats)
            .finish()
    }
}

#[async_trait]
impl Source for AblySource {
    fn name(&self) -> &str {
        &self.component
    }

    fn schema(&self) -> Option<Arc<Schema>> {
        Some(message::schema())
    }

    /// The messages that are ready, waiting for at least one. Cancel-safe:
    /// events are only taken from the stream where no await follows before
    /// the batch is returned.
    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        loop {
            while let Some((token, status)) = self.tracker.try_next() {
                self.settle(token, status);
            }
            let Some(events) = self.events.as_mut() else {
                if let Some(at) = self.next_connect {
                    tokio::time::sleep_until(at).await;
                }
                match client::open(&self.client, &self.config, self.last_event_id.as_deref()).await
                {
                    Ok(events) => {
                        self.stats.connections += 1;
                        self.events = Some(events);
                        self.flowing = false;
                        debug!(
                            source = %self.component,
                            channel = %self.channel,
                            resume_after = self.last_event_id.as_deref().unwrap_or("(start)"),
                            "ably stream open"
                        );
                    }
                    Err(f) => {
                        let reason = format!("subscribe to `{}`: {}", self.channel, f.reason);
                        self.disconnected(reason, true);
                    }
                }
                continue;
            };
            // Wait for an event, acting on batch outcomes meanwhile.
            let tracker = &mut self.tracker;
            let outcome = async {
                if tracker.outstanding() == 0 {
                    std::future::pending::<()>().await;
                }
                tracker.next().await
            };
            let next = tokio::select! {
                biased;
                Some((token, status)) = outcome => {
                    self.settle(token, status);
                    continue;
                }
                next = events.next() => next,
            };
            let first = match next {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    self.disconnected(format!("stream broken: {e}"), false);
                    continue;
                }
                None => {
                    self.disconnected("the server closed the stream".into(), false);
                    continue;
                }
            };
            let mut batch = Batch::default();
            self.handle(first, &mut batch);
            // Take whatever else is ready, without waiting.
            while batch.records.len() + batch.bad.len() < MAX_BATCH {
                let Some(events) = self.events.as_mut() else {
                    break;
                };
                match events.next().now_or_never() {
                    Some(Some(Ok(event))) => self.handle(event, &mut batch),
                    Some(Some(Err(e))) => self.disconnected(format!("stream broken: {e}"), false),
                    Some(None) => self.disconnected("the server closed the stream".into(), false),
                    None => break,
                }
            }
            if !batch.is_empty() {
                let last = batch
                    .records
                    .iter()
                    .map(|r| &r.position)
                    .chain(batch.bad.iter().map(|b| &b.position))
                    .filter_map(|p| match p {
                        Some(Position::MessageId { id, .. }) => Some(id.clone()),
                        _ => None,
                    })
                    .next_back();
                batch.replace_ack(self.tracker.track((self.generation, last)));
                return Ok(Some(batch));
            }
        }
    }

    /// Connects to the host, then opens the channel's stream with the key
    /// (Ably checks both before it starts streaming); receives nothing.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.component.clone());
        let base = &self.config.base_url;
        let host = base.host_str().unwrap_or_default().to_owned();
        let port = base.port_or_known_default().unwrap_or(443);
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
        let mut config = self.config.clone();
        config.timeout = config.timeout.min(timeout);
        report
            .step(
                format!("subscribe to channel `{}` with the API key", self.channel),
                timeout,
                async {
                    client::open(&self.client, &config, None)
                        .await
                        .map(|_| "stream opened".to_owned())
                        .map_err(|f| (f.kind, f.reason))
                },
            )
            .await;
        report
    }
}
