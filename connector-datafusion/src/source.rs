//! Sources as DataFusion streaming tables.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use connector_core::arrow::{ArrowOptions, CHANGE_KIND_COLUMN, ToArrow, infer_schema};
use connector_core::{Ack, Batch, Error, Result, Schema, Source};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use tokio::task::JoinHandle;

use crate::scope::AckTarget;
use crate::{BadRecordPolicy, to_df};

type SharedSource = Arc<tokio::sync::Mutex<Box<dyn Source>>>;

/// A [`Source`] as a DataFusion table: `SELECT ... FROM <table>` reads the
/// live stream.
///
/// The table is DataFusion's [`StreamingTable`] over one
/// [`PartitionStream`] per source (several sources, such as consumers in
/// one Kafka group, make a partitioned table DataFusion reads in
/// parallel). Each batch the source produces is converted to an Arrow
/// record batch with [`ToArrow`] against the table's schema; a query over
/// a bounded source ends when the source ends.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> connector_core::Result<()> {
/// use connector_datafusion::SourceTable;
/// use datafusion::prelude::SessionContext;
/// use source_generator::{GeneratorConfig, GeneratorSource, Template};
///
/// let source = GeneratorSource::new(GeneratorConfig::new(Template::Iot).count(1000));
/// let table = SourceTable::builder(source).build().await?;
/// let ctx = SessionContext::new();
/// ctx.register_table("iot", table.provider()).unwrap();
/// let df = ctx.sql("SELECT device, avg(number) FROM iot GROUP BY device").await.unwrap();
/// df.show().await.unwrap();
/// # Ok(()) }
/// ```
///
/// # Schema
///
/// The table's columns are the source's declared schema
/// ([`Source::schema`]), or the one given with
/// [`SourceTableBuilder::schema`]; failing both, [`SourceTableBuilder::build`]
/// reads the source's first batch and infers the schema from it (the batch
/// is kept and is the first one a query gets). Records of another shape
/// are matched to the columns by name: a column a record lacks is null,
/// fields the table has no column for are left out. Types map as
/// [`connector_core::arrow`] describes.
///
/// The change kind is not a column unless asked for
/// ([`SourceTableBuilder::change_kind_column`]): most streams are
/// append-only, and a plain table reads best. Without the column a record
/// that is not an insert (a delete from a changelog) is bad data, never
/// silently read as a row.
///
/// # What delivered means
///
/// A source waits for its acks before committing (Kafka offsets, Pulsar
/// acknowledgements, HTTP answers). For a query, a batch is *consumed*
/// once the query asked for the next one after it, or once the source
/// ended and the query read that end:
///
/// - In a plain query (`SELECT`), a consumed batch is **delivered**: the
///   engine took it.
/// - In `INSERT INTO <sink table> SELECT ... FROM <source table>` (a
///   [`SinkTable`](crate::SinkTable)), consumed batches are held until the
///   statement ends and resolve with the sink's outcome: **delivered**
///   only after the sink made every row of the statement durable, failed
///   (the source delivers them again) when the statement fails or is
///   cancelled. End to end at-least-once, through SQL. For an endless
///   source the statement never ends, so nothing would be committed: run
///   continuous deliveries with [`connector_core::Pipeline`] instead.
/// - A batch the query never consumed (a `LIMIT` met inside it, an error,
///   a cancelled query) resolves **failed**, so the source delivers it
///   again.
///
/// # One stream, one reader
///
/// A live stream cannot be replayed, so each partition is read by one
/// query at a time: a second query that needs it while the first is
/// running (a self-join, two queries at once) fails with an error saying
/// so. When a query stops early the source stays open, and the next query
/// continues where it left off; once a bounded source has ended, queries
/// find the table empty and the source is closed.
pub struct SourceTable {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    schema: Arc<Schema>,
    arrow_schema: SchemaRef,
    partitions: Vec<Arc<Partition>>,
    table: Arc<StreamingTable>,
    metrics: Arc<Metrics>,
}

/// Counters of a [`SourceTable`], for all its partitions together.
#[derive(Debug, Default)]
struct Metrics {
    batches: AtomicU64,
    records: AtomicU64,
    bad_records: AtomicU64,
}

