//! The consumer's group membership: the rebalance callbacks that start and
//! stop partition workers, and the offsets waiting to be committed.
//!
//! librdkafka runs the callbacks on the thread that polls the consumer's
//! main queue: the source's driver thread. A revocation stops the workers
//! of the revoked partitions, lets them drain (up to a timeout) and commits
//! what they delivered before the partitions go to their next owner.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use kafka_common::ClientEvents;
use kafka_common::rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance,
};
use kafka_common::rdkafka::error::KafkaResult;
use kafka_common::rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use kafka_common::rdkafka::{ClientContext, config::RDKafkaLogLevel, error::KafkaError};
use tracing::{debug, error, info, warn};

use crate::worker::{self, WorkerHandle, WorkerSettings};

/// Offsets waiting to be committed, and committed.
#[derive(Debug, Default)]
pub(crate) struct GroupState {
    /// Next offsets whose records were delivered, not yet committed.
    pub pending: BTreeMap<i32, i64>,
    /// Offsets the broker confirmed.
    pub committed: BTreeMap<i32, i64>,
    /// The partitions assigned now.
    pub assigned: BTreeSet<i32>,
}

/// State shared by the source, its driver thread and its workers.
#[derive(Debug)]
pub(crate) struct Group {
    pub events: ClientEvents,
    pub topic: String,
    pub group: String,
    state: Mutex<GroupState>,
}

impl Group {
    pub fn new(component: &str, topic: &str, group: &str) -> Self {
        Group {
            events: ClientEvents::new(component),
            topic: topic.to_owned(),
            group: group.to_owned(),
            state: Mutex::new(GroupState::default()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything before `next` in `partition` was delivered.
    pub fn delivered(&self, partition: i32, next: i64) {
        self.state().pending.insert(partition, next);
    }

    /// The offsets as a partition list for a commit.
    fn partition_list(&self, offsets: &BTreeMap<i32, i64>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for (&partition, &next) in offsets {
            // Cannot fail: the partition was just added.
            let _ = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(next));
        }
        tpl
    }

    /// Commits the pending offsets of `partitions` (all with `None`) and
    /// waits for the broker's answer. A failed commit keeps them pending.
    pub fn commit<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        partitions: Option<&[i32]>,
    ) -> KafkaResult<()> {
        let offsets: BTreeMap<i32, i64> = {
            let state = self.state();
            state
                .pending
                .iter()
                .filter(|(p, _)| partitions.is_none_or(|ps| ps.contains(p)))
                .map(|(p, o)| (*p, *o))
                .collect()
        };
        if offsets.is_empty() {
            return Ok(());
        }
        consumer.commit(&self.partition_list(&offsets), CommitMode::Sync)?;
        let mut state = self.state();
        for (p, o) in offsets {
            state.committed.insert(p, o);
            // Newer offsets delivered meanwhile stay pending.
            if state.pending.get(&p) == Some(&o) {
                state.pending.remove(&p);
            }
        }
        Ok(())
    }

    fn partitions_of(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

/// Starts and stops the partition workers.
pub(crate) struct Workers {
    /// The consumer, to split partition queues from (set right after it is
    /// created; weak, as the consumer owns this context).
    pub consumer: OnceLock<Weak<BaseConsumer<SourceContext>>>,
    pub settings: WorkerSettings,
    pub runtime: tokio::runtime::Handle,
    running: Mutex<HashMap<i32, WorkerHandle>>,
}

impl Workers {
    pub fn new(settings: WorkerSettings, runtime: tokio::runtime::Handle) -> Self {
        Workers {
            consumer: OnceLock::new(),
            settings,
            runtime,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn start(&self, partitions: &[i32]) {
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for &partition in partitions {
            let Some(queue) = consumer.split_partition_queue(&self.settings.topic, partition)
            else {
                error!(topic = %self.settings.topic, partition, "cannot read the partition's own queue");
                continue;
            };
            let handle = worker::spawn(
                &self.settings,
                &self.runtime,
                consumer.clone(),
                queue,
                partition,
            );
            running.insert(partition, handle);
        }
    }

    /// Stops the workers of `partitions` and waits until they are gone
    /// (they drain for up to the drain timeout first).
    fn stop(&self, partitions: &[i32]) {
        let handles: Vec<(i32, WorkerHandle)> = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            partitions
                .iter()
                .filter_map(|p| running.remove(p).map(|h| (*p, h)))
                .collect()
        };
        for (_, handle) in &handles {
            handle.stop.cancel();
        }
        let deadline = Instant::now() + self.settings.drain_timeout + Duration::from_secs(5);
        for (partition, handle) in handles {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = handle.done.recv_timeout(left)
            {
                warn!(topic = %self.settings.topic, partition, "partition reader did not stop in time");
            }
        }
    }

    /// Stops every worker.
    pub fn stop_all(&self) {
        let partitions: Vec<i32> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        self.stop(&partitions);
    }
}

/// The consumer's librdkafka context.
pub(crate) struct SourceContext {
    pub group: Arc<Group>,
    pub workers: Arc<Workers>,
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.group.events.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.group.events.error(error, reason);
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let group = &self.group;
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked = group.partitions_of(tpl);
                // Let the readers of these partitions finish what is in
                // flight, then commit what they delivered: the next owner
                // starts from the committed offsets.
                self.workers.stop(&revoked);
                if consumer.assignment_lost() {
                    warn!(group = %group.group, partitions = ?revoked, "partitions lost (session timed out); their uncommitted records will be read again");
                } else if let Err(e) = group.commit(consumer, Some(&revoked)) {
                    warn!(group = %group.group, error = %e, "commit on revoke failed; the next owner may repeat records");
                }
                let mut state = group.state();
                state.pending.retain(|p, _| !revoked.contains(p));
                state.assigned.retain(|p| !revoked.contains(p));
                drop(state);
                info!(group = %group.group, partitions = ?revoked, "partitions revoked");
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                warn!(group = %group.group, error = %e, "rebalance error");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let group = &self.group;
            let assigned = group.partitions_of(tpl);
            // Each partition gets its own queue and reader, split off before
            // its first fetch.
            self.workers.start(&assigned);
            group.state().assigned.extend(assigned.iter().copied());
            info!(group = %group.group, partitions = ?assigned, "partitions assigned");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            debug!(group = %self.group.group, error = %e, "offset commit failed");
        }
    }
}
