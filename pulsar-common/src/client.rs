//! The `pulsar` client both connectors use, and how its errors become
//! `connector_core` errors that say what failed and whether to retry.

use std::time::Duration;

use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::{Error, Result};
use pulsar::error::{ConnectionError, ConsumerError, ProducerError, ServiceDiscoveryError};
use pulsar::message::proto::ServerError;
use pulsar::{ConnectionRetryOptions, OperationRetryOptions, Pulsar, TokioExecutor};

use crate::config::ConnectionConfig;

/// The `pulsar` client on the tokio runtime.
pub type PulsarClient = Pulsar<TokioExecutor>;

/// How long one operation (lookup, subscribe, a message's receipt) may take,
/// unless a connector says otherwise.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a client for the cluster of `config` and opens its first
/// connection, authenticating as `config` says.
pub async fn build(
    config: &ConnectionConfig,
    operation_timeout: Duration,
) -> std::result::Result<PulsarClient, pulsar::Error> {
    let mut builder = Pulsar::builder(config.broker_url.as_str(), TokioExecutor)
        .with_connection_retry_options(ConnectionRetryOptions {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_retries: 10,
            connection_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(30),
            ..ConnectionRetryOptions::default()
        })
        .with_operation_retry_options(OperationRetryOptions {
            operation_timeout,
            retry_delay: Duration::from_millis(500),
            max_retries: Some(20),
        });
    if let Some(provider) = config.auth.provider() {
        builder = builder.with_auth_provider(Box::new(provider));
    }
    if let Some(path) = &config.tls_trust_certs_file {
        builder = builder
            .with_certificate_chain_file(path)
            .map_err(|e| pulsar::Error::Custom(format!("cannot read {}: {e}", path.display())))?;
    }
    builder.build().await
}

/// [`build`], with errors as connector errors. When the `pulsar` client
/// reports only that the connection failed (it does for refused
/// credentials and TLS errors), a connection check runs to find and report
/// the actual cause.
pub async fn connect(
    config: &ConnectionConfig,
    component: &str,
    operation_timeout: Duration,
) -> Result<PulsarClient> {
    let operation = format!("connect to {}", config.address());
    let error = match build(config, operation_timeout).await {
        Ok(client) => return Ok(client),
        Err(e) => pulsar_error(component, operation.clone(), e),
    };
    if error.is_retryable() {
        return Err(error);
    }
    let report =
        crate::check::check_connection(config, component, Duration::from_secs(10), false).await;
    match report.failure() {
        Some(step) => {
            let reason = match &step.outcome {
                CheckOutcome::Failed { kind, reason } => format!("{}: {kind}: {reason}", step.name),
                CheckOutcome::Passed(_) => step.name.clone(),
            };
            let retryable = matches!(
                &step.outcome,
                CheckOutcome::Failed {
                    kind: FailureKind::Unreachable | FailureKind::Timeout,
                    ..
                }
            );
            Err(if retryable {
                Error::transient(component.to_owned(), operation, reason)
            } else {
                Error::permanent(component.to_owned(), operation, reason)
            })
        }
        None => Err(error),
    }
}

/// A `pulsar` error as a connector error for `operation`, retryable when
/// the same operation may succeed later.
pub fn pulsar_error(component: &str, operation: impl Into<String>, error: pulsar::Error) -> Error {
    let (kind, retryable) = classify(&error);
    let reason = describe(&error);
    let e = if retryable {
        Error::transient(component.to_owned(), operation, reason)
    } else {
        Error::permanent(component.to_owned(), operation, reason)
    };
    tracing::trace!(?kind, "pulsar error classified");
    e
}

