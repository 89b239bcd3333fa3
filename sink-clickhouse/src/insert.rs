//! One insert, start to finish: send, read ClickHouse's answer, retry what
//! may heal, and never repeat an insert that may already have landed
//! without first finding out whether it did.
//! (See the crate docs, "Retries without duplicates".)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use connector_core::{Error, Result};
use rand::Rng;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::client::{Client, ErrorClass, RequestError};
use crate::config::SPEC;
use crate::types::quote_string;

/// Everything an insert needs besides its data.
#[derive(Debug)]
pub struct Inserter {
    /// The HTTP client.
    pub client: Arc<Client>,
    /// URL parameters sent with every insert (settings, `log_queries`).
    pub params: Vec<(String, String)>,
    /// Whether to send `insert_deduplication_token`.
    pub dedup_token: bool,
    /// How long to keep retrying.
    pub retry_timeout: Duration,
    /// How long to wait for an ambiguous insert to finish on the server.
    pub settle_timeout: Duration,
}

/// One insert.
#[derive(Debug)]
pub struct InsertJob {
    /// `INSERT INTO ... FORMAT RowBinary`.
    pub sql: String,
    /// The rows.
    pub body: Bytes,
    /// How many rows.
    pub rows: usize,
    /// Query id and deduplication token, the same on every attempt.
    pub id: String,
}

/// How an insert ended.
#[derive(Debug)]
pub enum Outcome {
    /// ClickHouse accepted the rows.
    Delivered,
    /// ClickHouse refused the rows as bad data.
    Rejected(Error),
    /// Retries ran out; the source should deliver the rows again.
    Failed(Error),
    /// An error no retry can fix and that is not about the data (unknown
    /// table, credentials refused): the sink cannot go on.
    Fatal(Error),
}

/// What the server knows of an insert whose outcome was not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landed {
    /// It finished: the rows are in.
    Yes,
    /// It failed: nothing was inserted.
    No,
    /// The server cannot tell.
    Unknown,
}

/// Exponential backoff from 100ms to 5s with ±20% jitter.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        base.mul_f64(rand::rng().random_range(0.8..1.2))
    }
}

impl Inserter {
    /// Runs `job` until it is delivered, refused, or out of retries.
    pub async fn run(&self, job: &InsertJob) -> Outcome {
        let started = Instant::now();
        let mut backoff = Backoff::default();
        let what = format!("insert of {} rows", job.rows);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let index = self.client.current();
            let mut params: Vec<(&str, &str)> = self
                .params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            params.push(("query_id", &job.id));
            if self.dedup_token {
                params.push(("insert_deduplication_token", &job.id));
            }
            let err = match self
                .client
                .insert(index, &job.sql, &params, job.body.clone())
                .await
            {
                Ok(()) => {
                    debug!(rows = job.rows, id = %job.id, attempt, "insert accepted");
                    return Outcome::Delivered;
                }
                Err(e) => e,
            };
            match err.class() {
                ErrorClass::BadData => {
                    return Outcome::Rejected(Error::rejected(
                        SPEC.component(),
                        what,
                        err.to_string(),
                    ));
                }
                ErrorClass::Auth
                | ErrorClass::Permission
                | ErrorClass::NotFound
                | ErrorClass::Permanent => return Outcome::Fatal(err.to_error(&what)),
                ErrorClass::Transient => {
                    if matches!(err, RequestError::Connect { .. }) {
                        self.client.fail_over(index);
                    }
                }
                ErrorClass::Ambiguous | ErrorClass::AlreadyRunning => {
                    match self.landed(index, &job.id).await {
                        Landed::Yes => {
                            warn!(
                                rows = job.rows,
                                id = %job.id,
                                error = %err,
                                "the insert's answer was lost, but the server's query log shows it finished; not repeating it"
                            );
                            return Outcome::Delivered;
                        }
                        Landed::No => {}
                        Landed::Unknown => self.client.fail_over(index),
                    }
                }
            }
            let wait = backoff.next_wait();
            if started.elapsed() + wait > self.retry_timeout {
                let error = Error::transient(
                    SPEC.component(),
                    what,
                    format!(
                        "gave up after {attempt} attempts in {:.1}s: {err}",
                        started.elapsed().as_secs_f64()
                    ),
                );
                return Outcome::Failed(error);
            }
            warn!(
                attempt,
                rows = job.rows,
                error = %err,
                retry_in_ms = wait.as_millis() as u64,
                "clickhouse insert failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Asks endpoint `index` whether the insert `id` ran (see the module docs).
    pub async fn landed(&self, index: usize, id: &str) -> Landed {
        let quoted = quote_string(id);
        let deadline = Instant::now() + self.settle_timeout;
        let running = format!("SELECT count() FROM system.processes WHERE query_id = {quoted}");
        loop {
            match self.client.query(index, &running, &[]).await {
                Ok(n) if n.trim() == "0" => break,
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(_) | Err(_) => return Landed::Unknown,
            }
        }
        if self
            .client
            .query(index, "SYSTEM FLUSH LOGS", &[])
            .await
            .is_err()
        {
            return Landed::Unknown;
        }
        let lookup = format!(
            "SELECT toString(type) FROM system.query_log \
             WHERE event_date >= yesterday() AND query_id = {quoted} FORMAT TSV"
        );
        let Ok(types) = self.client.query(index, &lookup, &[]).await else {
            return Landed::Unknown;
        };
        let mut failed = false;
        for t in types.lines().map(str::trim) {
            match t {
                // The log's `type` is a number on old servers, an enum name on new ones.
                "2" | "QueryFinish" => return Landed::Yes,
                "3" | "4" | "ExceptionBeforeStart" | "ExceptionWhileProcessing" => failed = true,
                _ => {}
            }
        }
        if failed { Landed::No } else { Landed::Unknown }
    }
}

/// Runs `operation` until it succeeds, fails for good, or `retry_timeout`
/// passes; transient failures are logged and retried with backoff.
pub async fn with_retries<T, F, Fut>(
    what: &str,
    retry_timeout: Duration,
    mut operation: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        match operation().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => {
                let wait = backoff.next_wait();
                if started.elapsed() + wait > retry_timeout {
                    return Err(e);
                }
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "clickhouse sink: {what} failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}
