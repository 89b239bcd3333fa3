//! The source itself: schedules events and fills batches.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connector_core::value::now_micros;
use connector_core::{Batch, Position, Properties, Record, Result, Schema, Source};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::config::GeneratorConfig;

/// Generates events on a schedule: event `n` is due at `start + n × interval`.
///
/// When the reader falls behind, every due event comes in the next batch (up
/// to `batch_size`), so the rate holds even for intervals shorter than the
/// timer resolution. Each event's `time` is its scheduled time. With a zero
/// interval, batches of `batch_size` come as fast as they are read.
///
/// Random choices come from ChaCha8 seeded with `seed`, so a seed gives the
/// same values on every platform and release.
pub struct GeneratorSource {
    config: GeneratorConfig,
    schema: Arc<Schema>,
    rng: ChaCha8Rng,
    emitted: u64,
    start: Option<(Instant, i64)>,
}

impl GeneratorSource {
    /// A source from a typed config.
    pub fn new(config: GeneratorConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_os_rng(),
        };
        GeneratorSource {
            schema: config.template.schema(),
            config,
            rng,
            emitted: 0,
            start: None,
        }
    }

    /// A source from the `stream_generator` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        GeneratorConfig::from_properties(props).map(GeneratorSource::new)
    }

    /// The configuration in use.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// Events generated so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    fn remaining(&self) -> u64 {
        self.config
            .count
            .map_or(u64::MAX, |c| c.saturating_sub(self.emitted))
    }

    /// Events due by `now` that have not been emitted.
    fn due(&self, start: Instant, now: Instant) -> u64 {
        let interval = self.config.interval.as_nanos().max(1);
        let elapsed = now.saturating_duration_since(start).as_nanos();
        u64::try_from(elapsed / interval + 1)
            .unwrap_or(u64::MAX)
            .saturating_sub(self.emitted)
    }

    fn fill(&mut self, n: u64, time_of: impl Fn(u64) -> i64) -> Batch {
        let template = self.config.template;
        let mut records = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let seq = self.emitted;
            let time = time_of(seq);
            let mut record = Record::new(self.schema.clone(), template.values(&mut self.rng, time));
            record.timestamp = Some(time);
            record.position = Some(Position::Sequence(seq));
            records.push(record);
            self.emitted += 1;
        }
        Batch::new(records)
    }
}

impl std::fmt::Debug for GeneratorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorSource")
            .field("config", &self.config)
            .field("emitted", &self.emitted)
            .finish()
    }
}

#[async_trait]
impl Source for GeneratorSource {
    fn name(&self) -> &str {
        "stream_generator source"
    }

    fn schema(&self) -> Option<Arc<Schema>> {
        Some(self.schema.clone())
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        let remaining = self.remaining();
        if remaining == 0 {
            return Ok(None);
        }
        let limit = remaining.min(self.config.batch_size as u64);
        if self.config.interval.is_zero() {
            let now = now_micros();
            return Ok(Some(self.fill(limit, |_| now)));
        }
        let (start, start_wall) = *self
            .start
            .get_or_insert_with(|| (Instant::now(), now_micros()));
        let mut due = self.due(start, Instant::now());
        if due == 0 {
            // Sleeping is cancel-safe: nothing is generated until it returns.
            let interval_ns = u64::try_from(self.config.interval.as_nanos()).unwrap_or(u64::MAX);
            let next_at = start + Duration::from_nanos(interval_ns.saturating_mul(self.emitted));
            tokio::time::sleep_until(next_at).await;
            due = self.due(start, Instant::now()).max(1);
        }
        let interval_us = self.config.interval.as_micros() as i64;
        let batch = self.fill(due.min(limit), |seq| {
            start_wall + interval_us.saturating_mul(seq as i64)
        });
        Ok(Some(batch))
    }
}
