//! Sinks as the target of `INSERT INTO`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use connector_core::arrow::{ArrowOptions, CHANGE_KIND_COLUMN, FromArrow, to_arrow_schema};
use connector_core::{Ack, AckStatus, Batch, Error, Result, Schema, Sink};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PlanProperties,
};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use crate::scope;
use crate::to_df;

/// A [`Sink`] as a DataFusion table that `INSERT INTO` writes to.
///
/// The statement runs through DataFusion's own [`DataSinkExec`] with this
/// table's [`DataSink`]: each record batch of the statement's result is
/// converted to records of the table's schema ([`FromArrow`]), sent to the
/// sink in batches of at most the sink's
/// [`BatchLimits::max_records`](connector_core::BatchLimits), and the sink
/// is flushed at the end. The statement returns its row count only after
/// the sink resolved every batch's ack as delivered; a failed or rejected
/// batch makes the statement fail with the sink's error.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> connector_core::Result<()> {
/// use std::sync::Arc;
/// use connector_core::memory::CollectSink;
/// use connector_core::{DataType, Field, Schema};
/// use connector_datafusion::SinkTable;
/// use datafusion::prelude::SessionContext;
///
/// let (sink, collected) = CollectSink::new();
/// let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64)]));
/// let table = SinkTable::new(sink, schema)?;
/// let ctx = SessionContext::new();
/// ctx.register_table("out", table.provider()).unwrap();
/// ctx.sql("INSERT INTO out VALUES (1), (2)").await.unwrap().collect().await.unwrap();
/// assert_eq!(collected.len(), 2);
/// # Ok(()) }
/// ```
///
/// # Columns
///
/// A sink has no schema of its own, so the table is given one: the
/// columns the destination expects (a ClickHouse table's columns, say).
/// DataFusion casts the statement's values to these types; the records the
/// sink gets have this schema. Like [`SourceTable`](crate::SourceTable),
/// the table has no change-kind column unless asked
/// ([`SinkTable::with_options`]); without one every record is an insert.
/// With one (`_change_kind`, nullable), a row's change kind comes from it
/// (`'delete'`, ...; null is an insert), so `INSERT INTO t (a, b) ...`
/// without the column still works.
///
/// # Delivery
///
/// Statements into one table run one after another (the sink is used by
/// one statement at a time). An INSERT is not atomic: when it fails
/// midway, the batches the sink already accepted stay written (the sink is
/// flushed before the error is returned). Source tables read by the
/// statement resolve their acks with its outcome (see
/// [`SourceTable`](crate::SourceTable)). Scanning the table is an error:
/// it can only be written to. Close it with [`SinkTable::close`].
pub struct SinkTable {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    schema: Arc<Schema>,
    arrow_schema: SchemaRef,
    options: ArrowOptions,
    /// `None` once closed.
    sink: tokio::sync::Mutex<Option<Box<dyn Sink>>>,
    rows: AtomicU64,
}

impl Clone for SinkTable {
    fn clone(&self) -> Self {
        SinkTable {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for SinkTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkTable")
            .field("sink", &self.inner.name)
            .field("schema", &self.inner.schema)
            .finish()
    }
}

impl SinkTable {
    /// A table with `schema`'s columns writing to `sink`.
    pub fn new(sink: impl Sink + 'static, schema: Arc<Schema>) -> Result<SinkTable> {
        SinkTable::with_options(sink, schema, ArrowOptions::values_only())
    }

