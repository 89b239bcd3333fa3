//! Helpers shared by the integration tests: sink configs for a test
//! server, sources of numbered records whose acks are recorded, and
//! reading tables back.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connector_core::{
    Ack, AckStatus, Batch, DataType, Field, Position, Record, Result, Schema, Source, Value,
};
use sink_clickhouse::{ClickHouseConfig, Endpoint};
use testkit::clickhouse::ClickHouse;

/// Shows the sink's logs in the test output (`RUST_LOG` filters; warnings by default).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
}

/// A config for `table` on `server` (user `default`, database `default`).
pub fn config(server: &ClickHouse, table: &str) -> ClickHouseConfig {
    ClickHouseConfig::new(table, vec![Endpoint::http("127.0.0.1", server.http_port())])
        .retry_timeout(Duration::from_secs(60))
}

/// What happened to the batches of an [`IdSource`].
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Ids of records in delivered batches.
    pub delivered: Vec<i64>,
    /// Ids of records in failed batches.
    pub failed: Vec<i64>,
    /// Ids of records in rejected batches, with the error text.
    pub rejected: Vec<(i64, String)>,
}

/// Schema of the numbered records: `id Int64`, `name String`.
pub fn id_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::required("id", DataType::Int64),
        Field::required("name", DataType::String),
    ]))
}

/// Emits records `id = 0..count` (`name = "n<id>"`) in batches of
/// `batch`, pausing `pause` between batches, and records every ack.
pub struct IdSource {
    schema: Arc<Schema>,
    next: i64,
    count: i64,
    batch: i64,
    pause: Duration,
    outcomes: Arc<Mutex<Outcomes>>,
}

impl IdSource {
    /// A source and the shared record of its acks.
    pub fn new(count: i64, batch: i64, pause: Duration) -> (IdSource, Arc<Mutex<Outcomes>>) {
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        (
            IdSource {
                schema: id_schema(),
                next: 0,
                count,
                batch,
                pause,
                outcomes: outcomes.clone(),
            },
            outcomes,
        )
    }
}

#[async_trait]
impl Source for IdSource {
    fn name(&self) -> &str {
        "id source"
    }

    fn schema(&self) -> Option<Arc<Schema>> {
        Some(self.schema.clone())
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.next >= self.count {
            return Ok(None);
        }
        if self.next > 0 && !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        let end = (self.next + self.batch).min(self.count);
        let ids: Vec<i64> = (self.next..end).collect();
        self.next = end;
        let records = ids
            .iter()
            .map(|&id| {
                Record::new(
                    self.schema.clone(),
                    vec![Value::Int64(id), Value::String(format!("n{id}"))],
                )
                .with_position(Position::Sequence(id as u64))
            })
            .collect();
        let outcomes = self.outcomes.clone();
        let ack = Ack::new(move |status| {
            let mut o = outcomes.lock().unwrap();
            match status {
                AckStatus::Delivered => o.delivered.extend(&ids),
                AckStatus::Failed(_) => o.failed.extend(&ids),
                AckStatus::Rejected(e) => {
                    let text = e.to_string();
                    o.rejected.extend(ids.iter().map(|&id| (id, text.clone())));
                }
            }
        });
        Ok(Some(Batch::with_ack(records, ack)))
    }
}

/// The `id` column of `table`, sorted.
pub fn ids_in(server: &ClickHouse, table: &str) -> Vec<i64> {
    let text = server.query(&format!("SELECT id FROM {table} ORDER BY id"));
    text.lines().map(|l| l.parse().unwrap()).collect()
}

/// Row counts of the inserts into `table` that finished, in order (from
/// the server's query log; the sink logs its inserts).
pub fn insert_sizes(server: &ClickHouse, table: &str) -> Vec<u64> {
    server.query("SYSTEM FLUSH LOGS");
    let text = server.query(&format!(
        "SELECT written_rows FROM system.query_log \
         WHERE type = 2 AND query LIKE 'INSERT INTO `default`.`{table}`%' \
         ORDER BY event_time, query_start_time"
    ));
    text.lines().map(|l| l.parse().unwrap()).collect()
}

/// Waits (up to 30s) until `query` returns `expected`; returns what it last saw.
pub async fn wait_for(server: &ClickHouse, query: &str, expected: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = server.query(query);
        if seen == expected || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
