//! Helpers shared by the integration tests: seeded generator records read
//! in plain Rust, query results as records, and a numbered source that
//! records the outcome of every batch's ack.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connector_core::arrow::{ArrowOptions, FromArrow};
use connector_core::{
    Ack, AckStatus, BadRecord, Batch, DataType, Error, Field, Position, Record, Result, Schema,
    Source, Value,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use source_generator::{GeneratorConfig, GeneratorSource, Template};

/// A bounded, seeded iot generator config.
pub fn iot(seed: u64, count: u64) -> GeneratorConfig {
    GeneratorConfig::new(Template::Iot)
        .interval(Duration::ZERO)
        .seed(seed)
        .count(count)
}

/// Every record the generator makes for `config`, read in plain Rust.
pub async fn generate(config: GeneratorConfig) -> Vec<Record> {
    let mut source = GeneratorSource::new(config);
    let mut records = Vec::new();
    while let Some(batch) = source.next_batch().await.unwrap() {
        records.extend(batch.records);
    }
    records
}

/// Runs `sql` and returns its rows as records.
pub async fn query(ctx: &SessionContext, sql: &str) -> Vec<Record> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    rows(&batches)
}

/// Record batches as records.
pub fn rows(batches: &[RecordBatch]) -> Vec<Record> {
    let mut from = FromArrow::new(ArrowOptions::values_only());
    batches
        .iter()
        .flat_map(|b| from.convert(b).unwrap())
        .collect()
}

pub fn f64_of(r: &Record, name: &str) -> f64 {
    r.get(name)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{name} in {r:?}"))
}

pub fn str_of<'a>(r: &'a Record, name: &str) -> &'a str {
    r.get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{name} in {r:?}"))
}

/// Whether two floats agree to a relative 1e-9 (sums in another order).
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The outcome of each batch of a [`NumberedSource`], by batch number.
pub type Outcomes = Arc<Mutex<Vec<(usize, AckStatus)>>>;

/// What a [`NumberedSource`] puts in a batch besides its numbered records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// An undecodable payload in `Batch::bad`.
    Undecodable,
    /// A record whose `n` is a string.
    WrongType,
    /// A delete record.
    Delete,
}

/// Emits `n = 0..count` (schema `n int64 not null`) in batches of `batch`,
/// each with its own ack whose outcome lands in the shared list. Batch
/// `extra_in` gets `extra` besides its records.
pub struct NumberedSource {
    schema: Arc<Schema>,
    next: i64,
    count: i64,
    batch: i64,
    made: usize,
    outcomes: Outcomes,
    pub extra: Extra,
    pub extra_in: usize,
}

impl NumberedSource {
    pub fn new(count: i64, batch: i64) -> (NumberedSource, Outcomes) {
        let outcomes: Outcomes = Arc::default();
        (
            NumberedSource {
                schema: Arc::new(Schema::new(vec![Field::required("n", DataType::Int64)])),
                next: 0,
                count,
                batch,
                made: 0,
                outcomes: outcomes.clone(),
                extra: Extra::None,
                extra_in: usize::MAX,
            },
            outcomes,
        )
    }

    pub fn with_extra(mut self, extra: Extra, in_batch: usize) -> Self {
        self.extra = extra;
        self.extra_in = in_batch;
        self
    }
}

#[async_trait]
impl Source for NumberedSource {
    fn name(&self) -> &str {
        "numbered source"
    }

    fn schema(&self) -> Option<Arc<Schema>> {
        Some(self.schema.clone())
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.next >= self.count {
            return Ok(None);
        }
        let end = (self.next + self.batch).min(self.count);
        let mut records: Vec<Record> = (self.next..end)
            .map(|n| {
                Record::new(self.schema.clone(), vec![Value::Int64(n)])
                    .with_position(Position::Sequence(n as u64))
            })
            .collect();
        self.next = end;
        let number = self.made;
        self.made += 1;
        let outcomes = self.outcomes.clone();
        let ack = Ack::new(move |status| outcomes.lock().unwrap().push((number, status)));
        let mut bad = Vec::new();
        if number == self.extra_in {
            match self.extra {
                Extra::None => {}
                Extra::Undecodable => bad.push(BadRecord::undecodable(
                    Error::decode("json", "line 1 column 2", "expected value")
                        .in_component("numbered source"),
                    &b"{oops"[..],
                    None,
                )),
                Extra::WrongType => {
                    let at = records.len() / 2;
                    records[at].values[0] = Value::from("seven");
                }
                Extra::Delete => {
                    records[0].kind = connector_core::ChangeKind::Delete;
                }
            }
        }
        let mut batch = Batch::with_ack(records, ack);
        batch.bad = bad;
        Ok(Some(batch))
    }
}

/// Waits until `outcomes` holds `n` entries (the last acks resolve as the
/// query's streams are dropped), then returns them sorted by batch.
pub async fn outcomes(outcomes: &Outcomes, n: usize) -> Vec<(usize, AckStatus)> {
    for _ in 0..500 {
        if outcomes.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut list = outcomes.lock().unwrap().clone();
    list.sort_by_key(|(i, _)| *i);
    list
}

pub fn delivered(list: &[(usize, AckStatus)]) -> Vec<usize> {
    list.iter()
        .filter(|(_, s)| s.is_delivered())
        .map(|(i, _)| *i)
        .collect()
}

pub fn failed(list: &[(usize, AckStatus)]) -> Vec<usize> {
    list.iter()
        .filter(|(_, s)| matches!(s, AckStatus::Failed(_)))
        .map(|(i, _)| *i)
        .collect()
}
