//! Opening Ably's SSE stream and reading it as events.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use connector_core::config::format_duration;
use connector_core::http;
use connector_core::tls::TlsSettings;
use connector_core::{Error, FailureKind, Result};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::Stream;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::config::AblyConfig;
use crate::message::ErrorInfo;

/// The events of one open stream; it ends when the connection does.
pub(crate) type Events =
    Pin<Box<dyn Stream<Item = std::result::Result<Event, EventStreamError<String>>> + Send>>;

/// Why a stream could not be opened: what failed and Ably's or the
/// transport's words.
pub(crate) type OpenFailure = http::TransportFailure;

/// The reqwest client: the library's TLS and user agent. No overall
/// timeout: a stream stays open for hours.
pub(crate) fn http_client(component: &str, connect_timeout: Duration) -> Result<reqwest::Client> {
    http::client_builder(component, &TlsSettings::default())?
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| {
            Error::config(
                component.to_owned(),
                "base_url",
                format!("cannot build the HTTP client: {}", http::describe_error(&e)),
            )
        })
}

/// Opens the stream (resuming after `last_event`), checking that Ably
/// accepted the key and the channel.
pub(crate) async fn open(
    client: &reqwest::Client,
    config: &AblyConfig,
    last_event: Option<&str>,
) -> std::result::Result<Events, OpenFailure> {
    let fail = |kind, reason: String| OpenFailure { kind, reason };
    let url = config
        .stream_url(last_event)
        .map_err(|e| fail(FailureKind::Invalid, e))?;
    let (name, secret) = config.key_parts().ok_or_else(|| {
        fail(
            FailureKind::Invalid,
            "api_key is not `appId.keyId:secret`".into(),
        )
    })?;
    let request = client
        .get(url)
        .basic_auth(name, Some(secret))
        .header(ACCEPT, "text/event-stream")
        .send();
    let response = match tokio::time::timeout(config.timeout, request).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(http::transport_failure(&e, "base_url")),
        Err(_) => {
            return Err(fail(
                FailureKind::Timeout,
                format!("no answer within {}", format_duration(config.timeout)),
            ));
        }
    };
    let status = response.status();
    if !status.is_success() {
        // Failures to open come as a plain answer `{"error": ErrorInfo}`.
        let body = tokio::time::timeout(config.timeout, response.text())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let detail = ErrorInfo::parse(&body)
            .map(|e| e.describe())
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let kind = match status.as_u16() {
            401 | 403 => FailureKind::AuthRefused,
            404 => FailureKind::NotFound,
            500..=599 => FailureKind::Unreachable,
            _ => FailureKind::Invalid,
        };
        let reason = if detail.is_empty() {
            format!("answered {status}")
        } else {
            format!("answered {status}: {detail}")
        };
        return Err(fail(kind, reason));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !content_type.starts_with("text/event-stream") {
        return Err(fail(
            FailureKind::Invalid,
            format!("answered {status} with `{content_type}`, not an event stream"),
        ));
    }
    Ok(Box::pin(
        chunks(response, config.idle_timeout).eventsource(),
    ))
}

/// The body as a stream of chunks that fails when nothing (not even a
/// keepalive) arrives for `idle`.
fn chunks(
    response: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = std::result::Result<Bytes, String>> + Send {
    futures::stream::unfold(Some(response), move |state| async move {
        let mut response = state?;
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => Some((Ok(chunk), Some(response))),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => Some((Err(http::describe_error(&e)), None)),
            Err(_) => Some((
                Err(format!("nothing received for {}", format_duration(idle))),
                None,
            )),
        }
    })
}
