//! Delivery accounting: a batch's ack resolves once librdkafka reported
//! every one of its messages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use connector_core::{Ack, Error};
use kafka_common::ClientEvents;
use kafka_common::rdkafka::ClientContext;
use kafka_common::rdkafka::config::RDKafkaLogLevel;
use kafka_common::rdkafka::error::KafkaError;
use kafka_common::rdkafka::message::Message;
use kafka_common::rdkafka::producer::{DeliveryResult, ProducerContext};
use tokio::sync::Notify;

/// Batches sent and not yet resolved, for `flush`.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    batches: AtomicUsize,
    changed: Notify,
}

impl InFlight {
    pub fn started(&self) {
        self.batches.fetch_add(1, Ordering::AcqRel);
    }

    fn finished(&self) {
        if self.batches.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.changed.notify_waiters();
        }
    }

    pub fn count(&self) -> usize {
        self.batches.load(Ordering::Acquire)
    }

    /// Waits until no batch is in flight.
    pub async fn drained(&self) {
        loop {
            let changed = self.changed.notified();
            if self.count() == 0 {
                return;
            }
            changed.await;
        }
    }
}

/// One batch's messages on their way to the broker.
pub(crate) struct BatchDelivery {
    /// Messages not yet reported, plus one held by the sender until it has
    /// handed every message over.
    remaining: AtomicUsize,
    failure: Mutex<Option<Error>>,
    ack: Mutex<Option<Ack>>,
    in_flight: Arc<InFlight>,
    component: Arc<str>,
    topic: Arc<str>,
}

impl BatchDelivery {
    pub fn new(
        ack: Ack,
        in_flight: Arc<InFlight>,
        component: Arc<str>,
        topic: Arc<str>,
    ) -> Arc<Self> {
        in_flight.started();
        Arc::new(BatchDelivery {
            remaining: AtomicUsize::new(1),
            failure: Mutex::new(None),
            ack: Mutex::new(Some(ack)),
            in_flight,
            component,
            topic,
        })
    }

    /// One more message is about to be handed to the producer.
    pub fn add_message(&self) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a failure; the first one is reported.
    pub fn fail(&self, error: Error) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(error);
        }
    }

    /// One message is done (delivered, or failed with its error recorded).
    pub fn message_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.resolve();
        }
    }

    fn resolve(&self) {
        let ack = self.ack.lock().unwrap_or_else(|p| p.into_inner()).take();
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(ack) = ack {
            match failure {
                None => ack.delivered(),
                Some(e) => ack.failed(e),
            }
        }
        self.in_flight.finished();
    }

    fn delivery_failed(&self, error: &KafkaError, partition: i32) {
        self.fail(Error::transient(
            self.component.to_string(),
            format!("deliver to topic `{}` partition {partition}", self.topic),
            kafka_common::error::describe(error),
        ));
    }
}

/// The producer's librdkafka context.
pub(crate) struct SinkContext {
    pub events: Arc<ClientEvents>,
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.events.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.events.error(error, reason);
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = Arc<BatchDelivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<BatchDelivery>) {
        if let Err((error, message)) = result {
            // librdkafka has retried already (up to the delivery timeout).
            batch.delivery_failed(error, message.partition());
        }
        batch.message_done();
    }
}
