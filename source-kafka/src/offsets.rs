//! Which offsets may be committed, from the outcomes of emitted batches.
//!
//! Each batch carries the offset range it read from each partition, tagged
//! with the partition's *epoch*. The epoch changes whenever what follows in
//! the partition is no longer a continuation of what was emitted before:
//! when the partition is assigned or revoked, and when the source seeks back
//! to redeliver a failed batch. Outcomes arrive in emission order (from the
//! [`AckTracker`](connector_core::AckTracker)); for the current epoch a
//! settled batch moves the commit point past its range and a failed batch
//! seeks back to its start and starts a new epoch. Outcomes of older epochs
//! are ignored: the range they cover will be read (or was handed to another
//! group member) again, so ignoring them can only repeat records, never
//! skip one.

use std::collections::HashMap;

/// The offsets one batch read from one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub partition: i32,
    pub epoch: u64,
    pub first: i64,
    pub last: i64,
}

/// The spans of one batch, built message by message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct BatchSpans(pub Vec<Span>);

impl BatchSpans {
    /// Adds one message. Messages of a partition arrive in offset order
    /// within an epoch; anything else starts a new span.
    pub fn add(&mut self, partition: i32, epoch: u64, offset: i64) {
        if let Some(span) = self
            .0
            .iter_mut()
            .rev()
            .find(|s| s.partition == partition)
            .filter(|s| s.epoch == epoch && offset > s.last)
        {
            span.last = offset;
            return;
        }
        self.0.push(Span {
            partition,
            epoch,
            first: offset,
            last: offset,
        });
    }
}

/// What to do after an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Everything before `next` was delivered: commit `next`.
    Commit { partition: i32, next: i64 },
    /// Redeliver from `offset`.
    Seek { partition: i32, offset: i64 },
}

#[derive(Debug, Default, Clone, Copy)]
struct PartitionState {
    epoch: u64,
    assigned: bool,
}

/// Epochs of the partitions this source has seen.
#[derive(Debug, Default)]
pub(crate) struct OffsetBook {
    partitions: HashMap<i32, PartitionState>,
}

impl OffsetBook {
    /// The current epoch of `partition`.
    pub fn epoch(&self, partition: i32) -> u64 {
        self.partitions.get(&partition).map_or(0, |p| p.epoch)
    }

    /// Partitions were assigned to this member.
    pub fn assigned(&mut self, partitions: &[i32]) {
        for &p in partitions {
            let state = self.partitions.entry(p).or_default();
            state.epoch += 1;
            state.assigned = true;
        }
    }

    /// Partitions were taken away from this member.
    pub fn revoked(&mut self, partitions: &[i32]) {
        for &p in partitions {
            let state = self.partitions.entry(p).or_default();
            state.epoch += 1;
            state.assigned = false;
        }
    }

    /// Whether `partition` is assigned to this member.
    #[cfg(test)]
    pub fn is_assigned(&self, partition: i32) -> bool {
        self.partitions.get(&partition).is_some_and(|p| p.assigned)
    }

