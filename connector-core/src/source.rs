//! The [`Source`] trait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

use crate::check::CheckReport;
use crate::error::Result;
use crate::record::Batch;
use crate::schema::Schema;

/// Something that produces batches of records.
///
/// A source attaches an [`Ack`](crate::Ack) to each batch (usually from an
/// [`AckTracker`](crate::AckTracker)) and acts on the outcomes: it commits,
/// acknowledges or redelivers only what the sink reported. Payloads that
/// cannot be decoded go into [`Batch::bad`] under the same ack, so one bad
/// message neither stops the source nor leaves a gap in what it commits.
///
/// ```
/// use async_trait::async_trait;
/// use connector_core::{Batch, Record, Result, Source, Value};
///
/// /// Counts from 0 to `end`, ten at a time.
/// struct Counter { next: i64, end: i64 }
///
/// #[async_trait]
/// impl Source for Counter {
///     fn name(&self) -> &str { "counter source" }
///
///     async fn next_batch(&mut self) -> Result<Option<Batch>> {
///         if self.next >= self.end {
///             return Ok(None);
///         }
///         let records = (self.next..(self.next + 10).min(self.end))
///             .map(|n| Record::from_pairs([("n", Value::Int64(n))]))
///             .collect::<Vec<_>>();
///         self.next += records.len() as i64;
///         Ok(Some(Batch::new(records)))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use futures::TryStreamExt;
/// let batches: Vec<Batch> = connector_core::source::into_stream(Counter { next: 0, end: 25 })
///     .try_collect().await.unwrap();
/// assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), vec![10, 10, 5]);
/// # }
/// ```
#[async_trait]
pub trait Source: Send {
    /// How errors and logs name this source, e.g. `kafka source`.
    fn name(&self) -> &str;

    /// The schema of the records, when it is known before reading.
    fn schema(&self) -> Option<Arc<Schema>> {
        None
    }

    /// The next batch; `Ok(None)` when a bounded source is exhausted.
    ///
    /// Must be cancel-safe: the pipeline may drop the future at shutdown. A
    /// batch whose future is dropped is simply not delivered (its ack, if
    /// one was made, resolves as failed).
    async fn next_batch(&mut self) -> Result<Option<Batch>>;

    /// Stops the source after every batch it emitted has been resolved (or
    /// abandoned): commit what was delivered, close connections.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }

    /// Tests the connection without consuming anything: reach the server,
    /// authenticate, check the topic/endpoint, each step within `timeout`.
    /// The default is for sources that use no external service.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let _ = timeout;
        let mut report = CheckReport::new(self.name());
        report.pass("nothing to check", "this source uses no external service");
        report
    }
}

#[async_trait]
impl<S: Source + ?Sized> Source for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn schema(&self) -> Option<Arc<Schema>> {
        (**self).schema()
    }

    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        (**self).next_batch().await
    }

    async fn close(&mut self) -> Result<()> {
        (**self).close().await
    }

    async fn check(&mut self, timeout: Duration) -> CheckReport {
        (**self).check(timeout).await
    }
}

/// The source as a `futures::Stream` of batches. The stream ends after the
/// source's end or its first error; the source is closed when the stream
/// ends.
pub fn into_stream<S: Source + 'static>(source: S) -> impl Stream<Item = Result<Batch>> + Send {
    futures::stream::unfold(Some(source), |state| async move {
        let mut source = state?;
        match source.next_batch().await {
            Ok(Some(batch)) => Some((Ok(batch), Some(source))),
            Ok(None) => match source.close().await {
                Ok(()) => None,
                Err(e) => Some((Err(e), None)),
            },
            Err(e) => {
                let _ = source.close().await;
                Some((Err(e), None))
            }
        }
    })
}