    /// A table with `schema`'s columns plus the metadata columns of
    /// `options` (a change kind, key or event time column). Metadata
    /// columns are nullable here, so statements may leave them out.
    pub fn with_options(
        sink: impl Sink + 'static,
        schema: Arc<Schema>,
        options: ArrowOptions,
    ) -> Result<SinkTable> {
        let name = sink.name().to_owned();
        let arrow_schema =
            to_arrow_schema(&schema, &options).map_err(|e| e.in_component(name.clone()))?;
        // Metadata columns may be left out of a statement: make them nullable.
        let fields: Vec<_> = arrow_schema
            .fields()
            .iter()
            .map(|f| {
                if f.name().as_str() == options.change_kind.as_deref().unwrap_or_default() {
                    Arc::new(f.as_ref().clone().with_nullable(true))
                } else {
                    f.clone()
                }
            })
            .collect();
        let arrow_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        Ok(SinkTable {
            inner: Arc::new(Inner {
                name,
                schema,
                arrow_schema,
                options,
                sink: tokio::sync::Mutex::new(Some(Box::new(sink))),
                rows: AtomicU64::new(0),
            }),
        })
    }

    /// A table whose change kind comes from a `_change_kind` column.
    pub fn with_change_kind(sink: impl Sink + 'static, schema: Arc<Schema>) -> Result<SinkTable> {
        SinkTable::with_options(
            sink,
            schema,
            ArrowOptions::values_only().change_kind_column(CHANGE_KIND_COLUMN),
        )
    }

    /// The record schema the sink gets.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.inner.schema
    }

    /// The table's Arrow schema.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.inner.arrow_schema
    }

    /// The table for `SessionContext::register_table`.
    pub fn provider(&self) -> Arc<dyn TableProvider> {
        Arc::new(self.clone())
    }

    /// Rows the sink delivered, over all statements.
    pub fn rows_written(&self) -> u64 {
        self.inner.rows.load(Ordering::Relaxed)
    }

    /// Closes the sink (flushing it). Later statements fail.
    pub async fn close(&self) -> Result<()> {
        match self.inner.sink.lock().await.take() {
            Some(mut sink) => sink.close().await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl TableProvider for SinkTable {
    fn schema(&self) -> SchemaRef {
        self.inner.arrow_schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(format!(
            "the table writing to {} can only be the target of INSERT INTO, not read",
            self.inner.name
        )))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} into the table writing to {}: a sink can only be appended to",
                self.inner.name
            )));
        }
        let writer = Arc::new(SinkWriter {
            inner: self.inner.clone(),
        });
        Ok(Arc::new(DataSinkExec::new(
            Arc::new(InsertScopeExec::new(input)),
            writer,
            None,
        )))
    }
}

/// The [`DataSink`] of a [`SinkTable`].
struct SinkWriter {
    inner: Arc<Inner>,
}

impl fmt::Debug for SinkWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SinkWriter({})", self.inner.name)
    }
}

impl DisplayAs for SinkWriter {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.name)
    }
}

#[async_trait]
impl DataSink for SinkWriter {
    fn schema(&self) -> &SchemaRef {
        &self.inner.arrow_schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        // The statement's scope (its input may claim it first, or start
        // only once this polls it), kept until the outcome is known.
        let scope = scope::claim(context);
        let outcome = self.inner.write(data).await;
        scope.settle(match &outcome {
            Ok(_) => AckStatus::Delivered,
            // Any failure fails the whole statement: the source delivers
            // what it read again, as after a failed pipeline.
            Err(e) => AckStatus::Failed(Arc::new(Error::transient(
                self.inner.name.clone(),
                "insert",
                format!("the INSERT statement failed: {}", e.text()),
            ))),
        });
        match outcome {
            Ok(rows) => {
                self.inner.rows.fetch_add(rows, Ordering::Relaxed);
                Ok(rows)
            }
            Err(Failure::Statement(e)) => Err(e),
            Err(Failure::Sink(status)) => Err(match status.error() {
                Some(e) => to_df(e.duplicate()),
                None => DataFusionError::Internal("a delivered batch reported as a failure".into()),
            }),
        }
    }
}

/// Why a statement did not deliver.
enum Failure {
    /// The statement's input or the conversion failed.
    Statement(DataFusionError),
    /// The sink failed or rejected a batch.
    Sink(AckStatus),
}