/// The failure class of a `pulsar` error and whether retrying may help.
pub fn classify(error: &pulsar::Error) -> (FailureKind, bool) {
    match error {
        pulsar::Error::Connection(e) => classify_connection(e),
        pulsar::Error::Consumer(ConsumerError::Connection(e)) => classify_connection(e),
        pulsar::Error::Consumer(ConsumerError::Closed) => (FailureKind::Unreachable, true),
        pulsar::Error::Consumer(_) => (FailureKind::Invalid, true),
        pulsar::Error::Producer(ProducerError::Connection(e)) => classify_connection(e),
        pulsar::Error::Producer(ProducerError::Batch(inner)) => classify(inner),
        pulsar::Error::Producer(ProducerError::Fenced) => (FailureKind::PermissionDenied, false),
        pulsar::Error::Producer(_) => (FailureKind::Unreachable, true),
        pulsar::Error::ServiceDiscovery(e) => match e {
            ServiceDiscoveryError::Connection(e) => classify_connection(e),
            ServiceDiscoveryError::Query(server, _) => classify_server(*server),
            ServiceDiscoveryError::NotFound | ServiceDiscoveryError::DnsLookupError => {
                (FailureKind::Unreachable, true)
            }
            _ => (FailureKind::Unreachable, true),
        },
        pulsar::Error::Authentication(pulsar::error::AuthenticationError::Retriable(_)) => {
            (FailureKind::AuthRefused, true)
        }
        pulsar::Error::Authentication(_) => (FailureKind::AuthRefused, false),
        _ => (FailureKind::Invalid, true),
    }
}

fn classify_connection(error: &ConnectionError) -> (FailureKind, bool) {
    match error {
        ConnectionError::Io(e) => match e.kind() {
            std::io::ErrorKind::TimedOut => (FailureKind::Timeout, true),
            // What the client reports for refused credentials and TLS errors.
            std::io::ErrorKind::Other => (FailureKind::Invalid, false),
            _ => (FailureKind::Unreachable, true),
        },
        ConnectionError::Disconnected
        | ConnectionError::SlowDown
        | ConnectionError::Canceled
        | ConnectionError::Shutdown
        | ConnectionError::NotFound => (FailureKind::Unreachable, true),
        ConnectionError::PulsarError(server, _) => classify_server(*server),
        ConnectionError::Tls(_) | ConnectionError::DnsName(_) => (FailureKind::Tls, false),
        ConnectionError::Authentication(pulsar::error::AuthenticationError::Retriable(_)) => {
            (FailureKind::AuthRefused, true)
        }
        ConnectionError::Authentication(_) => (FailureKind::AuthRefused, false),
        _ => (FailureKind::Invalid, true),
    }
}

/// The failure class of a broker's error code and whether retrying may help.
pub fn classify_server(error: Option<ServerError>) -> (FailureKind, bool) {
    match error {
        Some(ServerError::AuthenticationError) => (FailureKind::AuthRefused, false),
        Some(ServerError::AuthorizationError) | Some(ServerError::NotAllowedError) => {
            (FailureKind::PermissionDenied, false)
        }
        Some(ServerError::TopicNotFound)
        | Some(ServerError::SubscriptionNotFound)
        | Some(ServerError::ConsumerNotFound) => (FailureKind::NotFound, false),
        Some(ServerError::InvalidTopicName)
        | Some(ServerError::IncompatibleSchema)
        | Some(ServerError::UnsupportedVersionError)
        | Some(ServerError::TopicTerminatedError)
        | Some(ServerError::ProducerFenced) => (FailureKind::Invalid, false),
        // Busy, not ready, throttled, storage trouble: may pass.
        _ => (FailureKind::Unreachable, true),
    }
}

/// A readable description of a `pulsar` error.
pub fn describe(error: &pulsar::Error) -> String {
    match error {
        pulsar::Error::Connection(ConnectionError::PulsarError(server, message))
        | pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Connection(
            ConnectionError::PulsarError(server, message),
        ))
        | pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Query(server, message)) => {
            server_message(*server, message.as_deref())
        }
        pulsar::Error::Consumer(ConsumerError::Connection(ConnectionError::PulsarError(
            server,
            message,
        )))
        | pulsar::Error::Producer(ProducerError::Connection(ConnectionError::PulsarError(
            server,
            message,
        ))) => server_message(*server, message.as_deref()),
        other => other.to_string(),
    }
}

/// `ServerError: message`, as the broker said it.
pub fn server_message(error: Option<ServerError>, message: Option<&str>) -> String {
    match (error, message.filter(|m| !m.is_empty())) {
        (Some(e), Some(m)) => format!("{e:?}: {m}"),
        (Some(e), None) => format!("{e:?}"),
        (None, Some(m)) => m.to_owned(),
        (None, None) => "unknown broker error".to_owned(),
    }
}
