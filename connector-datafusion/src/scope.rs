//! What a query does with the acks of the source batches it consumed.
//!
//! DataFusion hands one `Arc<TaskContext>` to every operator of a query
//! execution, so the context identifies the query. An `INSERT INTO` a sink
//! table claims its query's scope before its input starts (see
//! [`InsertScopeExec`](crate::sink)); source tables read by that query then
//! hold their consumed acks in the scope, and the sink settles them with
//! its own outcome once the statement ends. Source tables in a query that
//! no sink claimed resolve their acks as delivered as soon as the query
//! consumed the batch.

use std::sync::{Arc, Mutex, Weak};

use connector_core::{Ack, AckStatus, Error};
use datafusion::execution::TaskContext;

/// The acks held for one INSERT statement.
#[derive(Debug)]
pub(crate) struct QueryScope {
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    /// The statement runs: consumed acks wait for its outcome.
    Holding(Vec<Ack>),
    /// The statement ended; its acks are resolved.
    Settled,
}

impl QueryScope {
    /// A batch the statement consumed.
    pub(crate) fn consumed(&self, ack: Ack) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *state {
            State::Holding(acks) => {
                if ack.is_tracked() {
                    acks.push(ack);
                }
            }
            // Consumed after the sink finished: it cannot have reached the sink.
            State::Settled => ack.failed(Error::transient(
                "datafusion",
                "insert",
                "the batch was read after the INSERT statement had ended",
            )),
        }
    }

    /// Resolves every held ack (and any consumed later) with `status`.
    pub(crate) fn settle(&self, status: AckStatus) {
        let held = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match std::mem::replace(&mut *state, State::Settled) {
                State::Holding(acks) => acks,
                State::Settled => Vec::new(),
            }
        };
        for ack in held {
            ack.resolve(status.clone());
        }
    }
}

type Entry = (Weak<TaskContext>, Weak<QueryScope>);

/// Live scopes by query. Entries whose query or scope is gone are pruned
/// whenever a scope is claimed.
static SCOPES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn same_query(entry: &Entry, ctx: &Arc<TaskContext>) -> bool {
    std::ptr::eq(entry.0.as_ptr(), Arc::as_ptr(ctx))
}

/// The scope of the query running with `ctx`, created if this is the first
/// claim. The caller keeps it alive for as long as the statement runs.
pub(crate) fn claim(ctx: &Arc<TaskContext>) -> Arc<QueryScope> {
    let mut scopes = SCOPES.lock().unwrap_or_else(|p| p.into_inner());
    scopes.retain(|(c, s)| c.strong_count() > 0 && s.strong_count() > 0);
    if let Some(scope) = scopes
        .iter()
        .find(|e| same_query(e, ctx))
        .and_then(|(_, s)| s.upgrade())
    {
        return scope;
    }
    let scope = Arc::new(QueryScope {
        state: Mutex::new(State::Holding(Vec::new())),
    });
    scopes.push((Arc::downgrade(ctx), Arc::downgrade(&scope)));
    scope
}

/// The scope an INSERT claimed for the query running with `ctx`, if any.
pub(crate) fn lookup(ctx: &Arc<TaskContext>) -> Option<Arc<QueryScope>> {
    let scopes = SCOPES.lock().unwrap_or_else(|p| p.into_inner());
    scopes
        .iter()
        .find(|e| same_query(e, ctx) && e.0.strong_count() > 0)
        .and_then(|(_, s)| s.upgrade())
}

/// Where a source partition sends the acks of the batches a query consumed.
#[derive(Debug, Clone)]
pub(crate) enum AckTarget {
    /// A plain query: consumed means delivered.
    Deliver,
    /// An INSERT into a sink table: wait for the sink's outcome.
    Scope(Arc<QueryScope>),
}

impl AckTarget {
    pub(crate) fn for_query(ctx: &Arc<TaskContext>) -> AckTarget {
        lookup(ctx).map_or(AckTarget::Deliver, AckTarget::Scope)
    }

    pub(crate) fn consumed(&self, ack: Ack) {
        match self {
            AckTarget::Deliver => ack.delivered(),
            AckTarget::Scope(scope) => scope.consumed(ack),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scopes_are_per_query_and_settle_once() {
        let a = Arc::new(TaskContext::default());
        let b = Arc::new(TaskContext::default());
        assert!(lookup(&a).is_none());
        let scope = claim(&a);
        assert!(Arc::ptr_eq(&scope, &claim(&a)));
        assert!(lookup(&b).is_none());
        assert!(matches!(AckTarget::for_query(&b), AckTarget::Deliver));

        let (held, outcome) = Ack::channel();
        AckTarget::for_query(&a).consumed(held);
        let mut outcome = outcome;
        assert!(
            futures::poll!(&mut outcome).is_pending(),
            "held until settled"
        );
        scope.settle(AckStatus::Delivered);
        assert!(outcome.await.is_delivered());

        let (late, outcome) = Ack::channel();
        scope.consumed(late);
        assert!(matches!(outcome.await, AckStatus::Failed(_)));
    }

    #[tokio::test]
    async fn a_dropped_scope_fails_what_it_held() {
        let ctx = Arc::new(TaskContext::default());
        let scope = claim(&ctx);
        let (ack, outcome) = Ack::channel();
        scope.consumed(ack);
        drop(scope);
        assert!(matches!(outcome.await, AckStatus::Failed(_)));
        assert!(lookup(&ctx).is_none(), "nothing keeps the scope alive");
    }
}
