//! Requests in flight: at most `parallelism` at once, and those that share
//! a record key strictly one after the other, in the order they were
//! submitted.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared, join_all};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Jobs admitted besides those running: enough to keep every slot busy
/// while a hot key waits, small enough to bound memory.
const QUEUE: usize = 1024;

type Done = Shared<oneshot::Receiver<()>>;
type Tails = Arc<Mutex<HashMap<Bytes, (u64, Done)>>>;

/// A job and what to clean up after it.
struct Job {
    work: BoxFuture<'static, ()>,
    _finish: Finish,
}

/// Jobs ready to run, and how many runners are busy.
struct Ready {
    queue: VecDeque<Job>,
    runners: usize,
}

struct State {
    parallelism: usize,
    ready: Mutex<Ready>,
}

/// Runs jobs (each one request with its retries) concurrently, up to a
/// limit, keeping per-key order.
///
/// Jobs become ready in submission order, except that a job whose key
/// already has a job running or waiting becomes ready only when that one
/// finished. Up to `parallelism` runners take ready jobs in order; a runner
/// that finishes a job goes straight on with the next ready one, so a
/// steady stream of jobs costs no task start per job.
/// [`Dispatcher::submit`] waits while the limit of admitted jobs is
/// reached, which is how a slow server slows the pipeline down.
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
    state: Arc<State>,
    admitted: Arc<Semaphore>,
    admit_limit: u32,
    tails: Tails,
    next_id: u64,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("parallelism", &self.state.parallelism)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// Cleans up after a job, also when it panics: lets the next job of its
/// keys become ready, forgets keys nobody waits on, frees the admission.
struct Finish {
    id: u64,
    keys: Vec<Bytes>,
    tails: Option<Tails>,
    /// Dropped last, waking the next job of each key (none without keys).
    _done: Option<oneshot::Sender<()>>,
    _admitted: OwnedSemaphorePermit,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let Some(tails) = &self.tails else { return };
        let mut tails = tails.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if tails.get(key).is_some_and(|(id, _)| *id == self.id) {
                tails.remove(key);
            }
        }
    }
}

impl State {
    /// Runs `job` now if a runner is free, else queues it.
    fn ready(self: &Arc<Self>, job: Job) {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if ready.runners < self.parallelism {
            ready.runners += 1;
            drop(ready);
            tokio::spawn(run(self.clone(), job));
        } else {
            ready.queue.push_back(job);
        }
    }

    /// The next queued job for a runner that finished one, or `None` after
    /// giving the runner up.
    fn next(&self) -> Option<Job> {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        let next = ready.queue.pop_front();
        if next.is_none() {
            ready.runners -= 1;
        }
        next
    }
}

/// Gives the runner's place to a new runner if a job panicked.
struct Runner {
    state: Arc<State>,
    idle: bool,
}

impl Drop for Runner {
    fn drop(&mut self) {
        if self.idle {
            return;
        }
        // Unwinding from a panicking job: keep the queue moving.
        if let Some(job) = self.state.next() {
            tokio::spawn(run(self.state.clone(), job));
        }
    }
}

async fn run(state: Arc<State>, first: Job) {
    let mut runner = Runner { state, idle: false };
    let mut job = first;
    loop {
        let Job { work, _finish } = job;
        work.await;
        drop(_finish);
        match runner.state.next() {
            Some(next) => job = next,
            None => {
                runner.idle = true;
                return;
            }
        }
    }
}

impl Dispatcher {
    /// At most `parallelism` jobs running at once (at least 1).
    pub fn new(parallelism: usize) -> Self {
        let parallelism = parallelism.max(1);
        let admit_limit = u32::try_from(parallelism + QUEUE).unwrap_or(u32::MAX);
        Dispatcher {
            state: Arc::new(State {
                parallelism,
                ready: Mutex::new(Ready {
                    queue: VecDeque::new(),
                    runners: 0,
                }),
            }),
            admitted: Arc::new(Semaphore::new(admit_limit as usize)),
            admit_limit,
            tails: Arc::default(),
            next_id: 0,
        }
    }

    /// The most jobs running at once.
    pub fn parallelism(&self) -> usize {
        self.state.parallelism
    }

    /// Jobs admitted and not finished (running or waiting).
    pub fn in_flight(&self) -> usize {
        self.admit_limit as usize - self.admitted.available_permits()
    }

    /// Hands `job` over: it runs on the runtime once its keys' earlier jobs
    /// are done and a runner is free. Returns when the job is admitted.
    pub async fn submit<F>(&mut self, keys: impl IntoIterator<Item = Bytes>, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let admitted = self
            .admitted
            .clone()
            .acquire_owned()
            .await
            .expect("the dispatcher never closes its semaphore");
        let id = self.next_id;
        self.next_id += 1;
        let mut keys: Vec<Bytes> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut before = Vec::new();
        let mut done_tx = None;
        let mut tails = None;
        if !keys.is_empty() {
            // Only keyed jobs need a signal for their successors.
            let (tx, rx) = oneshot::channel();
            let done = rx.shared();
            done_tx = Some(tx);
            tails = Some(self.tails.clone());
            let mut map = self.tails.lock().unwrap_or_else(|p| p.into_inner());
            for key in &keys {
                if let Some((_, previous)) = map.insert(key.clone(), (id, done.clone())) {
                    before.push(previous);
                }
            }
        }
        let job = Job {
            work: job.boxed(),
            _finish: Finish {
                id,
                keys,
                tails,
                _done: done_tx,
                _admitted: admitted,
            },
        };
        if before.is_empty() {
            self.state.ready(job);
        } else {
            let state = self.state.clone();
            tokio::spawn(async move {
                join_all(before).await;
                state.ready(job);
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
            .expect("the dispatcher never closes its semaphore");
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
            let mine: Vec<&String> = log
                .iter()
                .filter(|l| l.contains(&format!("b\"{key}\"")))
                .collect();
            // start n, end n, start n+2, end n+2, ...
            for pair in mine.chunks(2) {
                assert!(
                    pair[0].starts_with("start") && pair[1].starts_with("end"),
                    "{log:?}"
                );
                assert_eq!(
                    pair[0].rsplit(' ').next(),
                    pair[1].rsplit(' ').next(),
                    "{log:?}"
                );
            }
        }
        // The two keys overlap: `b` 1 starts before `a` 0 ends.
        let a0_end = log.iter().position(|l| l == "end b\"a\" 0").unwrap();
        let b1_start = log.iter().position(|l| l == "start b\"b\" 1").unwrap();
        assert!(b1_start < a0_end, "{log:?}");
        assert!(
            d.tails.lock().unwrap().is_empty(),
            "finished keys are forgotten"
        );
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
        d.submit([Bytes::from("x"), Bytes::from("y")], async move {
            push(&l, "xy")
        })
        .await;
        d.wait_idle().await;
        assert_eq!(*log.lock().unwrap(), ["y", "x", "xy"]);
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_block_its_key() {
        let mut d = Dispatcher::new(1);
        d.submit([Bytes::from("k")], async { panic!("job failed") })
            .await;
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
