//! Which offsets of a partition may be committed, from the outcomes of the
//! batches read from it.
//!
//! Each batch carries the offset range it read, tagged with the
//! partition's *epoch*. The epoch changes when the reader seeks back to
//! deliver a failed batch again: what follows in the partition is then no
//! longer a continuation of what was emitted before. Outcomes arrive in
//! emission order (from the [`AckTracker`](connector_core::AckTracker)); for
//! the current epoch a settled batch moves the commit point past its range
//! and a failed batch seeks back to its start and starts a new epoch.
//! Outcomes of older epochs are ignored: the range they cover is read again,
//! so ignoring them can only repeat records, never skip one.

/// The offsets one batch read from its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub epoch: u64,
    pub first: i64,
    pub last: i64,
}

/// What to do after an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Everything before `next` was delivered: commit `next`.
    Commit { next: i64 },
    /// Deliver again from `offset`.
    Seek { offset: i64 },
    /// The outcome belongs to an older epoch.
    Ignore,
}

/// The epoch of one partition.
#[derive(Debug, Default)]
pub(crate) struct PartitionBook {
    epoch: u64,
}

impl PartitionBook {
    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Applies a batch's outcome: `settled` means delivered (or rejected as
    /// bad data, which no retry fixes), else failed.
    pub fn outcome(&mut self, span: Span, settled: bool) -> Action {
        if span.epoch != self.epoch {
            Action::Ignore
        } else if settled {
            Action::Commit {
                next: span.last + 1,
            }
        } else {
            self.epoch += 1;
            Action::Seek { offset: span.first }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(epoch: u64, first: i64, last: i64) -> Span {
        Span { epoch, first, last }
    }

    #[test]
    fn delivered_batches_commit_past_their_range() {
        let mut book = PartitionBook::default();
        assert_eq!(
            book.outcome(span(0, 0, 9), true),
            Action::Commit { next: 10 }
        );
        assert_eq!(
            book.outcome(span(0, 10, 19), true),
            Action::Commit { next: 20 }
        );
    }

    #[test]
    fn a_failed_batch_seeks_back_and_later_outcomes_of_its_epoch_are_ignored() {
        let mut book = PartitionBook::default();
        assert_eq!(
            book.outcome(span(0, 0, 1), false),
            Action::Seek { offset: 0 }
        );
        // Emitted before the seek and delivered: it must not move the commit
        // point past the failed records.
        assert_eq!(book.outcome(span(0, 2, 3), true), Action::Ignore);
        // Nor may a failure of that old epoch seek again.
        assert_eq!(book.outcome(span(0, 4, 5), false), Action::Ignore);
        assert_eq!(book.epoch(), 1);
        assert_eq!(
            book.outcome(span(1, 0, 3), true),
            Action::Commit { next: 4 }
        );
    }

    #[test]
    fn a_gap_holds_the_commit_back() {
        // Outcomes arrive in emission order, so an undelivered batch is not
        // yielded yet and the batches after it wait. Here: a failed batch
        // between two delivered ones.
        let mut book = PartitionBook::default();
        assert_eq!(
            book.outcome(span(0, 0, 0), true),
            Action::Commit { next: 1 }
        );
        assert_eq!(
            book.outcome(span(0, 1, 1), false),
            Action::Seek { offset: 1 }
        );
        assert_eq!(book.outcome(span(0, 2, 2), true), Action::Ignore);
    }
}
