//! Requests in flight: at most `parallelism` at once, and those that share
//! a record key strictly one after the other, in the order they were
//! submitted.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::{Shared, join_all};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Jobs admitted besides those running: enough to keep every slot busy
/// while a hot key waits, small enough to bound memory.
const QUEUE: usize = 1024;

type Done = Shared<oneshot::Receiver<()>>;

/// Runs jobs (each one request with its retries) concurrently, up to a
/// limit, keeping per-key order.
///
/// A job with no key, or whose keys have nothing running or waiting, takes
/// a slot in submission order. A job whose key already has a job running or
/// waiting starts only after that job finished. [`Dispatcher::submit`]
/// waits while the limit of admitted jobs is reached, which is how a slow
/// server slows the pipeline down.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::{Arc, Mutex};
/// use sink_http::Dispatcher;
///
/// let order = Arc::new(Mutex::new(Vec::new()));
/// let mut dispatcher = Dispatcher::new(4);
/// for n in 0..3 {
///     let order = order.clone();
///     // Same key: run one after the other, in submission order.
///     dispatcher.submit([bytes::Bytes::from_static(b"device-1")], async move {
///         order.lock().unwrap().push(n);
///     }).await;
/// }
/// dispatcher.wait_idle().await;
/// assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
/// # }
/// ```
pub struct Dispatcher {
    parallelism: usize,
    slots: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    admit_limit: u32,
    tails: Arc<Mutex<HashMap<Bytes, (u64, Done)>>>,
    next_id: u64,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("parallelism", &self.parallelism)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// Cleans up after a job, also when it panics: frees the slot, lets the
/// next job of its keys start, and forgets keys nobody waits on.
struct Finish {
    id: u64,
    keys: Vec<Bytes>,
    tails: Arc<Mutex<HashMap<Bytes, (u64, Done)>>>,
    /// Dropped last, waking the next job of each key (none without keys).
    _done: Option<oneshot::Sender<()>>,
    _admitted: OwnedSemaphorePermit,
}

impl Drop for Finish {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let mut tails = self.tails.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if tails.get(key).is_some_and(|(id, _)| *id == self.id) {
                tails.remove(key);
            }
        }
        // `_done` drops after this, waking the next job of each key.
    }
}

impl Dispatcher {
    /// At most `parallelism` jobs running at once (at least 1).
    pub fn new(parallelism: usize) -> Self {
        let parallelism = parallelism.max(1);
        let admit_limit = u32::try_from(parallelism + QUEUE).unwrap_or(u32::MAX);
        Dispatcher {
            parallelism,
            slots: Arc::new(Semaphore::new(parallelism)),
            admitted: Arc::new(Semaphore::new(admit_limit as usize)),
            admit_limit,
            tails: Arc::new(Mutex::new(HashMap::new())),
            next_id: 0,
        }
    }

    /// The most jobs running at once.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Jobs admitted and not finished (running or waiting).
    pub fn in_flight(&self) -> usize {
        self.admit_limit as usize - self.admitted.available_permits()
    }

    /// Starts `job` on the runtime once its keys' earlier jobs are done and
    /// a slot is free. Returns when the job is admitted; it runs on its own.
    pub async fn submit<F>(&mut self, keys: impl IntoIterator<Item = Bytes>, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let admitted = self
            .admitted
            .clone()
            .acquire_owned()
            .await
            .expect("the dispatcher never closes its semaphores");
        let id = self.next_id;
        self.next_id += 1;
        let mut keys: Vec<Bytes> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut before = Vec::new();
        let mut done_tx = None;
        if !keys.is_empty() {
            // Only keyed jobs need a signal for their successors.
            let (tx, rx) = oneshot::channel();
            let done = rx.shared();
            done_tx = Some(tx);
            let mut tails = self.tails.lock().unwrap_or_else(|p| p.into_inner());
            for key in &keys {
                if let Some((_, previous)) = tails.insert(key.clone(), (id, done.clone())) {
                    before.push(previous);
                }
            }
        }
        let finish = Finish {
            id,
            keys,
            tails: self.tails.clone(),
            _done: done_tx,
            _admitted: admitted,
        };
        if before.is_empty() {
            // Nothing to wait for: take the slot here, so jobs without a
            // key start in submission order.
            let slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("the dispatcher never closes its semaphores");
            tokio::spawn(async move {
                job.await;
                drop(slot);
                drop(finish);
            });
        } else {
            let slots = self.slots.clone();
            tokio::spawn(async move {
                join_all(before).await;
                let slot = slots
                    .acquire_owned()
                    .await
                    .expect("the dispatcher never closes its semaphores");
                job.await;
                drop(slot);
                drop(finish);
            });
        }
    }

