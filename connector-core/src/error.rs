//! The one error type of the library.
//!
//! Every error says which connector raised it, what it was about (a property,
//! a record position, an operation against a server) and whether retrying
//! can help ([`Error::is_retryable`]). Messages never contain secrets: the
//! config layer only ever reports property *names*, and connectors build
//! their messages from redacted values.

use std::borrow::Cow;
use std::fmt;

/// Shorthand for `Result<T, connector_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed source error kept for `std::error::Error::source` chains.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The connector (or library component) an error belongs to, e.g. `kafka source`.
pub type Component = Cow<'static, str>;

/// Errors raised by sources, sinks, codecs and the pipeline.
///
/// ```
/// use connector_core::Error;
///
/// let err = Error::config("kafka source", "offset", "expected `earliest` or `latest`, got `newest`");
/// assert_eq!(
///     err.to_string(),
///     "kafka source: property `offset`: expected `earliest` or `latest`, got `newest`"
/// );
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A property is missing, unknown or malformed. Raised before anything connects.
    #[error("{component}: property `{property}`: {reason}")]
    Config {
        /// Connector the property belongs to.
        component: Component,
        /// Property name as the user spelled it (for unknown keys) or as documented.
        property: String,
        /// What was expected and what was found.
        reason: String,
    },

    /// Several configuration problems found in one pass.
    #[error("{component}: invalid configuration:\n{}", list(errors))]
    ConfigList {
        /// Connector the properties belong to.
        component: Component,
        /// Every problem found, each itself an [`Error::Config`].
        errors: Vec<Error>,
    },

    /// A payload could not be decoded into records.
    #[error("{component}: cannot decode {format} at {position}: {reason}")]
    Decode {
        /// Connector that received the payload (empty until a connector adds it).
        component: Component,
        /// Data format, e.g. `json`.
        format: &'static str,
        /// Where the payload came from: offset, line, array index, ...
        position: String,
        /// Why decoding failed.
        reason: String,
    },

    /// A record could not be encoded for a sink.
    #[error("{component}: cannot encode record {position} as {format}: {reason}")]
    Encode {
        /// Connector that was writing.
        component: Component,
        /// Data format, e.g. `avro`.
        format: &'static str,
        /// Which record (source position or index in its batch).
        position: String,
        /// Why encoding failed.
        reason: String,
    },

    /// The downstream system refused data for a reason a retry cannot fix
    /// (bad request, type mismatch, unknown column...).
    #[error("{component}: rejected {what}: {reason}")]
    Rejected {
        /// Connector that was writing.
        component: Component,
        /// What was refused, e.g. `batch of 128 records` or `record 3`.
        what: String,
        /// The server's explanation, verbatim where possible.
        reason: String,
    },

    /// Talking to an external system failed.
    #[error("{component}: {operation}: {reason}")]
    Io {
        /// Connector that was talking.
        component: Component,
        /// What it tried, e.g. `connect to 127.0.0.1:9092`.
        operation: String,
        /// What went wrong.
        reason: String,
        /// Whether the same operation may succeed later.
        retryable: bool,
        /// Underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The operation stopped because shutdown was requested.
    #[error("{component}: cancelled")]
    Cancelled {
        /// Component that was cancelled.
        component: Component,
    },
}

