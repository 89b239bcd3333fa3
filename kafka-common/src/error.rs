//! librdkafka errors as the library's [`Error`] and as check failures.

use connector_core::Error;
use connector_core::check::FailureKind;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::context::ClientError;

/// Describes a librdkafka error without printing configuration values (a
/// rejected setting could be a password).
pub fn describe(err: &KafkaError) -> String {
    match err {
        KafkaError::ClientConfig(_, description, key, _) => {
            format!("invalid client setting `{key}`: {description}")
        }
        other => other.to_string(),
    }
}

/// Whether an operation that failed with `code` may succeed when retried.
pub fn is_retryable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    !matches!(
        failure_kind(code),
        FailureKind::AuthRefused | FailureKind::PermissionDenied | FailureKind::Invalid
    ) && !matches!(code, C::Fatal | C::Fenced | C::InvalidArgument)
}

/// The library error for a failed client operation.
pub fn to_error(component: &str, operation: impl Into<String>, err: &KafkaError) -> Error {
    let retryable = err.rdkafka_error_code().is_some_and(is_retryable)
        && !matches!(err, KafkaError::MessageConsumptionFatal(_));
    let reason = describe(err);
    if retryable {
        Error::transient(component.to_owned(), operation, reason)
    } else {
        Error::permanent(component.to_owned(), operation, reason)
    }
}

/// How a check reports an error code.
pub fn failure_kind(code: RDKafkaErrorCode) -> FailureKind {
    use RDKafkaErrorCode as C;
    match code {
        C::BrokerTransportFailure
        | C::Resolve
        | C::AllBrokersDown
        | C::UnknownBroker
        | C::LeaderNotAvailable
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::WaitingForCoordinator => FailureKind::Unreachable,
        C::SSL => FailureKind::Tls,
        C::Authentication
        | C::SaslAuthenticationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState => FailureKind::AuthRefused,
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::DelegationTokenAuthorizationFailed => FailureKind::PermissionDenied,
        C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition => FailureKind::NotFound,
        C::OperationTimedOut | C::MessageTimedOut | C::RequestTimedOut | C::TimedOutQueue => {
            FailureKind::Timeout
        }
        _ => FailureKind::Invalid,
    }
}

/// Whether a client error means the check cannot succeed by waiting
/// longer: the brokers refused us, TLS or SASL failed, or every broker is
/// down.
pub fn is_decisive(error: &ClientError) -> bool {
    matches!(
        failure_kind(error.code),
        FailureKind::Tls | FailureKind::AuthRefused | FailureKind::PermissionDenied
    ) || error.all_brokers_down
}

/// The failure of a check step that ended with `err`, explained with the
/// client's last error where it says more (a metadata request only says
/// "timed out"; the client error says "connection refused").
pub fn check_failure(err: &KafkaError, last: Option<&ClientError>) -> (FailureKind, String) {
    let code = err.rdkafka_error_code();
    let generic = matches!(
        code,
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::TimedOutQueue
        )
    );
    match last {
        Some(client) if generic || code.is_none() => client_failure(client),
        _ => (
            code.map_or(FailureKind::Invalid, failure_kind),
            describe(err),
        ),
    }
}

/// The failure a client error stands for.
pub fn client_failure(error: &ClientError) -> (FailureKind, String) {
    let kind = match failure_kind(error.code) {
        // librdkafka reports some failed TLS handshakes as transport errors;
        // the text tells.
        FailureKind::Unreachable if mentions_tls(&error.reason) => FailureKind::Tls,
        FailureKind::Invalid if error.all_brokers_down => FailureKind::Unreachable,
        kind => kind,
    };
    (kind, error.to_string())
}

fn mentions_tls(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    lower.contains("ssl") || lower.contains("tls") || lower.contains("certificate")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaConfRes;

    #[test]
    fn config_errors_do_not_print_values() {
        let err = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value".into(),
            "sasl.password".into(),
            "hunter2".into(),
        );
        let text = describe(&err);
        assert_eq!(
            text,
            "invalid client setting `sasl.password`: Invalid value"
        );
        assert!(
            !to_error("kafka source", "create client", &err)
                .to_string()
                .contains("hunter2")
        );
    }

    #[test]
    fn retry_classification() {
        let refused = KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(to_error("kafka sink", "metadata", &refused).is_retryable());
        let auth = KafkaError::Global(RDKafkaErrorCode::SaslAuthenticationFailed);
        assert!(!to_error("kafka sink", "connect", &auth).is_retryable());
        let fatal = KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::Fatal);
        assert!(!to_error("kafka source", "consume", &fatal).is_retryable());
    }

    #[test]
    fn check_failures_prefer_the_client_error() {
        let timeout = KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
        let refused = ClientError {
            code: RDKafkaErrorCode::BrokerTransportFailure,
            reason: "Connect to ipv4#127.0.0.1:1 failed: Connection refused".into(),
            all_brokers_down: false,
        };
        assert_eq!(
            check_failure(&timeout, Some(&refused)),
            (FailureKind::Unreachable, refused.reason.clone())
        );
        assert_eq!(check_failure(&timeout, None).0, FailureKind::Timeout);
        let tls = ClientError {
            code: RDKafkaErrorCode::SSL,
            reason: "SSL handshake failed".into(),
            all_brokers_down: false,
        };
        assert_eq!(check_failure(&timeout, Some(&tls)).0, FailureKind::Tls);
        assert!(is_decisive(&tls));
        assert!(!is_decisive(&refused));
        let down = ClientError {
            all_brokers_down: true,
            ..refused.clone()
        };
        assert!(is_decisive(&down));
        let missing = KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert_eq!(
            check_failure(&missing, Some(&refused)).0,
            FailureKind::NotFound
        );
    }
}
