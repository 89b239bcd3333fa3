//! What librdkafka reports besides results: log lines and client errors
//! (connection refused, TLS handshake failed, SASL refused). They go to
//! `tracing`, and the last error is kept so that checks and error messages
//! can say *why* a broker could not be reached.

use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::watch;

/// One error reported by a librdkafka client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// librdkafka's error code.
    pub code: RDKafkaErrorCode,
    /// librdkafka's explanation, e.g. `Connect to ipv4#127.0.0.1:9092 failed: Connection refused`.
    pub reason: String,
    /// Whether every broker was down when it was reported.
    pub all_brokers_down: bool,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            f.write_str(&self.reason)
        }
    }
}

/// Routes a client's logs and errors to `tracing` and remembers its last
/// error. Embed it in a client context (or use [`EventsContext`]).
#[derive(Debug)]
pub struct ClientEvents {
    component: String,
    last_error: watch::Sender<Option<ClientError>>,
}

impl ClientEvents {
    /// Events of a client of `component` (`kafka source`), used in logs.
    pub fn new(component: impl Into<String>) -> Self {
        ClientEvents {
            component: component.into(),
            last_error: watch::Sender::new(None),
        }
    }

    /// The component name.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Handles a librdkafka log line. Connection failures are also
    /// remembered as errors: librdkafka explains them (refused, TLS, SASL)
    /// only in its log, and the error it returns says little more than
    /// "transport failure".
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "FAIL"
            && let Some(code) = connection_failure(message)
        {
            self.remember(code, strip_thread(message));
        }
        let component = self.component.as_str();
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", component, facility, "{message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", component, facility, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", component, facility, "{message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", component, facility, "{message}")
            }
        }
    }

    /// Handles a client error: logs it and remembers it.
    pub fn error(&self, error: KafkaError, reason: &str) {
        let code = error
            .rdkafka_error_code()
            .unwrap_or(RDKafkaErrorCode::Unknown);
        let component = self.component.as_str();
        // Connection trouble is retried by librdkafka; it is worth a warning,
        // not an error, until a caller gives up.
        tracing::warn!(target: "librdkafka", component, code = %code, "{reason}");
        self.remember(code, reason.trim());
    }

    fn remember(&self, code: RDKafkaErrorCode, reason: &str) {
        // A disconnect during the TLS handshake is a TLS failure, but says
        // less than librdkafka's own TLS message.
        let weak = code == RDKafkaErrorCode::BrokerTransportFailure;
        let code = if weak && reason.contains("SSL") {
            RDKafkaErrorCode::SSL
        } else {
            code
        };
        let specific = |c: RDKafkaErrorCode| {
            matches!(c, RDKafkaErrorCode::SSL | RDKafkaErrorCode::Authentication)
        };
        self.last_error.send_modify(|last| {
            let error = match last.take() {
                // "1/1 brokers are down" says less than the error before it
                // ("Connection refused", "SSL handshake failed"): keep that one.
                Some(previous) if code == RDKafkaErrorCode::AllBrokersDown => ClientError {
                    all_brokers_down: true,
                    ..previous
                },
                // A bare disconnect says less than a TLS or SASL failure.
                Some(previous) if specific(previous.code) && (weak || !specific(code)) => previous,
                _ => ClientError {
                    code,
                    reason: reason.to_owned(),
                    all_brokers_down: code == RDKafkaErrorCode::AllBrokersDown,
                },
            };
            *last = Some(error);
        });
    }

    /// The last error the client reported.
    pub fn last_error(&self) -> Option<ClientError> {
        self.last_error.borrow().clone()
    }

    /// Forgets the last error (before a check, so only new ones count).
    pub fn clear(&self) {
        self.last_error.send_replace(None);
    }

    /// Watches the errors as they come.
    pub fn subscribe(&self) -> watch::Receiver<Option<ClientError>> {
        self.last_error.subscribe()
    }
}

/// The error code a connection-failure log line stands for.
fn connection_failure(message: &str) -> Option<RDKafkaErrorCode> {
    if message.contains("SSL handshake failed") || message.contains("certificate verify failed") {
        Some(RDKafkaErrorCode::SSL)
    } else if message.contains("SASL") || message.contains("Authentication failed") {
        Some(RDKafkaErrorCode::Authentication)
    } else if message.contains("Failed to resolve") {
        Some(RDKafkaErrorCode::Resolve)
    } else if message.contains("Connect to") || message.contains("Disconnected") {
        Some(RDKafkaErrorCode::BrokerTransportFailure)
    } else {
        None
    }
}

/// Drops librdkafka's `[thrd:...]: ` prefix.
fn strip_thread(message: &str) -> &str {
    match message.strip_prefix("[thrd:") {
        Some(rest) => rest.split_once("]: ").map_or(message, |(_, m)| m),
        None => message,
    }
}

/// A client context that only handles logs and errors: for admin clients,
/// metadata clients of checks, and plain producers and consumers.
#[derive(Debug, Clone)]
pub struct EventsContext(pub Arc<ClientEvents>);

impl EventsContext {
    /// A context for `component`.
    pub fn new(component: impl Into<String>) -> Self {
        EventsContext(Arc::new(ClientEvents::new(component)))
    }
}

impl ClientContext for EventsContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason);
    }
}

impl ConsumerContext for EventsContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_in_the_log_become_errors() {
        let events = ClientEvents::new("kafka source");
        events.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "[thrd:ssl://127.0.0.1:1/bootstrap]: ssl://127.0.0.1:1/bootstrap: SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener? (after 8ms in state SSL_HANDSHAKE)",
        );
        // The plain disconnect that follows does not hide the TLS failure.
        events.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "ssl://127.0.0.1:1/bootstrap: Disconnected (after 0ms in state SSL_HANDSHAKE)",
        );
        let last = events.last_error().unwrap();
        assert_eq!(last.code, RDKafkaErrorCode::SSL);
        assert!(
            last.reason
                .starts_with("ssl://127.0.0.1:1/bootstrap: SSL handshake failed"),
            "{}",
            last.reason
        );
        events.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let last = events.last_error().unwrap();
        assert!(last.all_brokers_down);
        assert_eq!(last.code, RDKafkaErrorCode::SSL, "the reason stays");
        events.clear();
        events.log(
            RDKafkaLogLevel::Info,
            "CONNECT",
            "Connect to ipv4#127.0.0.1:1",
        );
        assert_eq!(events.last_error(), None, "only failures count");
    }
}