    /// Waits until every admitted job has finished.
    pub async fn wait_idle(&self) {
        // Every job holds an admission permit until it is done, and
        // `submit` cannot run meanwhile (it takes `&mut self`).
        let all = self
            .admitted
            .acquire_many(self.admit_limit)
            .await
            .expect("the dispatcher never closes its semaphores");
        drop(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn never_more_than_parallelism() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut d = Dispatcher::new(3);
        for _ in 0..20 {
            let (running, peak) = (running.clone(), peak.clone());
            d.submit(None, async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
            .await;
        }
        d.wait_idle().await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(d.in_flight(), 0);
    }

    #[tokio::test]
    async fn same_key_runs_in_order_other_keys_overlap() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut d = Dispatcher::new(8);
        for n in 0..6u32 {
            let key = Bytes::from(if n % 2 == 0 { "a" } else { "b" });
            let log = log.clone();
            d.submit([key.clone()], async move {
                log.lock().unwrap().push(format!("start {key:?} {n}"));
                // Later jobs finish sooner: order must come from the keys.
                tokio::time::sleep(Duration::from_millis(u64::from(30 - n * 5))).await;
                log.lock().unwrap().push(format!("end {key:?} {n}"));
            })
            .await;
        }
        d.wait_idle().await;
        let log = log.lock().unwrap().clone();
        for key in ["a", "b"] {
            let mine: Vec<&String> = log.iter().filter(|l| l.contains(&format!("b\"{key}\""))).collect();
            // start n, end n, start n+2, end n+2, ...
            for pair in mine.chunks(2) {
                assert!(pair[0].starts_with("start") && pair[1].starts_with("end"), "{log:?}");
                assert_eq!(pair[0].rsplit(' ').next(), pair[1].rsplit(' ').next(), "{log:?}");
            }
        }
        // The two keys overlap: `b` 1 starts before `a` 0 ends.
        let a0_end = log.iter().position(|l| l == "end b\"a\" 0").unwrap();
        let b1_start = log.iter().position(|l| l == "start b\"b\" 1").unwrap();
        assert!(b1_start < a0_end, "{log:?}");
        assert!(d.tails.lock().unwrap().is_empty(), "finished keys are forgotten");
    }

    #[tokio::test]
    async fn multi_key_job_waits_for_each_key() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut d = Dispatcher::new(4);
        let push = |log: &Arc<Mutex<Vec<&'static str>>>, s| log.lock().unwrap().push(s);
        let l = log.clone();
        d.submit([Bytes::from("x")], async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            push(&l, "x");
        })
        .await;
        let l = log.clone();
        d.submit([Bytes::from("y")], async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            push(&l, "y");
        })
        .await;
        let l = log.clone();
        d.submit([Bytes::from("x"), Bytes::from("y")], async move { push(&l, "xy") })
            .await;
        d.wait_idle().await;
        assert_eq!(*log.lock().unwrap(), ["y", "x", "xy"]);
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_block_its_key() {
        let mut d = Dispatcher::new(1);
        d.submit([Bytes::from("k")], async { panic!("job failed") }).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        d.submit([Bytes::from("k")], async move {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .await;
        d.wait_idle().await;
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
