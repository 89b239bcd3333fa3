//! The `slack` sink.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use connector_core::check::{CheckReport, FailureKind};
use connector_core::{Batch, Properties, Result, Sink};
use sink_http::check::check_reachable;
use sink_http::reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use sink_http::reqwest::{Method, StatusCode};
use sink_http::{ClientSettings, Dispatcher, Endpoint, HttpClient, Label, Request};

use crate::config::{SPEC, SlackConfig};

/// Error codes Slack answers to a message without text: the webhook
/// exists, and nothing was posted.
const EMPTY_MESSAGE_ERRORS: &[&str] = &[
    "no_text",
    "missing_text_or_fallback_or_attachments",
    "invalid_payload",
];

/// Posts each record as `{"text": ...}` to a Slack incoming webhook, one
/// message at a time, in order, at most one per `min_interval`.
///
/// A `429 Too Many Requests` answer pauses the sink for `Retry-After` (or
/// `retry_interval`) and the same message is sent again, however often
/// that happens: rate limits never drop a message. Connection errors,
/// timeouts and `5xx` answers are retried `retries` times. Slack's error
/// answers (`invalid_payload`, `no_text`, `channel_not_found`, ...) are
/// reported verbatim; a `4xx` rejects the record.
///
/// The webhook URL is a secret: errors, logs and reports show only
/// `Slack webhook at <host>`.
pub struct SlackSink {
    name: String,
    config: SlackConfig,
    client: HttpClient,
    endpoint: Arc<Endpoint>,
    dispatcher: Dispatcher,
}

impl std::fmt::Debug for SlackSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSink")
            .field("config", &self.config)
            .finish()
    }
}

impl SlackSink {
    /// A sink from a typed config. Fails on bad TLS settings.
    pub fn new(config: SlackConfig) -> Result<Self> {
        let name = SPEC.component();
        let client = HttpClient::new(
            ClientSettings::new(name.clone())
                .timeout(config.timeout)
                .retry(config.retry.clone().wait_out_rate_limits(true))
                .tls(config.tls.clone())
                .min_interval(config.min_interval),
        )?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (header, value) in &config.headers {
            headers.insert(header.clone(), value.clone());
        }
        let endpoint = Arc::new(
            Endpoint::new(Method::POST, config.url.clone())
                .with_display(shown(&config))
                .with_headers(headers),
        );
        Ok(SlackSink {
            name,
            // One at a time: messages keep their order and the pacing holds.
            dispatcher: Dispatcher::new(1),
            config,
            client,
            endpoint,
        })
    }

    /// A sink from the `slack` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        SlackConfig::from_properties(props).and_then(SlackSink::new)
    }

    /// The configuration in use.
    pub fn config(&self) -> &SlackConfig {
        &self.config
    }
}

/// How messages name the webhook without its secret path.
fn shown(config: &SlackConfig) -> String {
    let host = config.url.host_str().unwrap_or("?");
    match config.url.port() {
        Some(port) => format!("Slack webhook at {host}:{port}"),
        None => format!("Slack webhook at {host}"),
    }
}

/// The message body: `{"text": "<rendered>"}`.
fn message(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap_or_default()
}

#[async_trait]
impl Sink for SlackSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        let (records, ack) = batch.into_parts();
        for (index, record) in records.iter().enumerate() {
            let text = self.config.template.render(record);
            let request = Request {
                endpoint: self.endpoint.clone(),
                body: Bytes::from(message(&text)),
                label: Label::Record {
                    index,
                    position: record.position.clone(),
                },
            };
            let client = self.client.clone();
            let ack = ack.clone();
            self.dispatcher
                .submit(None, async move {
                    client.send(&request).await.resolve(ack);
                })
                .await;
        }
        ack.delivered();
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.dispatcher.wait_idle().await;
        Ok(())
    }

    /// Checks the URL's host (DNS, TCP, TLS), then posts a message without
    /// text: Slack refuses it (`no_text`) when the webhook exists, so
    /// nothing appears in the channel, and answers `no_service`,
    /// `invalid_token`, `channel_not_found`, ... when it does not.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.name.clone());
        let shown = self.endpoint.display.clone();
        if !check_reachable(&mut report, &self.client, &self.config.url, &shown, timeout).await {
            return report;
        }
        let client = self.client.clone();
        let endpoint = self.endpoint.clone();
        report
            .step(
                format!("post an empty message to the {shown} (nothing is posted)"),
                timeout,
                async move {
                    let (status, body) = client
                        .probe(Method::POST, &endpoint, Bytes::from_static(b"{}"), false)
                        .await?;
                    classify(status, &body)
                },
            )
            .await;
        report
    }
}

/// Reads Slack's answer to a message without text.
fn classify(status: StatusCode, body: &str) -> std::result::Result<String, (FailureKind, String)> {
    let answered = if body.is_empty() {
        format!("Slack answered {status}")
    } else {
        format!("Slack answered {status}: {body}")
    };
    match status.as_u16() {
        400 if EMPTY_MESSAGE_ERRORS.contains(&body) => Ok(format!(
            "the webhook exists (Slack refused the empty message with `{body}`)"
        )),
        200..=299 => Err((
            FailureKind::Invalid,
            format!("{answered} (an empty message was accepted: is this a Slack webhook?)"),
        )),
        401 | 403 => Err((FailureKind::AuthRefused, answered)),
        404 | 410 => Err((FailureKind::NotFound, answered)),
        429 | 500..=599 => Err((FailureKind::Unreachable, answered)),
        _ => Err((FailureKind::Invalid, answered)),
    }
}

impl Drop for SlackSink {
    fn drop(&mut self) {
        self.client.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_json_text() {
        assert_eq!(message(br#"say "hi""#), br#"{"text":"say \"hi\""}"#);
    }

    #[test]
    fn slack_answers_are_classified() {
        assert!(classify(StatusCode::BAD_REQUEST, "no_text").is_ok());
        assert_eq!(
            classify(StatusCode::NOT_FOUND, "no_service").unwrap_err(),
            (
                FailureKind::NotFound,
                "Slack answered 404 Not Found: no_service".into()
            )
        );
        assert_eq!(
            classify(StatusCode::FORBIDDEN, "invalid_token")
                .unwrap_err()
                .0,
            FailureKind::AuthRefused
        );
        assert_eq!(
            classify(StatusCode::GONE, "channel_is_archived")
                .unwrap_err()
                .0,
            FailureKind::NotFound
        );
        assert_eq!(
            classify(StatusCode::OK, "").unwrap_err(),
            (
                FailureKind::Invalid,
                "Slack answered 200 OK (an empty message was accepted: is this a Slack webhook?)"
                    .into()
            )
        );
    }
}
