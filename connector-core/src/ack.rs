//! End-to-end acknowledgement.
//!
//! A source attaches an [`Ack`] to every batch it emits. Whoever finally makes
//! the batch durable (a sink, after its write succeeded) resolves it as
//! delivered, failed or rejected. The source learns the outcome and only then
//! commits offsets, acknowledges messages or answers an HTTP client.
//!
//! Acks can be cloned (a batch split in two, or fanned out to two sinks) and
//! merged (several batches written in one insert). A clone is one more party
//! that must resolve; the source hears one combined outcome when every party
//! has resolved, the worst of them: failed beats rejected beats delivered.
//! A party that drops its handle without resolving counts as failed, so a
//! batch lost in a crash or a bug is never mistaken for a delivered one.
//!
//! [`AckTracker`] hands out acks for a source and yields their outcomes in
//! the order the acks were created, whatever order they resolve in, so that a
//! source can commit exactly the positions that were delivered.
//!
//! ```
//! use connector_core::ack::{AckStatus, AckTracker};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut tracker = AckTracker::new();
//! let first = tracker.track(10_i64); // e.g. the last offset of batch 1
//! let second = tracker.track(20_i64);
//!
//! second.delivered(); // resolves out of order...
//! assert!(tracker.try_next().is_none()); // ...so nothing is released yet
//! first.delivered();
//! assert!(matches!(tracker.next().await, Some((10, AckStatus::Delivered))));
//! assert!(matches!(tracker.next().await, Some((20, AckStatus::Delivered))));
//! assert!(tracker.next().await.is_none()); // nothing outstanding
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;

/// The outcome of a batch.
#[derive(Debug, Clone)]
pub enum AckStatus {
    /// Durable at the destination.
    Delivered,
    /// Refused as bad data; delivering it again would not help, so the
    /// source moves past it.
    Rejected(Arc<Error>),
    /// Not delivered; the source should deliver it again.
    Failed(Arc<Error>),
}

impl AckStatus {
    /// Whether the batch was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, AckStatus::Delivered)
    }

    /// Whether the source may move past the batch (delivered or rejected).
    pub fn is_settled(&self) -> bool {
        !matches!(self, AckStatus::Failed(_))
    }

    /// The error of a failed or rejected batch.
    pub fn error(&self) -> Option<&Arc<Error>> {
        match self {
            AckStatus::Delivered => None,
            AckStatus::Rejected(e) | AckStatus::Failed(e) => Some(e),
        }
    }

    fn severity(&self) -> u8 {
        match self {
            AckStatus::Delivered => 0,
            AckStatus::Rejected(_) => 1,
            AckStatus::Failed(_) => 2,
        }
    }

    /// The worse of two outcomes (the first one wins a tie).
    fn worst(self, other: AckStatus) -> AckStatus {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

type Callback = Box<dyn FnOnce(AckStatus) + Send>;

struct Shared {
    state: Mutex<(AckStatus, Option<Callback>)>,
}

impl Shared {
    fn record(&self, status: AckStatus) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let current = std::mem::replace(&mut state.0, AckStatus::Delivered);
        state.0 = current.worst(status);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(callback) = state.1.take() {
            callback(std::mem::replace(&mut state.0, AckStatus::Delivered));
        }
    }
}

/// A handle that must be resolved once: [`Ack::delivered`], [`Ack::failed`]
/// or [`Ack::rejected`]. Dropping it unresolved counts as failed.
///
/// `Ack::default()` (or [`Ack::none`]) is a handle nobody listens to.
#[derive(Default)]
pub struct Ack {
    shared: Option<Arc<Shared>>,
}

impl Ack {
    /// A handle nobody listens to; resolving it does nothing.
    pub fn none() -> Self {
        Ack { shared: None }
    }

    /// A handle that calls `on_resolve` with the combined outcome once every
    /// clone has resolved or been dropped. The callback runs on the thread
    /// that resolves last and must not block.
    pub fn new(on_resolve: impl FnOnce(AckStatus) + Send + 'static) -> Self {
        Ack {
            shared: Some(Arc::new(Shared {
                state: Mutex::new((AckStatus::Delivered, Some(Box::new(on_resolve)))),
            })),
        }
    }

    /// A handle and a future of its outcome, for one-off waits (an HTTP
    /// request waiting until its records are delivered).
    pub fn channel() -> (Ack, AckReceiver) {
        let (tx, rx) = oneshot::channel();
        let ack = Ack::new(move |status| {
            let _ = tx.send(status);
        });
        (ack, AckReceiver { rx })
    }

