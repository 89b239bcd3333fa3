//! The bounded queue between an endpoint and the source that reads it.
//!
//! A request's records are *accepted* when room was reserved for them and
//! they were queued; they stay counted against the limits until their batch
//! is settled (delivered or rejected), so the limits bound everything the
//! source holds: queued, in the pipeline, and waiting to be redelivered.
//! Without `wait_for_delivery`, a batch the sink failed is queued again (its
//! bodies are decoded again) after a short backoff: the client was told
//! `200`, so the source owns the records until they are delivered.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use connector_core::{Ack, AckStatus, Record};
use tokio::sync::Notify;
use tracing::warn;

use crate::stats::Counters;

/// One accepted request body for one source.
pub(crate) struct Item {
    /// The decoded records; `None` after a failed delivery, until the
    /// source decodes `body` again.
    pub records: Option<Vec<Record>>,
    /// The body, kept for redelivery (empty when the client waits for the
    /// outcome instead).
    pub body: Bytes,
    /// Records of the body.
    pub count: usize,
    /// Body bytes counted against the limit.
    pub bytes: usize,
    /// Arrival time, microseconds since the epoch (event time when the
    /// body sets none).
    pub arrived: i64,
    /// Sequence number of the first record (positions are `first_seq + i`).
    pub first_seq: u64,
    /// The waiting client's outcome, with `wait_for_delivery`.
    pub responder: Option<Ack>,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The limits are reached: answer 429.
    Full,
    /// The source is closing: answer 503.
    Closed,
}

struct State {
    items: VecDeque<Item>,
    pending_records: usize,
    pending_bytes: usize,
    closed: bool,
    /// Failed deliveries in a row, for the redelivery backoff.
    failures: u32,
}

