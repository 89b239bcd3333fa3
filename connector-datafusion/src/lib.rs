//! Every connector in [DataFusion](https://datafusion.apache.org) SQL:
//! any [`Source`] as a streaming table, any [`Sink`] as the target of
//! `INSERT INTO`.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use connector_core::memory::CollectSink;
//! use connector_core::{DataType, Field, Schema};
//! use connector_datafusion::SessionContextExt;
//! use datafusion::prelude::SessionContext;
//! use source_generator::{GeneratorConfig, GeneratorSource, Template};
//! use std::time::Duration;
//!
//! let ctx = SessionContext::new();
//! let source = GeneratorSource::new(
//!     GeneratorConfig::new(Template::Iot).interval(Duration::ZERO).seed(1).count(10_000),
//! );
//! ctx.register_source("iot", source).await?;
//!
//! // Read the live stream.
//! ctx.sql("SELECT device, avg(number) AS avg FROM iot GROUP BY device").await?.show().await?;
//!
//! // Write into any sink; the statement returns once the sink delivered.
//! let (sink, collected) = CollectSink::new();
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("device", DataType::String),
//!     Field::new("high", DataType::Float64),
//! ]));
//! ctx.register_sink("alerts", sink, schema)?;
//! # let source = GeneratorSource::new(GeneratorConfig::new(Template::Iot).interval(Duration::ZERO).count(100));
//! # ctx.deregister_table("iot")?;
//! # ctx.register_source("iot", source).await?;
//! ctx.sql("INSERT INTO alerts SELECT device, number FROM iot WHERE number > 90")
//!     .await?
//!     .collect()
//!     .await?;
//! println!("{} alerts", collected.len());
//! # Ok(()) }
//! ```
//!
//! [`SourceTable`] describes the table a source becomes (its schema, what
//! a delivered batch means for a query, one reader at a time) and
//! [`SinkTable`] the one a sink becomes (its columns, when a statement
//! counts as done). Rows and records convert as
//! [`connector_core::arrow`] describes.
//!
//! DataFusion is re-exported ([`datafusion`]) so the versions match; the
//! crate's `sql` feature (on by default) turns on DataFusion's SQL front end.

#![forbid(unsafe_code)]

mod scope;
mod sink;
mod source;

use std::sync::Arc;

use async_trait::async_trait;
use connector_core::{Error, Result, Schema, Sink, Source};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

pub use datafusion;
pub use sink::SinkTable;
pub use source::{SourceTable, SourceTableBuilder};

/// What a bad record (one the source could not decode, or one whose values
/// do not fit the table's columns) does to a query of a [`SourceTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRecordPolicy {
    /// The query fails with the record's error; the batch is not
    /// delivered, so the source meets it again (as the pipeline's
    /// `BadDataPolicy::Fail`).
    #[default]
    Fail,
    /// The record is logged and counted ([`SourceTable::bad_records`]) and
    /// left out; the rest of its batch is read.
    Skip,
}

/// Registers connectors in a DataFusion [`SessionContext`] in one call.
#[async_trait]
pub trait SessionContextExt {
    /// Registers `source` as the table `name` with the default settings
    /// (see [`SourceTable::builder`] for the others). Without a declared
    /// schema this waits for the source's first batch to infer one.
    async fn register_source<S: Source + 'static>(
        &self,
        name: &str,
        source: S,
    ) -> Result<SourceTable>;

    /// Registers a table built with [`SourceTable::builder`].
    fn register_source_table(&self, name: &str, table: &SourceTable) -> Result<()>;

    /// Registers `sink` as the table `name` with the columns of `schema`,
    /// for `INSERT INTO name ...` (see [`SinkTable`]).
    fn register_sink<S: Sink + 'static>(
        &self,
        name: &str,
        sink: S,
        schema: Arc<Schema>,
    ) -> Result<SinkTable>;

    /// Registers a table built with [`SinkTable::with_options`].
    fn register_sink_table(&self, name: &str, table: &SinkTable) -> Result<()>;
}

#[async_trait]
impl SessionContextExt for SessionContext {
    async fn register_source<S: Source + 'static>(
        &self,
        name: &str,
        source: S,
    ) -> Result<SourceTable> {
        let table = SourceTable::builder(source).build().await?;
        self.register_source_table(name, &table)?;
        Ok(table)
    }

    fn register_source_table(&self, name: &str, table: &SourceTable) -> Result<()> {
        register(self, name, table.provider())
    }

    fn register_sink<S: Sink + 'static>(
        &self,
        name: &str,
        sink: S,
        schema: Arc<Schema>,
    ) -> Result<SinkTable> {
        let table = SinkTable::new(sink, schema)?;
        self.register_sink_table(name, &table)?;
        Ok(table)
    }

    fn register_sink_table(&self, name: &str, table: &SinkTable) -> Result<()> {
        register(self, name, table.provider())
    }
}

fn register(
    ctx: &SessionContext,
    name: &str,
    table: Arc<dyn datafusion::datasource::TableProvider>,
) -> Result<()> {
    ctx.register_table(name, table).map(|_| ()).map_err(|e| {
        Error::permanent(
            "datafusion",
            format!("register table `{name}`"),
            e.to_string(),
        )
    })
}

/// Our error inside a DataFusion one (its text stays readable; the
/// original is reachable through `DataFusionError::External`).
pub(crate) fn to_df(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