    /// Whether anyone listens to this handle.
    pub fn is_tracked(&self) -> bool {
        self.shared.is_some()
    }

    /// Resolves with `status`.
    pub fn resolve(mut self, status: AckStatus) {
        if let Some(shared) = self.shared.take() {
            shared.record(status);
        }
    }

    /// The records were made durable.
    pub fn delivered(self) {
        self.resolve(AckStatus::Delivered);
    }

    /// The records were not delivered; the source should deliver them again.
    pub fn failed(self, error: Error) {
        self.resolve(AckStatus::Failed(Arc::new(error)));
    }

    /// The records are bad data that no retry will fix.
    pub fn rejected(self, error: Error) {
        self.resolve(AckStatus::Rejected(Arc::new(error)));
    }

    /// One handle standing for several: resolving it resolves each of them
    /// with the same outcome (dropping it fails them all).
    pub fn merge(acks: impl IntoIterator<Item = Ack>) -> Ack {
        let mut tracked: Vec<Ack> = acks.into_iter().filter(Ack::is_tracked).collect();
        match tracked.len() {
            0 => Ack::none(),
            1 => tracked.pop().unwrap_or_default(),
            _ => Ack::new(move |status| {
                for ack in tracked {
                    ack.resolve(status.clone());
                }
            }),
        }
    }

    /// A handle that first runs `observer` with the outcome, then resolves
    /// this one with it. Used to count outcomes and free in-flight slots.
    pub fn then(self, observer: impl FnOnce(&AckStatus) + Send + 'static) -> Ack {
        Ack::new(move |status| {
            observer(&status);
            self.resolve(status);
        })
    }
}

impl Clone for Ack {
    /// Another party that must resolve before the outcome is known.
    fn clone(&self) -> Self {
        Ack {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.record(AckStatus::Failed(Arc::new(Error::transient(
                "pipeline",
                "deliver batch",
                "acknowledgement dropped before the batch was delivered",
            ))));
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_tracked() {
            "Ack(tracked)"
        } else {
            "Ack(none)"
        })
    }
}

/// The outcome of an [`Ack::channel`] handle.
#[derive(Debug)]
pub struct AckReceiver {
    rx: oneshot::Receiver<AckStatus>,
}

impl Future for AckReceiver {
    type Output = AckStatus;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AckStatus> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                AckStatus::Failed(Arc::new(Error::transient(
                    "pipeline",
                    "deliver batch",
                    "acknowledgement lost",
                )))
            })
        })
    }
}

/// Hands out acks and yields their outcomes in creation order.
///
/// `T` is whatever the source needs to act on an outcome: Kafka offsets,
/// Pulsar message ids.
pub struct AckTracker<T> {
    tx: mpsc::UnboundedSender<(u64, AckStatus)>,
    rx: mpsc::UnboundedReceiver<(u64, AckStatus)>,
    next_seq: u64,
    front_seq: u64,
    pending: VecDeque<(T, Option<AckStatus>)>,
}

impl<T> Default for AckTracker<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> AckTracker<T> {
    /// An empty tracker.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        AckTracker {
            tx,
            rx,
            next_seq: 0,
            front_seq: 0,
            pending: VecDeque::new(),
        }
    }

    /// A new ack whose outcome will be yielded with `token`, after the
    /// outcomes of every ack tracked before it.
    pub fn track(&mut self, token: T) -> Ack {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back((token, None));
        let tx = self.tx.clone();
        Ack::new(move |status| {
            let _ = tx.send((seq, status));
        })
    }

    /// Acks handed out whose outcomes have not been yielded yet.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    fn store(&mut self, seq: u64, status: AckStatus) {
        let index = usize::try_from(seq - self.front_seq).unwrap_or(usize::MAX);
        if let Some(slot) = self.pending.get_mut(index) {
            slot.1 = Some(status);
        }
    }

    fn pop_ready(&mut self) -> Option<(T, AckStatus)> {
        if matches!(self.pending.front(), Some((_, Some(_)))) {
            let (token, status) = self.pending.pop_front()?;
            self.front_seq += 1;
            return Some((token, status?));
        }
        None
    }

    /// The next outcome in order, without waiting.
    pub fn try_next(&mut self) -> Option<(T, AckStatus)> {
        while let Ok((seq, status)) = self.rx.try_recv() {
            self.store(seq, status);
        }
        self.pop_ready()
    }

    /// Polls for the next outcome in order; `Ready(None)` when no ack is outstanding.
    pub fn poll_next_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Option<(T, AckStatus)>> {
        loop {
            if let Some(ready) = self.pop_ready() {
                return Poll::Ready(Some(ready));
            }
            if self.pending.is_empty() {
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some((seq, status))) => self.store(seq, status),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Waits for the next outcome in order; `None` at once when no ack is
    /// outstanding.
    pub async fn next(&mut self) -> Option<(T, AckStatus)> {
        std::future::poll_fn(|cx| self.poll_next_outcome(cx)).await
    }
}

impl<T: Unpin> futures::Stream for AckTracker<T> {
    type Item = (T, AckStatus);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_outcome(cx)
    }
}

