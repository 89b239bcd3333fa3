//! Connection checks shared by the source and the sink: reach the brokers,
//! read the topic's metadata, read a group's committed offsets. Nothing is
//! consumed, produced or created.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use connector_core::check::{CheckReport, FailureKind};
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaResult, RDKafkaErrorCode};
use rdkafka::topic_partition_list::Offset;

use crate::config::KafkaClientConfig;
use crate::context::{ClientEvents, EventsContext};
use crate::error::{check_failure, client_failure, describe, failure_kind, is_decisive};

/// How long a check that already failed waits for librdkafka's explanation.
const DETAIL_GRACE: Duration = Duration::from_millis(250);

/// A check's failure: its kind and the reason.
pub type StepFailure = (FailureKind, String);

/// What the brokers said about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The brokers of the cluster, `id at host:port`.
    pub brokers: Vec<String>,
    /// The topic's partition ids, or the error the brokers gave for it.
    pub partitions: Result<Vec<i32>, RDKafkaErrorCode>,
}

/// A short-lived client for connection checks.
pub struct Probe {
    consumer: Arc<BaseConsumer<EventsContext>>,
    events: Arc<ClientEvents>,
    bootstrap: String,
}

impl Probe {
    /// A client for `config`; with `group`, it can also read that group's
    /// committed offsets (without joining the group).
    pub fn new(
        config: &KafkaClientConfig,
        component: &str,
        group: Option<&str>,
    ) -> Result<Probe, StepFailure> {
        let context = EventsContext::new(component);
        let events = context.0.clone();
        let mut client = config.client_config();
        // A check must not create the topic as a side effect.
        client.set("allow.auto.create.topics", "false");
        if let Some(group) = group {
            client.set("group.id", group);
            client.set("enable.auto.commit", "false");
        }
        let consumer: BaseConsumer<EventsContext> = client
            .create_with_context(context)
            .map_err(|e| (FailureKind::Invalid, describe(&e)))?;
        Ok(Probe {
            consumer: Arc::new(consumer),
            events,
            bootstrap: config.bootstrap_servers(),
        })
    }

    /// The name of the connect step: `connect to <brokers>`.
    pub fn connect_step_name(&self) -> String {
        format!("connect to {}", self.bootstrap)
    }