fn list(errors: &[Error]) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("  - ");
        match e {
            Error::Config {
                property, reason, ..
            } => {
                out.push_str(&format!("property `{property}`: {reason}"));
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

impl Error {
    /// A configuration error for `property` of `component`.
    pub fn config(
        component: impl Into<Component>,
        property: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Config {
            component: component.into(),
            property: property.into(),
            reason: reason.into(),
        }
    }

    /// A decode error. `component` may be empty when a codec raises it; the
    /// source fills it in with [`Error::in_component`].
    pub fn decode(
        format: &'static str,
        position: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::Decode {
            component: Cow::Borrowed(""),
            format,
            position: position.to_string(),
            reason: reason.into(),
        }
    }

    /// An encode error; see [`Error::decode`] for `component`.
    pub fn encode(
        format: &'static str,
        position: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::Encode {
            component: Cow::Borrowed(""),
            format,
            position: position.to_string(),
            reason: reason.into(),
        }
    }

    /// Data refused by the downstream system; never retried.
    pub fn rejected(
        component: impl Into<Component>,
        what: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Rejected {
            component: component.into(),
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// A failure that may heal by itself (connection refused, timeout, 503...).
    pub fn transient(
        component: impl Into<Component>,
        operation: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Io {
            component: component.into(),
            operation: operation.into(),
            reason: reason.into(),
            retryable: true,
            source: None,
        }
    }

    /// A failure that retrying will not fix (authentication refused, topic missing...).
    pub fn permanent(
        component: impl Into<Component>,
        operation: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Io {
            component: component.into(),
            operation: operation.into(),
            reason: reason.into(),
            retryable: false,
            source: None,
        }
    }

    /// Shutdown interrupted the operation.
    pub fn cancelled(component: impl Into<Component>) -> Self {
        Error::Cancelled {
            component: component.into(),
        }
    }

    /// Attaches an underlying error to an [`Error::Io`]; other variants are returned unchanged.
    pub fn with_source(mut self, err: impl Into<BoxError>) -> Self {
        if let Error::Io { source, .. } = &mut self {
            *source = Some(err.into());
        }
        self
    }

    /// Sets the component where a codec or helper left it empty.
    pub fn in_component(mut self, name: impl Into<Component>) -> Self {
        let slot = match &mut self {
            Error::Config { component, .. }
            | Error::ConfigList { component, .. }
            | Error::Decode { component, .. }
            | Error::Encode { component, .. }
            | Error::Rejected { component, .. }
            | Error::Io { component, .. }
            | Error::Cancelled { component } => component,
        };
        if slot.is_empty() {
            *slot = name.into();
        }
        self
    }

    /// Replaces the position of a decode or encode error (codecs know the
    /// line or index, sources know the offset; they combine here).
    pub fn at(mut self, where_: impl fmt::Display) -> Self {
        match &mut self {
            Error::Decode { position, .. } | Error::Encode { position, .. } => {
                *position = if position.is_empty() {
                    where_.to_string()
                } else {
                    format!("{where_}, {position}")
                };
            }
            _ => {}
        }
        self
    }

    /// The connector or component named by the error.
    pub fn component(&self) -> &str {
        match self {
            Error::Config { component, .. }
            | Error::ConfigList { component, .. }
            | Error::Decode { component, .. }
            | Error::Encode { component, .. }
            | Error::Rejected { component, .. }
            | Error::Io { component, .. }
            | Error::Cancelled { component } => component,
        }
    }

    /// Whether the same operation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Io {
                retryable: true,
                ..
            }
        )
    }

    /// Whether the error is about one record's data (decode, encode or
    /// rejection), which the pipeline's bad-data policy handles, rather than
    /// about the connector itself.
    pub fn is_bad_data(&self) -> bool {
        matches!(
            self,
            Error::Decode { .. } | Error::Encode { .. } | Error::Rejected { .. }
        )
    }

    /// Whether the error is a configuration problem.
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config { .. } | Error::ConfigList { .. })
    }

    /// A copy of the error for places that need to own one while the original
    /// travels on (acks fan out to several sources). The `source` chain is
    /// flattened into the reason text.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Config {
                component,
                property,
                reason,
            } => Error::Config {
                component: component.clone(),
                property: property.clone(),
                reason: reason.clone(),
            },
            Error::ConfigList { component, errors } => Error::ConfigList {
                component: component.clone(),
                errors: errors.iter().map(Error::duplicate).collect(),
            },
            Error::Decode {
                component,
                format,
                position,
                reason,
            } => Error::Decode {
                component: component.clone(),
                format,
                position: position.clone(),
                reason: reason.clone(),
            },
            Error::Encode {
                component,
                format,
                position,
                reason,
            } => Error::Encode {
                component: component.clone(),
                format,
                position: position.clone(),
                reason: reason.clone(),
            },
            Error::Rejected {
                component,
                what,
                reason,
            } => Error::Rejected {
                component: component.clone(),
                what: what.clone(),
                reason: reason.clone(),
            },
            Error::Io {
                component,
                operation,
                reason,
                retryable,
                source,
            } => Error::Io {
                component: component.clone(),
                operation: operation.clone(),
                reason: match source {
                    Some(s) => format!("{reason}: {s}"),
                    None => reason.clone(),
                },
                retryable: *retryable,
                source: None,
            },
            Error::Cancelled { component } => Error::Cancelled {
                component: component.clone(),
            },
        }
    }
}

/// An error and its causes as one line, `: `-joined, each text said once
/// (many errors repeat their cause in their own message).
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let err = connector_core::Error::transient("x sink", "connect", "cannot connect").with_source(io);
/// assert_eq!(connector_core::error::cause_chain(&err), "x sink: connect: cannot connect: connection refused");
/// ```
pub fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The first error of type `T` among `err` and its causes. Looks inside
/// `std::io::Error`s too, whose `source()` skips the error they wrap (a
/// TLS error inside an I/O error, for instance).
///
/// ```
/// use connector_core::error::find_cause;
///
/// #[derive(Debug)]
/// struct Inner;
/// impl std::fmt::Display for Inner {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("inner") }
/// }
/// impl std::error::Error for Inner {}
///
/// let io = std::io::Error::new(std::io::ErrorKind::InvalidData, Inner);
/// assert!(find_cause::<Inner>(&io).is_some());
/// ```
pub fn find_cause<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(hit) = e.downcast_ref::<T>() {
            return Some(hit);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(hit) = find_cause::<T>(inner)
        {
            return Some(hit);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_error_gets_component_and_position() {
        let err = Error::decode("json", "line 3", "expected value")
            .in_component("kafka source")
            .at("topic t partition 0 offset 17");
        assert_eq!(
            err.to_string(),
            "kafka source: cannot decode json at topic t partition 0 offset 17, line 3: expected value"
        );
        assert!(err.is_bad_data());
        assert!(!err.is_retryable());
    }

    #[test]
    fn component_is_not_overwritten() {
        let err = Error::transient("clickhouse sink", "insert", "connection refused")
            .in_component("other");
        assert_eq!(err.component(), "clickhouse sink");
        assert!(err.is_retryable());
    }

    #[test]
    fn config_list_lists_every_problem() {
        let err = Error::ConfigList {
            component: "kafka source".into(),
            errors: vec![
                Error::config("kafka source", "topic", "required property is missing"),
                Error::config("kafka source", "ofset", "unknown property"),
            ],
        };
        let text = err.to_string();
        assert!(text.starts_with("kafka source: invalid configuration:\n"));
        assert!(text.contains("  - property `topic`: required property is missing"));
        assert!(text.contains("  - property `ofset`: unknown property"));
        assert!(err.is_config());
    }

    #[test]
    fn duplicate_flattens_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::transient("http sink", "POST http://x", "connect failed").with_source(io);
        let copy = err.duplicate();
        assert_eq!(
            copy.to_string(),
            "http sink: POST http://x: connect failed: refused"
        );
        assert!(copy.is_retryable());
    }
}