    /// Applies a batch's outcome: `settled` means delivered (or rejected as
    /// bad data, which no retry fixes), else failed.
    pub fn outcome(&mut self, spans: &BatchSpans, settled: bool, actions: &mut Vec<Action>) {
        for span in &spans.0 {
            let Some(state) = self.partitions.get_mut(&span.partition) else {
                continue;
            };
            if state.epoch != span.epoch {
                continue;
            }
            if settled {
                actions.push(Action::Commit {
                    partition: span.partition,
                    next: span.last + 1,
                });
            } else {
                state.epoch += 1;
                if state.assigned {
                    actions.push(Action::Seek {
                        partition: span.partition,
                        offset: span.first,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(parts: &[(i32, u64, &[i64])]) -> BatchSpans {
        let mut s = BatchSpans::default();
        for (p, e, offsets) in parts {
            for o in *offsets {
                s.add(*p, *e, *o);
            }
        }
        s
    }

    #[test]
    fn spans_follow_partitions_and_epochs() {
        let mut s = BatchSpans::default();
        for (p, o) in [(0, 5), (1, 9), (0, 6), (0, 7), (1, 10)] {
            s.add(p, 1, o);
        }
        s.add(0, 2, 3); // new epoch: re-read from 3
        s.add(0, 2, 4);
        assert_eq!(
            s.0,
            vec![
                Span {
                    partition: 0,
                    epoch: 1,
                    first: 5,
                    last: 7
                },
                Span {
                    partition: 1,
                    epoch: 1,
                    first: 9,
                    last: 10
                },
                Span {
                    partition: 0,
                    epoch: 2,
                    first: 3,
                    last: 4
                },
            ]
        );
    }

    #[test]
    fn delivered_batches_commit_past_their_range() {
        let mut book = OffsetBook::default();
        book.assigned(&[0, 1]);
        let mut actions = Vec::new();
        book.outcome(
            &spans(&[(0, 1, &[0, 1, 2]), (1, 1, &[7])]),
            true,
            &mut actions,
        );
        assert_eq!(
            actions,
            vec![
                Action::Commit {
                    partition: 0,
                    next: 3
                },
                Action::Commit {
                    partition: 1,
                    next: 8
                },
            ]
        );
    }

    #[test]
    fn a_failed_batch_seeks_back_and_later_outcomes_of_its_epoch_are_ignored() {
        let mut book = OffsetBook::default();
        book.assigned(&[0]);
        let first = spans(&[(0, 1, &[0, 1])]);
        let second = spans(&[(0, 1, &[2, 3])]);
        let mut actions = Vec::new();
        book.outcome(&first, false, &mut actions);
        assert_eq!(
            actions,
            vec![Action::Seek {
                partition: 0,
                offset: 0
            }]
        );
        actions.clear();
        // The second batch was emitted before the seek and delivered: it
        // must not move the commit point past the failed records.
        book.outcome(&second, true, &mut actions);
        assert!(actions.is_empty(), "{actions:?}");
        // The re-read batches belong to the new epoch.
        assert_eq!(book.epoch(0), 2);
        book.outcome(&spans(&[(0, 2, &[0, 1, 2, 3])]), true, &mut actions);
        assert_eq!(
            actions,
            vec![Action::Commit {
                partition: 0,
                next: 4
            }]
        );
    }

    #[test]
    fn revoked_partitions_are_neither_committed_nor_sought() {
        let mut book = OffsetBook::default();
        book.assigned(&[0, 1]);
        let batch = spans(&[(0, 1, &[10]), (1, 1, &[20])]);
        book.revoked(&[0]);
        let mut actions = Vec::new();
        book.outcome(&batch, true, &mut actions);
        assert_eq!(
            actions,
            vec![Action::Commit {
                partition: 1,
                next: 21
            }]
        );
        actions.clear();
        let failed = spans(&[(1, 1, &[21])]);
        book.revoked(&[1]);
        book.outcome(&failed, false, &mut actions);
        assert!(actions.is_empty());
        // Assigned again: a new epoch, so the old outcomes stay ignored.
        book.assigned(&[0]);
        assert!(book.is_assigned(0));
        book.outcome(&spans(&[(0, 1, &[11])]), true, &mut actions);
        assert!(actions.is_empty());
    }

    #[test]
    fn a_gap_holds_the_commit_back() {
        // Outcomes arrive in emission order, so an undelivered batch is
        // simply not yet yielded; the batches after it wait. Here: a failed
        // batch between two delivered ones.
        let mut book = OffsetBook::default();
        book.assigned(&[0]);
        let mut actions = Vec::new();
        book.outcome(&spans(&[(0, 1, &[0])]), true, &mut actions);
        book.outcome(&spans(&[(0, 1, &[1])]), false, &mut actions);
        book.outcome(&spans(&[(0, 1, &[2])]), true, &mut actions);
        assert_eq!(
            actions,
            vec![
                Action::Commit {
                    partition: 0,
                    next: 1
                },
                Action::Seek {
                    partition: 0,
                    offset: 1
                },
            ]
        );
    }
}