impl Failure {
    fn text(&self) -> String {
        match self {
            Failure::Statement(e) => e.to_string(),
            Failure::Sink(status) => status
                .error()
                .map_or_else(|| "the sink did not deliver".to_owned(), |e| e.to_string()),
        }
    }
}

impl Inner {
    async fn write(&self, mut data: SendableRecordBatchStream) -> Result<u64, Failure> {
        let mut guard = self.sink.lock().await;
        let Some(sink) = guard.as_mut() else {
            return Err(Failure::Statement(to_df(Error::permanent(
                self.name.clone(),
                "insert",
                "the table's sink is closed",
            ))));
        };
        let max = sink.batch_limits().max_records.max(1);
        let mut from_arrow = FromArrow::with_schema(self.schema.clone(), self.options.clone())
            .with_component(self.name.clone());
        let mut outcomes = FuturesUnordered::new();
        let mut rows = 0u64;
        let result: Result<(), Failure> = async {
            while let Some(rb) = data.next().await {
                let rb = rb.map_err(Failure::Statement)?;
                let mut offset = 0;
                while offset < rb.num_rows() {
                    let len = max.min(rb.num_rows() - offset);
                    let records = from_arrow
                        .convert(&rb.slice(offset, len))
                        .map_err(|e| Failure::Statement(to_df(e)))?;
                    offset += len;
                    let (ack, outcome) = Ack::channel();
                    let n = records.len() as u64;
                    sink.send(Batch::with_ack(records, ack))
                        .await
                        .map_err(|e| Failure::Statement(to_df(e)))?;
                    outcomes.push(outcome.map(move |status| (n, status)));
                    // Fail fast, and keep only the outcomes still open.
                    while let Some(Some((n, status))) = outcomes.next().now_or_never() {
                        check(status)?;
                        rows += n;
                    }
                }
            }
            Ok(())
        }
        .await;
        // Whatever the sink accepted is made durable, also when the
        // statement failed midway.
        let flushed = sink.flush().await;
        result?;
        flushed.map_err(|e| Failure::Statement(to_df(e)))?;
        while let Some((n, status)) = outcomes.next().await {
            check(status)?;
            rows += n;
        }
        Ok(rows)
    }
}

fn check(status: AckStatus) -> Result<(), Failure> {
    if status.is_delivered() {
        Ok(())
    } else {
        Err(Failure::Sink(status))
    }
}

/// Marks its query as an INSERT into a sink table before the statement's
/// input starts, so source tables under it hold their acks for the sink's
/// outcome (see [`scope`]). Passes batches through unchanged.
///
/// It has one partition (several are merged below it), so it is the
/// direct input of [`DataSinkExec`]: the stream holding the scope is the
/// one the sink's `write_all` takes over, and the scope lives without a
/// gap from before the first source batch is read until the sink settles
/// it. (With the merge above it, the merge's tasks could run the input to
/// its end and drop the scope before `write_all` starts.)
#[derive(Debug, Clone)]
struct InsertScopeExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl InsertScopeExec {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let input: Arc<dyn ExecutionPlan> =
            if input.properties().output_partitioning().partition_count() > 1 {
                Arc::new(CoalescePartitionsExec::new(input))
            } else {
                input
            };
        let properties = input.properties().clone();
        InsertScopeExec { input, properties }
    }
}

impl DisplayAs for InsertScopeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InsertScopeExec")
    }
}

impl ExecutionPlan for InsertScopeExec {
    fn name(&self) -> &str {
        "InsertScopeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "InsertScopeExec has one child, got {}",
                children.len()
            )));
        }
        Ok(Arc::new(InsertScopeExec::new(children.swap_remove(0))))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        // Claimed before the input (and the source tables in it) starts.
        let scope = scope::claim(&context);
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            input.map(move |batch| {
                let _keep_alive = &scope;
                batch
            }),
        )))
    }
}