/// Accepted records of one source, bounded by record and byte limits.
pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Notify,
    max_records: usize,
    max_bytes: usize,
    counters: Arc<Counters>,
}

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Queue {
    pub(crate) fn new(max_records: usize, max_bytes: usize, counters: Arc<Counters>) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                pending_records: 0,
                pending_bytes: 0,
                closed: false,
                failures: 0,
            }),
            ready: Notify::new(),
            max_records,
            max_bytes,
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves room for `records` records of `bytes` body bytes. A request
    /// larger than the limits is admitted when nothing else is pending, so
    /// it cannot be refused forever.
    pub(crate) fn reserve(&self, records: usize, bytes: usize) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        let idle = state.pending_records == 0 && state.pending_bytes == 0;
        if !idle
            && (state.pending_records + records > self.max_records
                || state.pending_bytes + bytes > self.max_bytes)
        {
            return Err(Refused::Full);
        }
        state.pending_records += records;
        state.pending_bytes += bytes;
        Ok(())
    }

    /// Gives back a reservation.
    pub(crate) fn release(&self, records: usize, bytes: usize) {
        let mut state = self.lock();
        state.pending_records = state.pending_records.saturating_sub(records);
        state.pending_bytes = state.pending_bytes.saturating_sub(bytes);
    }

    /// Queues a reserved item; on a closed queue the item is dropped (its
    /// responder fails).
    pub(crate) fn push(&self, item: Item) {
        {
            let mut state = self.lock();
            if state.closed {
                state.pending_records = state.pending_records.saturating_sub(item.count);
                state.pending_bytes = state.pending_bytes.saturating_sub(item.bytes);
                return;
            }
            state.items.push_back(item);
        }
        self.ready.notify_one();
    }

    /// Waits until something may be ready (spurious wake-ups are possible).
    pub(crate) async fn wait(&self) {
        self.ready.notified().await;
    }

    /// The front item when it must be decoded again, with the backoff to
    /// wait first: `(first_seq, body, arrived, backoff)`.
    pub(crate) fn front_to_redecode(&self) -> Option<(u64, Bytes, i64, Duration)> {
        let state = self.lock();
        let front = state.items.front()?;
        if front.records.is_some() {
            return None;
        }
        let backoff = match state.failures {
            0 => Duration::ZERO,
            n => BACKOFF_START
                .saturating_mul(1 << (n - 1).min(16))
                .min(BACKOFF_MAX),
        };
        Some((front.first_seq, front.body.clone(), front.arrived, backoff))
    }

    /// Stores the records decoded again for the item starting at `seq`, or
    /// drops the item (with its reservation) when they are `None`.
    pub(crate) fn refill(&self, seq: u64, records: Option<Vec<Record>>) {
        let mut state = self.lock();
        let Some(index) = state.items.iter().position(|i| i.first_seq == seq) else {
            return;
        };
        match records {
            Some(records) => {
                if let Some(item) = state.items.get_mut(index) {
                    item.records = Some(records);
                }
            }
            None => {
                if let Some(item) = state.items.remove(index) {
                    state.pending_records = state.pending_records.saturating_sub(item.count);
                    state.pending_bytes = state.pending_bytes.saturating_sub(item.bytes);
                }
            }
        }
    }

    /// Takes decoded items from the front, up to `max_records` records (at
    /// least one item), stopping at an item that must be decoded again.
    pub(crate) fn take(&self, max_records: usize) -> Vec<Item> {
        let mut state = self.lock();
        let mut taken = Vec::new();
        let mut records = 0;
        while let Some(front) = state.items.front() {
            if front.records.is_none() || (!taken.is_empty() && records + front.count > max_records)
            {
                break;
            }
            records += front.count;
            taken.extend(state.items.pop_front());
        }
        taken
    }

    /// Acts on the outcome of a batch made of `items` (their records are
    /// gone into the batch): answer waiting clients, give back room, or
    /// queue the bodies again for redelivery.
    pub(crate) fn settle(&self, items: Vec<Item>, status: &AckStatus) {
        let mut redeliver = Vec::new();
        let (mut released_records, mut released_bytes) = (0, 0);
        for mut item in items {
            match (item.responder.take(), status) {
                (Some(responder), _) => {
                    responder.resolve(status.clone());
                    released_records += item.count;
                    released_bytes += item.bytes;
                }
                (None, AckStatus::Failed(_)) => redeliver.push(item),
                (None, _) => {
                    released_records += item.count;
                    released_bytes += item.bytes;
                }
            }
        }
        let requeued = !redeliver.is_empty();
        {
            let mut state = self.lock();
            match status {
                AckStatus::Failed(_) => state.failures = state.failures.saturating_add(1),
                AckStatus::Delivered => state.failures = 0,
                AckStatus::Rejected(_) => {}
            }
            if state.closed {
                let lost: usize = redeliver.iter().map(|i| i.count).sum();
                if lost > 0 {
                    warn!(
                        records = lost,
                        "httppush source closed: records of a failed batch cannot be redelivered"
                    );
                }
                for item in &redeliver {
                    released_records += item.count;
                    released_bytes += item.bytes;
                }
            } else {
                self.counters.redelivered_records.fetch_add(
                    redeliver.iter().map(|i| i.count as u64).sum(),
                    Ordering::Relaxed,
                );
                for mut item in redeliver.into_iter().rev() {
                    item.records = None;
                    state.items.push_front(item);
                }
            }
            state.pending_records = state.pending_records.saturating_sub(released_records);
            state.pending_bytes = state.pending_bytes.saturating_sub(released_bytes);
        }
        if requeued {
            self.ready.notify_one();
        }
    }

    /// Closes the queue: later reservations are refused; queued items are
    /// dropped (waiting clients get 500). Returns the records dropped that
    /// had already been answered with 200.
    pub(crate) fn close(&self) -> usize {
        let items: Vec<Item> = {
            let mut state = self.lock();
            state.closed = true;
            let items: Vec<Item> = state.items.drain(..).collect();
            for item in &items {
                state.pending_records = state.pending_records.saturating_sub(item.count);
                state.pending_bytes = state.pending_bytes.saturating_sub(item.bytes);
            }
            items
        };
        items
            .iter()
            .filter(|i| i.responder.is_none())
            .map(|i| i.count)
            .sum()
    }

    /// Records accepted and not yet settled.
    pub(crate) fn pending_records(&self) -> usize {
        self.lock().pending_records
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use connector_core::{Error, Record, Value};

    use super::*;

    fn item(seq: u64, n: usize, responder: Option<Ack>) -> Item {
        Item {
            records: Some(
                (0..n)
                    .map(|i| Record::from_pairs([("n", Value::Int64((seq + i as u64) as i64))]))
                    .collect(),
            ),
            body: Bytes::from_static(b"{}"),
            count: n,
            bytes: 10,
            arrived: 0,
            first_seq: seq,
            responder,
        }
    }

    fn queue(records: usize, bytes: usize) -> Queue {
        Queue::new(records, bytes, Arc::new(Counters::default()))
    }

    #[test]
    fn limits_count_records_and_bytes_but_admit_one_oversized_request_when_idle() {
        let q = queue(3, 25);
        assert_eq!(q.reserve(5, 100), Ok(()), "idle: admitted although too big");
        assert_eq!(q.reserve(1, 1), Err(Refused::Full));
        q.release(5, 100);
        assert_eq!(q.reserve(2, 10), Ok(()));
        assert_eq!(q.reserve(1, 10), Ok(()));
        assert_eq!(q.reserve(1, 1), Err(Refused::Full), "records limit");
        q.release(3, 20);
        assert_eq!(q.reserve(1, 20), Ok(()));
        assert_eq!(q.reserve(1, 10), Err(Refused::Full), "bytes limit");
        q.close();
        assert_eq!(q.reserve(1, 1), Err(Refused::Closed));
    }

    #[test]
    fn take_stops_at_the_batch_size_but_takes_at_least_one_item() {
        let q = queue(100, 1000);
        for (seq, n) in [(0, 5), (5, 2), (7, 2)] {
            q.reserve(n, 10).unwrap();
            q.push(item(seq, n, None));
        }
        assert_eq!(q.take(3).iter().map(|i| i.count).collect::<Vec<_>>(), [5]);
        assert_eq!(
            q.take(4).iter().map(|i| i.count).collect::<Vec<_>>(),
            [2, 2]
        );
        assert!(q.take(4).is_empty());
    }

    #[test]
    fn failed_batches_come_back_first_in_order_and_wait_for_decoding() {
        let q = queue(100, 1000);
        for seq in 0..3 {
            q.reserve(1, 10).unwrap();
            q.push(item(seq, 1, None));
        }
        let mut batch = q.take(2);
        for i in &mut batch {
            i.records.take();
        }
        q.settle(
            batch,
            &AckStatus::Failed(Arc::new(Error::transient("s", "w", "x"))),
        );
        assert_eq!(q.pending_records(), 3, "still owned by the source");
        // The redelivered bodies must be decoded again before anything is
        // taken, and they come before the item that was never sent.
        assert!(q.take(10).is_empty());
        let (seq, _, _, backoff) = q.front_to_redecode().unwrap();
        assert_eq!((seq, backoff), (0, BACKOFF_START));
        q.refill(0, Some(vec![Record::from_pairs([("n", Value::Int64(0))])]));
        // Taking stops at the next body still to decode.
        let first = q.take(10);
        assert_eq!(first.iter().map(|i| i.first_seq).collect::<Vec<_>>(), [0]);
        let (seq, _, _, backoff) = q.front_to_redecode().unwrap();
        assert_eq!((seq, backoff), (1, BACKOFF_START));
        q.refill(1, None); // no longer decodes: dropped with its reservation
        assert_eq!(q.pending_records(), 2);
        let taken = q.take(10);
        assert_eq!(taken.iter().map(|i| i.first_seq).collect::<Vec<_>>(), [2]);
        q.settle(first, &AckStatus::Delivered);
        q.settle(taken, &AckStatus::Delivered);
        assert_eq!(q.pending_records(), 0);
    }

    #[tokio::test]
    async fn waiting_clients_get_the_outcome_and_closing_fails_them() {
        let q = queue(100, 1000);
        let (ack, outcome) = Ack::channel();
        q.reserve(1, 10).unwrap();
        q.push(item(0, 1, Some(ack)));
        let batch = q.take(10);
        q.settle(
            batch,
            &AckStatus::Failed(Arc::new(Error::transient("s", "w", "x"))),
        );
        assert!(matches!(outcome.await, AckStatus::Failed(_)));
        assert_eq!(q.pending_records(), 0, "the client resends, not the source");

        let (ack, outcome) = Ack::channel();
        q.reserve(2, 10).unwrap();
        q.push(item(1, 2, Some(ack)));
        q.reserve(3, 10).unwrap();
        q.push(item(3, 3, None));
        assert_eq!(
            q.close(),
            3,
            "records already answered 200 are reported lost"
        );
        assert!(matches!(outcome.await, AckStatus::Failed(_)));
        assert_eq!(q.pending_records(), 0);
    }
}