    /// Runs a blocking client call off the async threads, within `timeout`.
    /// Returns early when the client reports an error that waiting cannot
    /// fix (TLS, SASL, every broker down).
    async fn blocking<T: Send + 'static>(
        &self,
        timeout: Duration,
        call: impl FnOnce(&BaseConsumer<EventsContext>, Duration) -> KafkaResult<T> + Send + 'static,
    ) -> Result<T, StepFailure> {
        let consumer = self.consumer.clone();
        // Leave the caller's own timeout a margin, so that a slow answer is
        // reported with the client's reason rather than a bare timeout.
        let budget = timeout.mul_f64(0.9);
        let mut errors = self.events.subscribe();
        // librdkafka queues its logs and errors; they reach the context
        // (and say why a connection failed) only when the client is polled.
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let consumer = self.consumer.clone();
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = consumer.poll(Duration::from_millis(20));
                }
                // Whatever arrived last.
                for _ in 0..100 {
                    let _ = consumer.poll(Duration::ZERO);
                }
            })
        };
        let task = tokio::task::spawn_blocking(move || call(&consumer, budget));
        let stop_poller = StopOnDrop(stop);
        let result = tokio::select! {
            joined = task => joined,
            true = async { errors.wait_for(|e| e.as_ref().is_some_and(is_decisive)).await.is_ok() } => {
                // Take in what librdkafka reports right after: its own TLS
                // and SASL messages are the clearest.
                tokio::time::sleep(DETAIL_GRACE).await;
                drop(stop_poller);
                let _ = poller.await;
                let error = self.events.last_error().expect("decisive error present");
                return Err(client_failure(&error));
            }
        };
        match result {
            Ok(Ok(value)) => Ok(value),
            failed => {
                // Let the poller deliver the events that explain the error.
                drop(stop_poller);
                let _ = poller.await;
                Err(result_failure(failed, &self.events))
            }
        }
    }

    /// Metadata of `topic` (also proves the brokers can be reached).
    pub async fn topic_metadata(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<TopicInfo, StepFailure> {
        let name = topic.to_owned();
        self.blocking(timeout, move |consumer, budget| {
            let metadata = consumer.fetch_metadata(Some(&name), budget)?;
            let brokers = metadata
                .brokers()
                .iter()
                .map(|b| format!("{} at {}:{}", b.id(), b.host(), b.port()))
                .collect();
            let partitions = match metadata.topics().iter().find(|t| t.name() == name) {
                None => Err(RDKafkaErrorCode::UnknownTopicOrPartition),
                Some(t) => match t.error() {
                    Some(code) => Err(code.into()),
                    None => Ok(t.partitions().iter().map(|p| p.id()).collect()),
                },
            };
            Ok(TopicInfo {
                brokers,
                partitions,
            })
        })
        .await
    }

    /// Runs the `connect to <brokers>` step, fetching the metadata of
    /// `topic` on the way; returns it when the step passed.
    pub async fn connect_step(
        &self,
        report: &mut CheckReport,
        topic: &str,
        timeout: Duration,
    ) -> Option<TopicInfo> {
        let mut found = None;
        let passed = report
            .step(self.connect_step_name(), timeout, async {
                let info = self.topic_metadata(topic, timeout).await?;
                let detail = match info.brokers.len() {
                    1 => format!("1 broker: {}", info.brokers[0]),
                    n => format!("{n} brokers: {}", info.brokers.join(", ")),
                };
                found = Some(info);
                Ok(detail)
            })
            .await;
        if passed { found } else { None }
    }

    /// The committed offsets of the probe's group for `partitions` of
    /// `topic` (an `OffsetFetch` from the group coordinator: proves the
    /// coordinator is reachable and the group may be read).
    pub async fn committed_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        timeout: Duration,
    ) -> Result<Vec<(i32, Option<i64>)>, StepFailure> {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let committed = self
            .blocking(timeout, move |consumer, budget| {
                consumer.committed_offsets(tpl, budget)
            })
            .await?;
        let mut out = Vec::new();
        for elem in committed.elements() {
            if let Err(e) = elem.error() {
                let code = e.rdkafka_error_code();
                return Err((
                    code.map_or(FailureKind::Invalid, failure_kind),
                    describe(&e),
                ));
            }
            let offset = match elem.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            out.push((elem.partition(), offset));
        }
        Ok(out)
    }
}

/// Sets the flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The failure of a blocking call that did not succeed.
fn result_failure<T>(
    joined: std::result::Result<KafkaResult<T>, tokio::task::JoinError>,
    events: &ClientEvents,
) -> StepFailure {
    match joined {
        Ok(Ok(_)) => (FailureKind::Invalid, "no failure".to_owned()),
        Ok(Err(e)) => check_failure(&e, events.last_error().as_ref()),
        Err(e) => (FailureKind::Invalid, format!("check task failed: {e}")),
    }
}

/// The failure for a topic whose metadata came with `code`.
pub fn topic_failure(topic: &str, code: RDKafkaErrorCode) -> StepFailure {
    let kind = failure_kind(code);
    let reason = match kind {
        FailureKind::NotFound => format!("topic `{topic}` does not exist"),
        FailureKind::PermissionDenied => {
            format!("not authorized to describe topic `{topic}` ({code})")
        }
        _ => format!("topic `{topic}`: {code}"),
    };
    (kind, reason)
}

/// Describes partitions for a check report: `4 partitions (0-3)`.
pub fn describe_partitions(partitions: &[i32]) -> String {
    match partitions {
        [] => "no partitions".to_owned(),
        [p] => format!("1 partition ({p})"),
        _ => {
            let min = partitions.iter().min().copied().unwrap_or_default();
            let max = partitions.iter().max().copied().unwrap_or_default();
            format!("{} partitions ({min}-{max})", partitions.len())
        }
    }
}