impl Clone for SourceTable {
    fn clone(&self) -> Self {
        SourceTable {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for SourceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceTable")
            .field("source", &self.inner.name)
            .field("schema", &self.inner.schema)
            .field("partitions", &self.inner.partitions.len())
            .finish()
    }
}

/// Options for a [`SourceTable`]; finish with [`SourceTableBuilder::build`].
pub struct SourceTableBuilder {
    sources: Vec<Box<dyn Source>>,
    schema: Option<Arc<Schema>>,
    options: ArrowOptions,
    unbounded: bool,
    bad_records: BadRecordPolicy,
}

impl fmt::Debug for SourceTableBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceTableBuilder")
            .field(
                "sources",
                &self.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("schema", &self.schema)
            .field("options", &self.options)
            .field("unbounded", &self.unbounded)
            .field("bad_records", &self.bad_records)
            .finish()
    }
}

impl SourceTable {
    /// A table over one source.
    pub fn builder(source: impl Source + 'static) -> SourceTableBuilder {
        SourceTable::partitioned(vec![Box::new(source) as Box<dyn Source>])
    }

    /// A table with one partition per source (all of one schema), read in
    /// parallel: several consumers of one Kafka group, say.
    pub fn partitioned(sources: Vec<Box<dyn Source>>) -> SourceTableBuilder {
        SourceTableBuilder {
            sources,
            schema: None,
            options: ArrowOptions::values_only(),
            unbounded: false,
            bad_records: BadRecordPolicy::Fail,
        }
    }

    /// The record schema of the table's rows (without the metadata columns).
    pub fn schema(&self) -> &Arc<Schema> {
        &self.inner.schema
    }

