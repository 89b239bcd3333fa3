//! The HTTP side: one request to the viewership endpoint, and how its
//! failures read.

use std::time::Duration;

use bytes::Bytes;
use connector_core::http;
use connector_core::tls::TlsSettings;
use connector_core::{Error, FailureKind, Result, Secret};
use reqwest::StatusCode;
use url::Url;

/// A failed poll, as a connection check and the log report it.
#[derive(Debug, Clone)]
pub(crate) struct PollFailure {
    pub kind: FailureKind,
    pub reason: String,
    /// What a `Retry-After` header asked for.
    pub retry_after: Option<Duration>,
}

/// Talks to the viewership API.
pub(crate) struct ApiClient {
    http: reqwest::Client,
    endpoint: Url,
    api_key: Secret,
}

impl ApiClient {
    pub(crate) fn new(
        component: &str,
        endpoint: Url,
        api_key: Secret,
        timeout: Duration,
    ) -> Result<Self> {
        Ok(ApiClient {
            http: http_client(component, timeout)?,
            endpoint,
            api_key,
        })
    }

    pub(crate) fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// One authenticated GET; the body of a `2xx` answer.
    pub(crate) async fn get(&self) -> std::result::Result<Bytes, PollFailure> {
        let response = self
            .http
            .get(self.endpoint.clone())
            .bearer_auth(self.api_key.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| transport_failure(&e))?;
        if status.is_success() {
            return Ok(body);
        }
        Err(status_failure(status, &body, retry_after))
    }
}

/// The reqwest client: the library's TLS and user agent, HTTP/2 where the
/// server offers it.
pub(crate) fn http_client(component: &str, timeout: Duration) -> Result<reqwest::Client> {
    http::client_builder(component, &TlsSettings::default())?
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| {
            Error::config(
                component.to_owned(),
                "base_url",
                format!("cannot build the HTTP client: {}", http::describe_error(&e)),
            )
        })
}

/// A failed exchange without an HTTP answer: refused, timed out, TLS.
fn transport_failure(err: &reqwest::Error) -> PollFailure {
    let failure = http::transport_failure(err, "base_url");
    PollFailure {
        kind: failure.kind,
        reason: failure.reason,
        retry_after: None,
    }
}

/// An answer other than `2xx`, with the API's own words.
fn status_failure(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> PollFailure {
    let kind = match status.as_u16() {
        401 | 403 => FailureKind::AuthRefused,
        404 | 410 => FailureKind::NotFound,
        500..=599 => FailureKind::Unreachable,
        _ => FailureKind::Invalid,
    };
    let detail = api_errors(body);
    let mut reason = if detail.is_empty() {
        format!("answered {status}")
    } else {
        format!("answered {status}: {detail}")
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        reason.push_str(" (rate limited)");
    }
    PollFailure {
        kind,
        reason,
        retry_after,
    }
}

/// Livepeer's error body is `{"errors": ["..."]}`; anything else is shown
/// as text, shortened.
fn api_errors(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(serde_json::Value::Array(errors)) = map.get("errors")
    {
        let texts: Vec<String> = errors
            .iter()
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
            .collect();
        return texts.join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_bodies_are_read() {
        assert_eq!(
            api_errors(br#"{"errors":["invalid API key"]}"#),
            "invalid API key"
        );
        assert_eq!(api_errors(b"  Bad Gateway\n"), "Bad Gateway");
        let long = "x".repeat(400);
        assert_eq!(api_errors(long.as_bytes()).chars().count(), 301);
        let f = status_failure(
            StatusCode::TOO_MANY_REQUESTS,
            b"",
            Some(Duration::from_secs(3)),
        );
        assert_eq!(f.reason, "answered 429 Too Many Requests (rate limited)");
        assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
    }
}
