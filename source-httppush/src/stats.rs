//! Counters of what an endpoint answered, per source.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::queue::Queue;

/// Live counters of one source's endpoint.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub accepted_requests: AtomicU64,
    pub accepted_records: AtomicU64,
    pub bad_requests: AtomicU64,
    pub unauthorized: AtomicU64,
    pub too_large: AtomicU64,
    pub busy: AtomicU64,
    pub delivered_requests: AtomicU64,
    pub failed_requests: AtomicU64,
    pub timed_out_requests: AtomicU64,
    pub redelivered_records: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, pending_records: u64) -> EndpointStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EndpointStats {
            requests: get(&self.requests),
            accepted_requests: get(&self.accepted_requests),
            accepted_records: get(&self.accepted_records),
            bad_requests: get(&self.bad_requests),
            unauthorized: get(&self.unauthorized),
            too_large: get(&self.too_large),
            busy: get(&self.busy),
            delivered_requests: get(&self.delivered_requests),
            failed_requests: get(&self.failed_requests),
            timed_out_requests: get(&self.timed_out_requests),
            redelivered_records: get(&self.redelivered_records),
            pending_records,
        }
    }
}

/// What a source's endpoint has answered so far (see
/// [`HttpPushSource::stats`](crate::HttpPushSource::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests that reached the endpoint (right path and method).
    pub requests: u64,
    /// Requests answered `200` (accepted).
    pub accepted_requests: u64,
    /// Records in those requests.
    pub accepted_records: u64,
    /// Requests answered `400`: the body did not decode.
    pub bad_requests: u64,
    /// Requests answered `401`: missing or wrong bearer token.
    pub unauthorized: u64,
    /// Requests answered `413`: body over `max_body_bytes`.
    pub too_large: u64,
    /// Requests answered `429`: the pipeline was behind.
    pub busy: u64,
    /// With `wait_for_delivery`: requests whose records were delivered.
    pub delivered_requests: u64,
    /// With `wait_for_delivery`: requests answered `500` (not delivered).
    pub failed_requests: u64,
    /// With `wait_for_delivery`: requests answered `504` (no outcome in time).
    pub timed_out_requests: u64,
    /// Records queued again after the sink failed their batch.
    pub redelivered_records: u64,
    /// Records accepted and not yet delivered (queued, in the pipeline, or
    /// waiting for redelivery).
    pub pending_records: u64,
}

/// A handle that reads a source's [`EndpointStats`] while the source runs
/// inside a pipeline. Cheap to clone.
#[derive(Clone)]
pub struct EndpointCounters {
    counters: Arc<Counters>,
    queue: Option<Arc<Queue>>,
}

impl EndpointCounters {
    pub(crate) fn new(counters: Arc<Counters>, queue: Option<Arc<Queue>>) -> Self {
        EndpointCounters { counters, queue }
    }

    /// The current values.
    pub fn snapshot(&self) -> EndpointStats {
        let pending = self.queue.as_ref().map_or(0, |q| q.pending_records());
        self.counters.snapshot(pending as u64)
    }
}

impl fmt::Debug for EndpointCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}