    /// The table's Arrow schema, metadata columns included.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.inner.arrow_schema
    }

    /// DataFusion's streaming table over the partitions, for
    /// `SessionContext::register_table`.
    pub fn provider(&self) -> Arc<dyn TableProvider> {
        Arc::new(self.clone())
    }

    /// The same as [`SourceTable::provider`], as DataFusion's own type.
    pub fn streaming_table(&self) -> Arc<StreamingTable> {
        self.inner.table.clone()
    }

    /// Batches read from the sources so far.
    pub fn batches_read(&self) -> u64 {
        self.inner.metrics.batches.load(Ordering::Relaxed)
    }

    /// Records read from the sources so far (bad ones included).
    pub fn records_read(&self) -> u64 {
        self.inner.metrics.records.load(Ordering::Relaxed)
    }

    /// Bad records skipped under [`BadRecordPolicy::Skip`].
    pub fn bad_records(&self) -> u64 {
        self.inner.metrics.bad_records.load(Ordering::Relaxed)
    }

    /// Closes the sources (each commits what was delivered), waiting for
    /// those that ended to finish closing. Fails when a query is still
    /// reading; later queries find the table empty.
    pub async fn close(&self) -> Result<()> {
        let mut first_error = None;
        for partition in &self.inner.partitions {
            if let Err(e) = partition.close().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl SourceTableBuilder {
    /// The table's columns, instead of the source's declared schema (or
    /// one inferred from its first batch).
    pub fn schema(mut self, schema: Arc<Schema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Which metadata columns the table has (default: none; see
    /// [`ArrowOptions`]).
    pub fn arrow_options(mut self, options: ArrowOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds the change kind as the column `_change_kind`, to read
    /// changelogs (Debezium, upsert streams).
    pub fn change_kind_column(mut self) -> Self {
        self.options.change_kind = Some(CHANGE_KIND_COLUMN.to_owned());
        self
    }

    /// Marks the stream as endless. DataFusion then plans for an unbounded
    /// input: it refuses operators that would wait for the end forever (a
    /// plain `GROUP BY`, `ORDER BY`) and picks streaming joins. The default
    /// (`false`) suits bounded sources.
    pub fn unbounded(mut self, unbounded: bool) -> Self {
        self.unbounded = unbounded;
        self
    }

    /// What a bad record does to a query (default [`BadRecordPolicy::Fail`]).
    pub fn bad_records(mut self, policy: BadRecordPolicy) -> Self {
        self.bad_records = policy;
        self
    }

    /// Builds the table. Without a schema from the builder or the source,
    /// this reads the first batch to infer one (and keeps it for the first
    /// query), so it waits until the source has data.
    pub async fn build(self) -> Result<SourceTable> {
        let SourceTableBuilder {
            mut sources,
            schema,
            options,
            unbounded,
            bad_records,
        } = self;
        let Some(first) = sources.first_mut() else {
            return Err(Error::config(
                "datafusion source table",
                "sources",
                "a source table needs at least one source",
            ));
        };
        let name = first.name().to_owned();
        let mut buffered: Option<Batch> = None;
        let schema = match schema.or_else(|| first.schema()) {
            Some(schema) => schema,
            None => {
                // Read until a batch with records shows the shape.
                loop {
                    match first.next_batch().await? {
                        Some(mut batch) => {
                            if let Some(mut earlier) = buffered.take() {
                                earlier.append(std::mem::take(&mut batch));
                                batch = earlier;
                            }
                            let found = !batch.records.is_empty();
                            buffered = Some(batch);
                            if found {
                                break;
                            }
                        }
                        None => {
                            return Err(Error::permanent(
                                name.clone(),
                                "infer the table schema",
                                "the source ended before its first record; declare the \
                                 schema with SourceTableBuilder::schema",
                            ));
                        }
                    }
                }
                let records = buffered.as_ref().map_or(&[][..], |b| &b.records[..]);
                infer_schema(records)
            }
        };
        let to_arrow =
            Arc::new(ToArrow::new(schema.clone(), options)?.with_component(name.clone()));
        let arrow_schema = to_arrow.arrow_schema().clone();
        let metrics = Arc::new(Metrics::default());
        let partitions: Vec<Arc<Partition>> = sources
            .into_iter()
            .enumerate()
            .map(|(i, source)| {
                Arc::new(Partition {
                    name: if i == 0 {
                        name.clone()
                    } else {
                        source.name().to_owned()
                    },
                    to_arrow: to_arrow.clone(),
                    bad_records,
                    metrics: metrics.clone(),
                    slot: Mutex::new(Slot::Idle {
                        source: Arc::new(tokio::sync::Mutex::new(source)),
                        buffered: if i == 0 { buffered.take() } else { None },
                    }),
                    closing: Mutex::new(Vec::new()),
                })
            })
            .collect();
        let streams = partitions
            .iter()
            .map(|p| Arc::new(SourcePartition { shared: p.clone() }) as Arc<dyn PartitionStream>)
            .collect();
        let table = StreamingTable::try_new(arrow_schema.clone(), streams)
            .map_err(|e| {
                Error::permanent(name.clone(), "create the DataFusion table", e.to_string())
            })?
            .with_infinite_table(unbounded);
        Ok(SourceTable {
            inner: Arc::new(Inner {
                name,
                schema,
                arrow_schema,
                partitions,
                table: Arc::new(table),
                metrics,
            }),
        })
    }
}

#[async_trait]
impl TableProvider for SourceTable {
    fn schema(&self) -> SchemaRef {
        self.inner.arrow_schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.inner.table.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.inner
            .table
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Where a partition's source is between queries.
enum Slot {
    /// Waiting for a query, with a batch read ahead (schema inference).
    Idle {
        source: SharedSource,
        buffered: Option<Batch>,
    },
    /// A query is reading it.
    Busy,
    /// The source ended (it is closed or closing).
    Ended,
    /// [`SourceTable::close`] closed it.
    Closed,
}

/// One source as one partition of the table.
struct SourcePartition {
    shared: Arc<Partition>,
}

/// What a partition and the queries reading it share.
struct Partition {
    name: String,
    to_arrow: Arc<ToArrow>,
    bad_records: BadRecordPolicy,
    metrics: Arc<Metrics>,
    slot: Mutex<Slot>,
    /// Sources that ended, closing in the background.
    closing: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for SourcePartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourcePartition")
            .field("source", &self.shared.name)
            .finish()
    }
}

impl Partition {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the source in the background (it may wait for acks that the
    /// statement reading it resolves only after the stream ended).
    fn close_later(&self, source: SharedSource) {
        let name = self.name.clone();
        let task = async move {
            let mut source = source.lock().await;
            if let Err(e) = source.close().await {
                tracing::warn!(source = %name, error = %e, "closing the source failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => self
                .closing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(handle.spawn(task)),
            Err(_) => tracing::warn!(
                source = %self.name,
                "source ended outside a tokio runtime; it is dropped without closing"
            ),
        }
    }

    async fn close(&self) -> Result<()> {
        let idle = {
            let mut slot = self.slot();
            match std::mem::replace(&mut *slot, Slot::Closed) {
                Slot::Idle { source, .. } => Some(source),
                Slot::Busy => {
                    *slot = Slot::Busy;
                    return Err(Error::permanent(
                        self.name.clone(),
                        "close",
                        "a query is still reading the table; end it first",
                    ));
                }
                Slot::Ended => {
                    *slot = Slot::Ended;
                    None
                }
                Slot::Closed => None,
            }
        };
        let result = match idle {
            Some(source) => source.lock().await.close().await,
            None => Ok(()),
        };
        let closing: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.closing.lock().unwrap_or_else(|p| p.into_inner()));
        for task in closing {
            let _ = task.await;
        }
        result
    }
}

impl PartitionStream for SourcePartition {
    fn schema(&self) -> &SchemaRef {
        self.shared.to_arrow.arrow_schema()
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.shared.execute(ctx)
    }
}

impl Partition {
    fn execute(self: &Arc<Self>, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.to_arrow.arrow_schema().clone();
        let taken = {
            let mut slot = self.slot();
            match std::mem::replace(&mut *slot, Slot::Busy) {
                Slot::Idle { source, buffered } => Ok((source, buffered)),
                other => {
                    let busy = matches!(other, Slot::Busy);
                    *slot = other;
                    Err(busy)
                }
            }
        };
        let (source, buffered) = match taken {
            Ok(taken) => taken,
            Err(true) => {
                let error = Error::permanent(
                    self.name.clone(),
                    "read",
                    "the table is already being read by another query (a live stream has one \
                     reader at a time)",
                );
                return Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::once(async move { Err(to_df(error)) }),
                ));
            }
            // Ended or closed: nothing more to read.
            Err(false) => {
                return Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::empty(),
                ));
            }
        };
        let reader = Reader {
            partition: self.clone(),
            source: Some(source),
            buffered,
            pending: None,
            acks: AckTarget::for_query(&ctx),
            finished: false,
            ended: false,
        };
        let stream = futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

/// One query's read of a partition.
struct Reader {
    partition: Arc<Partition>,
    source: Option<SharedSource>,
    buffered: Option<Batch>,
    /// The ack of the batch last handed to the query, until it is consumed.
    pending: Option<Ack>,
    acks: AckTarget,
    finished: bool,
    ended: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<DfResult<RecordBatch>> {
        if self.finished {
            return None;
        }
        if let Some(ack) = self.pending.take() {
            self.acks.consumed(ack);
        }
        let source = self.source.clone()?;
        loop {
            let batch = match self.buffered.take() {
                Some(batch) => batch,
                None => match source.lock().await.next_batch().await {
                    Ok(Some(batch)) => batch,
                    Ok(None) => {
                        self.finished = true;
                        self.ended = true;
                        return None;
                    }
                    Err(e) => {
                        self.finished = true;
                        return Some(Err(to_df(e.in_component(self.partition.name.clone()))));
                    }
                },
            };
            match self.convert(batch) {
                Ok(Some((rb, ack))) => {
                    self.pending = Some(ack);
                    return Some(Ok(rb));
                }
                Ok(None) => continue,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(to_df(e)));
                }
            }
        }
    }

    /// The batch as a record batch with its ack; `None` when nothing is
    /// left of it (its ack is consumed at once).
    fn convert(&mut self, mut batch: Batch) -> Result<Option<(RecordBatch, Ack)>> {
        let p = &self.partition;
        p.metrics.batches.fetch_add(1, Ordering::Relaxed);
        p.metrics.records.fetch_add(
            (batch.records.len() + batch.bad.len()) as u64,
            Ordering::Relaxed,
        );
        let bad = std::mem::take(&mut batch.bad);
        let (mut records, ack) = batch.into_parts();
        let policy = p.bad_records;
        match policy {
            BadRecordPolicy::Fail => {
                if let Some(first) = bad.into_iter().next() {
                    // The ack drops unresolved: the source delivers the batch again.
                    return Err(first.error);
                }
            }
            BadRecordPolicy::Skip => {
                for b in &bad {
                    skipped(p, &b.error);
                }
            }
        }
        let rb = match policy {
            BadRecordPolicy::Fail => p.to_arrow.convert(&records)?,
            BadRecordPolicy::Skip => {
                let (rb, refused) = p.to_arrow.convert_skipping_bad(&mut records)?;
                for bad in &refused {
                    skipped(p, &bad.error);
                }
                rb
            }
        };
        if rb.num_rows() == 0 {
            self.acks.consumed(ack);
            return Ok(None);
        }
        Ok(Some((rb, ack)))
    }
}

fn skipped(p: &Partition, error: &Error) {
    p.metrics.bad_records.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(source = %p.name, %error, "skipped a bad record");
}

impl Drop for Reader {
    fn drop(&mut self) {
        // A batch handed out but not consumed fails (dropping its ack), so
        // the source delivers it again.
        self.pending.take();
        let Some(source) = self.source.take() else {
            return;
        };
        let mut slot = self.partition.slot();
        if self.ended {
            *slot = Slot::Ended;
            drop(slot);
            self.partition.close_later(source);
        } else {
            *slot = Slot::Idle {
                source,
                buffered: self.buffered.take(),
            };
        }
    }
}
