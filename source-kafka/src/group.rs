//! The consumer's group membership: rebalance callbacks and offset commits.
//!
//! librdkafka runs the callbacks on the thread that polls the consumer,
//! i.e. inside [`KafkaSource::next_batch`](crate::KafkaSource). They share
//! this state with the source under a mutex.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kafka_common::ClientEvents;
use kafka_common::rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance,
};
use kafka_common::rdkafka::error::KafkaResult;
use kafka_common::rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use kafka_common::rdkafka::{ClientContext, config::RDKafkaLogLevel, error::KafkaError};
use tracing::{debug, info, warn};

/// A change of the partitions assigned to this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// Offsets waiting to be committed, being committed, and committed.
#[derive(Debug, Default)]
pub(crate) struct GroupState {
    /// Next offsets whose records were delivered, not yet sent in a commit.
    pub pending: BTreeMap<i32, i64>,
    /// The commit in flight.
    pub in_flight: Option<BTreeMap<i32, i64>>,
    /// Offsets the broker confirmed.
    pub committed: BTreeMap<i32, i64>,
    /// Assignment changes the source has not applied yet.
    pub changes: Vec<Change>,
    /// The partitions assigned now.
    pub assigned: std::collections::BTreeSet<i32>,
}

impl GroupState {
    /// Records that everything before `next` in `partition` was delivered.
    pub fn delivered(&mut self, partition: i32, next: i64) {
        self.pending.insert(partition, next);
    }

    /// Everything delivered and not confirmed: pending over in-flight.
    pub fn uncommitted(&self) -> BTreeMap<i32, i64> {
        let mut all = self.in_flight.clone().unwrap_or_default();
        all.extend(self.pending.iter().map(|(p, o)| (*p, *o)));
        all.retain(|p, o| self.committed.get(p) != Some(o));
        all
    }
}

/// State shared between the source and its consumer's callbacks.
#[derive(Debug)]
pub(crate) struct Group {
    pub events: ClientEvents,
    pub topic: String,
    pub group: String,
    state: Mutex<GroupState>,
    /// Bumped with every assignment change, so the source notices cheaply.
    pub generation: AtomicU64,
}

impl Group {
    pub fn new(component: &str, topic: &str, group: &str) -> Self {
        Group {
            events: ClientEvents::new(component),
            topic: topic.to_owned(),
            group: group.to_owned(),
            state: Mutex::new(GroupState::default()),
            generation: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The offsets as a partition list for a commit.
    pub fn partition_list(&self, offsets: &BTreeMap<i32, i64>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for (&partition, &next) in offsets {
            // Cannot fail: the partition was just added.
            let _ = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(next));
        }
        tpl
    }

    fn partitions_of(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    /// Moves the pending offsets to the commit in flight and returns them,
    /// unless a commit is in flight or nothing is pending.
    pub fn start_commit(&self) -> Option<BTreeMap<i32, i64>> {
        let mut state = self.state();
        if state.in_flight.is_some() || state.pending.is_empty() {
            return None;
        }
        let offsets = std::mem::take(&mut state.pending);
        state.in_flight = Some(offsets.clone());
        Some(offsets)
    }

    /// Records the answer to the commit in flight.
    pub fn finish_commit(&self, offsets: BTreeMap<i32, i64>, result: KafkaResult<()>) {
        let mut state = self.state();
        state.in_flight = None;
        match result {
            Ok(()) => {
                debug!(group = %self.group, ?offsets, "committed");
                state.committed.extend(offsets);
            }
            Err(e) => {
                warn!(group = %self.group, error = %e, "offset commit failed; will retry");
                // Newer offsets delivered meanwhile win.
                for (p, o) in offsets {
                    if state.assigned.contains(&p) {
                        state.pending.entry(p).or_insert(o);
                    }
                }
            }
        }
    }

    /// Commits `offsets` and waits for the broker's answer.
    pub fn commit_sync<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        offsets: &BTreeMap<i32, i64>,
    ) -> KafkaResult<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        consumer.commit(&self.partition_list(offsets), CommitMode::Sync)?;
        let mut state = self.state();
        for (&p, &o) in offsets {
            state.committed.insert(p, o);
            if state.pending.get(&p) == Some(&o) {
                state.pending.remove(&p);
            }
        }
        debug!(group = %self.group, ?offsets, "committed");
        Ok(())
    }

    fn push_change(&self, change: Change) {
        let mut state = self.state();
        match &change {
            Change::Assigned(ps) => state.assigned.extend(ps.iter().copied()),
            Change::Revoked(ps) => state.assigned.retain(|p| !ps.contains(p)),
        }
        state.changes.push(change);
        drop(state);
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// The consumer's librdkafka context.
pub(crate) struct SourceContext(pub Arc<Group>);

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0.events.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.events.error(error, reason);
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let group = &self.0;
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked = group.partitions_of(tpl);
                // Commit what was delivered from these partitions before they
                // go: their next owner starts from the committed offsets.
                // Batches still in flight are dropped from our books (their
                // outcomes will be ignored) and read again by the next owner.
                let offsets: BTreeMap<i32, i64> = {
                    let state = group.state();
                    state
                        .uncommitted()
                        .into_iter()
                        .filter(|(p, _)| revoked.contains(p))
                        .collect()
                };
                if consumer.assignment_lost() {
                    warn!(group = %group.group, partitions = ?revoked, "partitions lost (session timed out); their uncommitted records will be read again");
                } else if let Err(e) = group.commit_sync(consumer, &offsets) {
                    warn!(group = %group.group, error = %e, "commit on revoke failed; the next owner may repeat records");
                }
                {
                    let mut state = group.state();
                    state.pending.retain(|p, _| !revoked.contains(p));
                }
                info!(group = %group.group, partitions = ?revoked, "partitions revoked");
                group.push_change(Change::Revoked(revoked));
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                warn!(group = %group.group, error = %e, "rebalance error");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let group = &self.0;
            let assigned = group.partitions_of(tpl);
            info!(group = %group.group, partitions = ?assigned, "partitions assigned");
            group.push_change(Change::Assigned(assigned));
        }
    }
}