impl<T> fmt::Debug for AckTracker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckTracker")
            .field("outstanding", &self.pending.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> Error {
        Error::transient("test sink", "write", "boom")
    }

    #[tokio::test]
    async fn resolves_each_way() {
        let (ack, rx) = Ack::channel();
        ack.delivered();
        assert!(rx.await.is_delivered());

        let (ack, rx) = Ack::channel();
        ack.failed(err());
        assert!(matches!(rx.await, AckStatus::Failed(e) if e.to_string().contains("boom")));

        let (ack, rx) = Ack::channel();
        ack.rejected(Error::rejected("test sink", "record 1", "bad"));
        let status = rx.await;
        assert!(matches!(status, AckStatus::Rejected(_)));
        assert!(status.is_settled());
    }

    #[tokio::test]
    async fn dropping_means_failed() {
        let (ack, rx) = Ack::channel();
        drop(ack);
        match rx.await {
            AckStatus::Failed(e) => assert!(e.to_string().contains("dropped")),
            other => panic!("expected failed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn clones_combine_to_the_worst() {
        let (ack, mut rx) = Ack::channel();
        let a = ack.clone();
        let b = ack.clone();
        ack.delivered();
        a.rejected(Error::rejected("s", "r", "bad"));
        assert!(futures::poll!(&mut rx).is_pending(), "one party still open");
        b.delivered();
        assert!(matches!(rx.await, AckStatus::Rejected(_)));

        let (ack, rx) = Ack::channel();
        let a = ack.clone();
        ack.failed(err());
        a.rejected(Error::rejected("s", "r", "bad"));
        assert!(matches!(rx.await, AckStatus::Failed(_)));
    }

    #[tokio::test]
    async fn merged_ack_resolves_every_part() {
        let (a, ra) = Ack::channel();
        let (b, rb) = Ack::channel();
        let merged = Ack::merge([a, Ack::none(), b]);
        merged.failed(err());
        assert!(matches!(ra.await, AckStatus::Failed(_)));
        assert!(matches!(rb.await, AckStatus::Failed(_)));
    }

    #[tokio::test]
    async fn then_observes_before_resolving() {
        let seen = Arc::new(Mutex::new(None));
        let seen2 = seen.clone();
        let (ack, rx) = Ack::channel();
        let wrapped = ack.then(move |s| *seen2.lock().unwrap() = Some(s.is_delivered()));
        wrapped.delivered();
        assert!(rx.await.is_delivered());
        assert_eq!(*seen.lock().unwrap(), Some(true));
    }

    #[tokio::test]
    async fn tracker_yields_in_creation_order() {
        let mut tracker = AckTracker::new();
        let acks: Vec<Ack> = (0..5).map(|i| tracker.track(i)).collect();
        let mut acks: Vec<Option<Ack>> = acks.into_iter().map(Some).collect();
        // Resolve in the order 3, 1, 4, 0, 2 with 1 failing.
        acks[3].take().unwrap().delivered();
        acks[1].take().unwrap().failed(err());
        acks[4].take().unwrap().delivered();
        assert!(tracker.try_next().is_none());
        acks[0].take().unwrap().delivered();
        let (t, s) = tracker.next().await.unwrap();
        assert_eq!((t, s.is_delivered()), (0, true));
        let (t, s) = tracker.next().await.unwrap();
        assert_eq!((t, s.is_settled()), (1, false));
        assert!(tracker.try_next().is_none(), "2 is still open");
        assert_eq!(tracker.outstanding(), 3);
        drop(acks[2].take());
        let rest: Vec<(i32, bool)> = std::iter::from_fn(|| tracker.try_next())
            .map(|(t, s)| (t, s.is_delivered()))
            .collect();
        assert_eq!(rest, vec![(2, false), (3, true), (4, true)]);
        assert!(tracker.next().await.is_none());
    }

    #[tokio::test]
    async fn tracker_wakes_when_resolved_elsewhere() {
        let mut tracker = AckTracker::new();
        let ack = tracker.track("batch");
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            ack.delivered();
        });
        let (token, status) = tracker.next().await.unwrap();
        assert_eq!(token, "batch");
        assert!(status.is_delivered());
    }
}
