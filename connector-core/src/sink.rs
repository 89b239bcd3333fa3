//! The [`Sink`] trait.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::check::CheckReport;
use crate::error::Result;
use crate::record::Batch;

/// How a sink would like its input batched: the pipeline gathers records
/// until `max_records` or until `max_wait` has passed since the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most records per batch handed to [`Sink::send`].
    pub max_records: usize,
    /// Longest a record may wait for its batch to fill. Zero means: send
    /// whatever is ready now, merging only what is already queued.
    pub max_wait: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_records: 1024,
            max_wait: Duration::ZERO,
        }
    }
}

/// Something that makes batches of records durable somewhere.
///
/// A sink takes each batch together with its [`Ack`](crate::Ack) and resolves
/// the ack once the records are durable: [`Batch::delivered`] after the
/// write succeeded, [`Batch::failed`] when it gave up (the source will
/// deliver again), [`Batch::rejected`] when the data itself was refused.
/// Sinks that buffer resolve the acks of buffered batches when they flush.
///
/// An `Err` from a method means the sink cannot go on; the pipeline stops.
///
/// ```
/// use async_trait::async_trait;
/// use connector_core::{Batch, Result, Sink};
///
/// /// Prints the number of records of each batch.
/// struct CountPrinter;
///
/// #[async_trait]
/// impl Sink for CountPrinter {
///     fn name(&self) -> &str { "count printer sink" }
///
///     async fn send(&mut self, batch: Batch) -> Result<()> {
///         println!("{} records", batch.len());
///         batch.delivered(); // printed: nothing left to do
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Sink: Send {
    /// How errors and logs name this sink, e.g. `clickhouse sink`.
    fn name(&self) -> &str;

    /// The batching this sink works best with (`batch_count`/`batch_duration`
    /// style properties end up here).
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::default()
    }

    /// Writes (or buffers) a batch and takes over its ack.
    async fn send(&mut self, batch: Batch) -> Result<()>;

    /// Makes everything sent so far durable and resolves its acks.
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Flushes and releases resources. No batch is sent after this.
    async fn close(&mut self) -> Result<()> {
        self.flush().await
    }

    /// Tests the connection without writing anything: reach the server,
    /// authenticate, check the table/topic/endpoint, each step within
    /// `timeout`. The default is for sinks that use no external service.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let _ = timeout;
        let mut report = CheckReport::new(self.name());
        report.pass("nothing to check", "this sink uses no external service");
        report
    }
}

#[async_trait]
impl<S: Sink + ?Sized> Sink for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn batch_limits(&self) -> BatchLimits {
        (**self).batch_limits()
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        (**self).send(batch).await
    }

    async fn flush(&mut self) -> Result<()> {
        (**self).flush().await
    }

    async fn close(&mut self) -> Result<()> {
        (**self).close().await
    }

    async fn check(&mut self, timeout: Duration) -> CheckReport {
        (**self).check(timeout).await
    }
}

/// The sink as a `futures::Sink` of batches: `poll_flush` flushes it,
/// `poll_close` closes it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use connector_core::{Batch, Record, Value, memory::CollectSink};
/// use futures::SinkExt;
///
/// let (sink, collected) = CollectSink::new();
/// let mut sink = connector_core::sink::into_futures_sink(sink);
/// sink.send(Batch::new(vec![Record::from_pairs([("n", Value::Int64(1))])])).await.unwrap();
/// sink.close().await.unwrap();
/// assert_eq!(collected.len(), 1);
/// # }
/// ```
pub fn into_futures_sink<S: Sink + 'static>(sink: S) -> FuturesSink<S> {
    FuturesSink {
        sink: Some(sink),
        pending: None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Send,
    Flush,
    Close,
}

type Pending<S> = (Op, BoxFuture<'static, (S, Result<()>)>);

/// A [`Sink`] driven through the `futures::Sink` interface; see [`into_futures_sink`].
pub struct FuturesSink<S> {
    sink: Option<S>,
    pending: Option<Pending<S>>,
}

impl<S: Sink + 'static> FuturesSink<S> {
    fn start(&mut self, op: Op, batch: Option<Batch>) {
        let Some(mut sink) = self.sink.take() else {
            return;
        };
        let fut = async move {
            let result = match (op, batch) {
                (Op::Send, Some(batch)) => sink.send(batch).await,
                (Op::Flush, _) => sink.flush().await,
                (Op::Close, _) => sink.close().await,
                (Op::Send, None) => Ok(()),
            };
            (sink, result)
        };
        self.pending = Some((op, Box::pin(fut)));
    }

    /// Drives the operation in progress; returns which one finished.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Op, Result<()>)>> {
        let Some((op, fut)) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let op = *op;
        let (sink, result) = ready!(fut.as_mut().poll(cx));
        self.sink = Some(sink);
        self.pending = None;
        Poll::Ready(Some((op, result)))
    }

    fn poll_op(&mut self, cx: &mut Context<'_>, wanted: Op) -> Poll<Result<()>> {
        loop {
            match ready!(self.drive(cx)) {
                Some((op, result)) if op == wanted => return Poll::Ready(result),
                Some((_, Err(e))) => return Poll::Ready(Err(e)),
                Some(_) => {}
                None if self.sink.is_none() => return Poll::Ready(Ok(())),
                None => self.start(wanted, None),
            }
        }
    }
}

impl<S: Sink + 'static> Unpin for FuturesSink<S> {}

impl<S: Sink + 'static> futures::Sink<Batch> for FuturesSink<S> {
    type Error = crate::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        match ready!(this.drive(cx)) {
            Some((_, Err(e))) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn start_send(self: Pin<&mut Self>, batch: Batch) -> Result<()> {
        self.get_mut().start(Op::Send, Some(batch));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_op(cx, Op::Flush)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_op(cx, Op::Close)
    }
}

/// Writes every batch to several sinks. Each sink gets its own copy of the
/// records and a share of the ack: the batch counts as delivered when every
/// sink delivered it.
pub struct Fanout {
    sinks: Vec<Box<dyn Sink>>,
    name: String,
}

impl Fanout {
    /// Fans out to `sinks`, in order.
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
        let name = format!("fanout({})", names.join(", "));
        Fanout { sinks, name }
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[async_trait]
impl Sink for Fanout {
    fn name(&self) -> &str {
        &self.name
    }

    /// The smallest batch any sink wants, gathered for the longest wait any
    /// sink accepts.
    fn batch_limits(&self) -> BatchLimits {
        self.sinks
            .iter()
            .map(|s| s.batch_limits())
            .reduce(|a, b| BatchLimits {
                max_records: a.max_records.min(b.max_records),
                max_wait: a.max_wait.max(b.max_wait),
            })
            .unwrap_or_default()
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        let Some((last, rest)) = self.sinks.split_last_mut() else {
            batch.delivered();
            return Ok(());
        };
        for sink in rest {
            let copy = Batch::with_ack(batch.records.clone(), batch.ack().clone());
            sink.send(copy).await?;
        }
        last.send(batch).await
    }

    async fn flush(&mut self) -> Result<()> {
        for sink in &mut self.sinks {
            sink.flush().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let mut first_error = None;
        for sink in &mut self.sinks {
            if let Err(e) = sink.close().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Every sink's steps, each named after its sink.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.name.clone());
        for sink in &mut self.sinks {
            let part = sink.check(timeout).await;
            for mut step in part.steps {
                step.name = format!("{}: {}", part.component, step.name);
                report.steps.push(step);
            }
        }
        report
    }
}
