//! The request machinery every HTTP sink shares: one reqwest client (rustls
//! with the `ring` provider), per-request timeouts, retries with backoff and
//! `Retry-After`, an OAuth2 bearer token refreshed once on `401`, optional
//! pacing (Slack's one message per second), and the classification of every
//! answer into delivered, failed (retry later) or rejected (bad data).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use connector_core::check::FailureKind;
use connector_core::error::Component;
use connector_core::{Ack, Error, Position, Result};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::oauth2::{OAuth2Config, Token, TokenSource};
use crate::retry::{RetryPolicy, is_retryable_status, retry_after, with_jitter};
use connector_core::error::find_cause;
use connector_core::http;
use connector_core::tls::{self, TlsSettings};

/// How much of an error answer is kept in messages.
const MAX_BODY_IN_MESSAGE: usize = 1024;
/// How much of an error answer is read at all.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Everything an [`HttpClient`] needs besides the requests themselves.
///
/// ```
/// use std::time::Duration;
/// use sink_http::{ClientSettings, HttpClient, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> connector_core::Result<()> {
/// let client = HttpClient::new(
///     ClientSettings::new("http sink")
///         .timeout(Duration::from_secs(5))
///         .retry(RetryPolicy::new(3, Duration::from_millis(500))),
/// )?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// How errors name the sink, e.g. `http sink`.
    pub component: Component,
    /// Per-request timeout, from sending to the last byte of the answer;
    /// also the connect timeout.
    pub timeout: Duration,
    /// What is retried and how long to wait.
    pub retry: RetryPolicy,
    /// Certificate verification.
    pub tls: TlsSettings,
    /// OAuth2 client credentials; the token goes in `Authorization: Bearer`.
    pub oauth2: Option<OAuth2Config>,
    /// Least time between the starts of two requests (zero: no pacing).
    pub min_interval: Duration,
}

impl ClientSettings {
    /// Defaults: 10s timeout, no retries, verified TLS, no OAuth2, no pacing.
    pub fn new(component: impl Into<Component>) -> Self {
        ClientSettings {
            component: component.into(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::none(),
            tls: TlsSettings::default(),
            oauth2: None,
            min_interval: Duration::ZERO,
        }
    }

    /// Sets the per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the TLS settings.
    pub fn tls(mut self, tls: TlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// Authenticates with OAuth2 client credentials.
    pub fn oauth2(mut self, oauth2: Option<OAuth2Config>) -> Self {
        self.oauth2 = oauth2;
        self
    }

    /// Spaces requests at least `interval` apart.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }
}

/// Where requests go: method, URL, headers, and how messages show the URL.
#[derive(Clone)]
pub struct Endpoint {
    /// The HTTP method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    /// The URL as errors and logs show it (see [`redact_url`]); the Slack
    /// sink, whose URL is a secret, shows only the host.
    pub display: String,
    /// Headers sent with every request (content type, user headers).
    pub headers: HeaderMap,
}

impl Endpoint {
    /// An endpoint shown as [`redact_url`] shows `url`.
    pub fn new(method: Method, url: Url) -> Self {
        Endpoint {
            display: redact_url(&url),
            method,
            url,
            headers: HeaderMap::new(),
        }
    }

    /// Shows the endpoint as `display` in errors and logs.
    pub fn with_display(mut self, display: impl Into<String>) -> Self {
        self.display = display.into();
        self
    }

    /// Sends `headers` with every request.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }
}

impl fmt::Debug for Endpoint {
    /// Header values are not printed: they may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("method", &self.method)
            .field("url", &self.display)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What a request carries, for messages: one record or several.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// One record: its index in the sink's batch and its source position.
    Record {
        /// Index in the batch handed to the sink.
        index: usize,
        /// Where the record came from, if the source said.
        position: Option<Position>,
    },
    /// Several records in one body.
    Records {
        /// How many.
        count: usize,
        /// Where the first one came from, if the source said.
        first: Option<Position>,
    },
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Record {
                position: Some(p @ Position::Sequence(_)),
                ..
            } => write!(f, "{p}"),
            Label::Record {
                position: Some(p), ..
            } => write!(f, "record at {p}"),
            Label::Record { index, .. } => write!(f, "record {index} of its batch"),
            Label::Records { count, first } => {
                let s = if *count == 1 { "" } else { "s" };
                match first {
                    Some(p) => write!(f, "{count} record{s} from {p}"),
                    None => write!(f, "{count} record{s}"),
                }
            }
        }
    }
}

/// One request: an endpoint, a body and what it carries.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where it goes.
    pub endpoint: Arc<Endpoint>,
    /// The body (sent with every method, GET and DELETE included).
    pub body: Bytes,
    /// What the body holds, for messages.
    pub label: Label,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The 2xx status.
    pub status: StatusCode,
    /// The answer's body.
    pub body: Bytes,
    /// Tries it took (1 when the first one worked).
    pub attempts: u32,
}

/// How a request ended.
#[derive(Debug)]
pub enum Delivery {
    /// The server answered 2xx.
    Delivered(Response),
    /// Not delivered, and not the data's fault: retries exhausted, the
    /// OAuth2 endpoint refused the credentials, a redirect that cannot be
    /// followed, shutdown. The source should deliver the records again.
    Failed(Error),
    /// The server refused the data with a 4xx answer (other than 408 and
    /// 429); the error holds the server's answer.
    Rejected(Error),
}

impl Delivery {
    /// Whether the request was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered(_))
    }

    /// Resolves `ack` with the outcome.
    pub fn resolve(self, ack: Ack) {
        match self {
            Delivery::Delivered(_) => ack.delivered(),
            Delivery::Failed(e) => {
                tracing::debug!(error = %e, "request failed");
                ack.failed(e);
            }
            Delivery::Rejected(e) => {
                tracing::debug!(error = %e, "request rejected");
                ack.rejected(e);
            }
        }
    }
}

/// Spaces request starts `interval` apart; a `429` pushes the next start
/// back for every request, since rate limits are per endpoint.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    fn pause_until(&self, until: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next = (*next).max(until);
    }
}

struct Inner {
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    component: Component,
    timeout: Duration,
    retry: RetryPolicy,
    oauth: Option<TokenSource>,
    pacer: Option<Pacer>,
    cancel: CancellationToken,
}

/// A shared HTTP client with the sinks' delivery rules. Cheap to clone.
///
/// [`HttpClient::send`] tries a request until it is delivered, rejected or
/// out of retries:
/// - `2xx`: delivered.
/// - connection error, timeout, `408`, `429`, `5xx`: retried after the
///   policy's wait, or after `Retry-After` when the server asks for longer.
/// - `401` with OAuth2: the token is fetched again and the request repeated
///   once (this does not count as a retry).
/// - any other `4xx`: rejected, with the server's answer in the error.
/// - anything else (`3xx` other than followed `307`/`308` redirects):
///   failed.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("component", &self.inner.component)
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .field("oauth2", &self.inner.oauth.is_some())
            .finish()
    }
}

/// Why one try did not deliver.
struct Failure {
    reason: String,
    retry_after: Option<Duration>,
    rate_limited: bool,
}

enum Attempt {
    Done(Delivery),
    Unauthorized(Arc<Token>),
    Retry(Failure),
}

impl HttpClient {
    /// A client with `settings`. Fails on bad TLS settings.
    pub fn new(settings: ClientSettings) -> Result<Self> {
        let component = settings.component.clone();
        let tls = settings.tls.client_config(&component)?;
        let http = http::client_builder_with(&tls)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // 307/308 keep the method and body; following 301/302/303
                // would turn the POST into a body-less GET and lose data.
                if attempt.previous().len() >= 5 {
                    attempt.error("more than 5 redirects")
                } else if matches!(attempt.status().as_u16(), 307 | 308) {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()
            .map_err(|e| Error::config(component.clone(), "tls", describe_reqwest_error(&e)))?;
        let oauth = settings
            .oauth2
            .map(|config| TokenSource::new(config, http.clone(), settings.timeout));
        let pacer = (!settings.min_interval.is_zero()).then(|| Pacer {
            interval: settings.min_interval,
            next: Mutex::new(Instant::now()),
        });
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http,
                tls,
                component,
                timeout: settings.timeout,
                retry: settings.retry,
                oauth,
                pacer,
                cancel: CancellationToken::new(),
            }),
        })
    }

    /// How errors name the sink.
    pub fn component(&self) -> &str {
        &self.inner.component
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The TLS configuration requests use (for connection checks).
    pub fn tls_config(&self) -> &Arc<rustls::ClientConfig> {
        &self.inner.tls
    }

    /// OAuth2 tokens fetched so far (0 without OAuth2).
    pub fn tokens_fetched(&self) -> u64 {
        self.inner.oauth.as_ref().map_or(0, TokenSource::fetches)
    }

    /// Stops the client's requests: those waiting to be retried (or paced)
    /// end at once as [`Delivery::Failed`], so their records are delivered
    /// again later; a try under way still ends with its real outcome.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    /// Whether [`HttpClient::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Sends `request` until it is delivered, rejected or out of retries.
    pub async fn send(&self, request: &Request) -> Delivery {
        let inner = &*self.inner;
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut refreshed = false;
        loop {
            if let Some(pacer) = &inner.pacer {
                tokio::select! {
                    biased;
                    _ = inner.cancel.cancelled() => return self.cancelled(request),
                    _ = pacer.wait() => {}
                }
            }
            attempts += 1;
            // A request under way is not interrupted by a shutdown: it ends
            // within `timeout` with its real outcome. Only waits are cut short.
            let failure = match self.attempt(request, attempts).await {
                Attempt::Done(delivery) => return delivery,
                Attempt::Unauthorized(token) if !refreshed => {
                    // The token may have been revoked or expired early:
                    // fetch a new one and try once more.
                    refreshed = true;
                    if let Some(source) = &inner.oauth {
                        source.invalidate(&token).await;
                    }
                    attempts -= 1;
                    continue;
                }
                Attempt::Unauthorized(_) => {
                    return Delivery::Rejected(Error::rejected(
                        inner.component.clone(),
                        request.label.to_string(),
                        format!(
                            "{} {} answered 401 Unauthorized even with a freshly fetched OAuth2 token",
                            request.endpoint.method, request.endpoint.display
                        ),
                    ));
                }
                Attempt::Retry(failure) => failure,
            };
            let counts = !(failure.rate_limited && inner.retry.wait_out_rate_limits);
            if counts && retries >= inner.retry.retries {
                let tries = if attempts == 1 {
                    "1 attempt; `retries` is 0".to_owned()
                } else {
                    format!("{attempts} attempts")
                };
                return Delivery::Failed(Error::transient(
                    inner.component.clone(),
                    format!(
                        "{} {} ({})",
                        request.endpoint.method, request.endpoint.display, request.label
                    ),
                    format!("{} (gave up after {tries})", failure.reason),
                ));
            }
            let mut wait = if counts {
                retries += 1;
                with_jitter(inner.retry.delay(retries))
            } else {
                inner.retry.interval
            };
            if let Some(asked) = failure.retry_after {
                wait = wait.max(asked);
            }
            tracing::debug!(
                component = %inner.component,
                target = %request.endpoint.display,
                what = %request.label,
                attempt = attempts,
                wait_ms = wait.as_millis() as u64,
                reason = %failure.reason,
                "retrying"
            );
            if failure.rate_limited
                && let Some(pacer) = &inner.pacer
            {
                pacer.pause_until(Instant::now() + wait);
            }
            tokio::select! {
                biased;
                _ = inner.cancel.cancelled() => return self.cancelled(request),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn cancelled(&self, request: &Request) -> Delivery {
        Delivery::Failed(Error::transient(
            self.inner.component.clone(),
            format!(
                "{} {} ({})",
                request.endpoint.method, request.endpoint.display, request.label
            ),
            "the sink was shut down before the request was delivered",
        ))
    }

    /// One try.
    async fn attempt(&self, request: &Request, attempt: u32) -> Attempt {
        let inner = &*self.inner;
        let endpoint = &*request.endpoint;
        let token = match &inner.oauth {
            None => None,
            Some(source) => match source.token().await {
                Ok(token) => Some(token),
                Err(e) if e.retryable => {
                    return Attempt::Retry(Failure {
                        reason: format!(
                            "cannot fetch an OAuth2 token from {}: {}",
                            source.token_url(),
                            e.reason
                        ),
                        retry_after: None,
                        rate_limited: false,
                    });
                }
                Err(e) => {
                    return Attempt::Done(Delivery::Failed(
                        e.into_error(&inner.component, source.token_url()),
                    ));
                }
            },
        };
        let mut http_request = reqwest::Request::new(endpoint.method.clone(), endpoint.url.clone());
        *http_request.headers_mut() = endpoint.headers.clone();
        if let Some(token) = &token {
            http_request
                .headers_mut()
                .insert(AUTHORIZATION, token.header.clone());
        }
        *http_request.body_mut() = Some(request.body.clone().into());
        *http_request.timeout_mut() = Some(inner.timeout);
        let response = match inner.http.execute(http_request).await {
            Ok(response) => response,
            Err(e) => {
                let reason = if e.is_timeout() {
                    format!(
                        "no answer within {} (`timeout`)",
                        connector_core::config::format_duration(inner.timeout)
                    )
                } else {
                    describe_reqwest_error(&e)
                };
                if e.is_builder() || e.is_redirect() {
                    return Attempt::Done(Delivery::Failed(Error::permanent(
                        inner.component.clone(),
                        format!(
                            "{} {} ({})",
                            endpoint.method, endpoint.display, request.label
                        ),
                        reason,
                    )));
                }
                return Attempt::Retry(Failure {
                    reason,
                    retry_after: None,
                    rate_limited: false,
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return match response.bytes().await {
                Ok(body) => Attempt::Done(Delivery::Delivered(Response {
                    status,
                    body,
                    attempts: attempt,
                })),
                // The server said 2xx; a body cut short afterwards does not
                // undo that, and retrying could duplicate the data.
                Err(_) => Attempt::Done(Delivery::Delivered(Response {
                    status,
                    body: Bytes::new(),
                    attempts: attempt,
                })),
            };
        }
        if status == StatusCode::UNAUTHORIZED
            && let Some(token) = token
        {
            return Attempt::Unauthorized(token);
        }
        let asked = retry_after(response.headers(), SystemTime::now());
        let body = read_limited(response).await;
        let answered = if body.is_empty() {
            format!("{} {} answered {status}", endpoint.method, endpoint.display)
        } else {
            format!(
                "{} {} answered {status}: {body}",
                endpoint.method, endpoint.display
            )
        };
        if is_retryable_status(status) {
            return Attempt::Retry(Failure {
                reason: answered,
                retry_after: asked,
                rate_limited: status == StatusCode::TOO_MANY_REQUESTS,
            });
        }
        if status.is_client_error() {
            return Attempt::Done(Delivery::Rejected(Error::rejected(
                inner.component.clone(),
                request.label.to_string(),
                answered,
            )));
        }
        Attempt::Done(Delivery::Failed(Error::permanent(
            inner.component.clone(),
            format!(
                "{} {} ({})",
                endpoint.method, endpoint.display, request.label
            ),
            answered,
        )))
    }

    /// One request without retries, for connection checks: `body` (none
    /// when empty) to `endpoint` with `method`, with the OAuth2 token when
    /// `with_token`. Returns the status and (part of) the answer, or why
    /// there was none.
    pub async fn probe(
        &self,
        method: Method,
        endpoint: &Endpoint,
        body: Bytes,
        with_token: bool,
    ) -> std::result::Result<(StatusCode, String), (FailureKind, String)> {
        let inner = &*self.inner;
        let mut request = inner
            .http
            .request(method, endpoint.url.clone())
            .headers(endpoint.headers.clone())
            .timeout(inner.timeout);
        if !body.is_empty() {
            request = request.body(body);
        }
        if with_token && let Some(source) = &inner.oauth {
            let token = source.token().await.map_err(|e| (e.kind, e.reason))?;
            request = request.header(AUTHORIZATION, token.header.clone());
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                FailureKind::Timeout
            } else if find_cause::<rustls::Error>(&e).is_some() {
                FailureKind::Tls
            } else {
                FailureKind::Unreachable
            };
            (kind, describe_reqwest_error(&e))
        })?;
        let status = response.status();
        Ok((status, read_limited(response).await))
    }

    /// Fetches an OAuth2 token (the cached one if fresh), for connection
    /// checks. `Ok(None)` without OAuth2.
    pub async fn check_token(&self) -> std::result::Result<Option<String>, (FailureKind, String)> {
        match &self.inner.oauth {
            None => Ok(None),
            Some(source) => source
                .token()
                .await
                .map(|_| Some(source.token_url().to_owned()))
                .map_err(|e| (e.kind, e.reason)),
        }
    }

    /// The token URL as messages show it, when OAuth2 is on.
    pub fn token_url(&self) -> Option<&str> {
        self.inner.oauth.as_ref().map(TokenSource::token_url)
    }
}

/// Reads at most [`MAX_ERROR_BODY`] of an answer and returns it as text cut
/// to [`MAX_BODY_IN_MESSAGE`] for messages.
async fn read_limited(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    truncate_body(&body)
}

/// An answer's body as it goes into messages: trimmed, lossy UTF-8, cut at
/// 1 KiB on a character boundary with the full size noted.
///
/// ```
/// assert_eq!(sink_http::truncate_body(b"  invalid_payload\n"), "invalid_payload");
/// let long = "x".repeat(5000);
/// let cut = sink_http::truncate_body(long.as_bytes());
/// assert!(cut.starts_with("xxx") && cut.ends_with("... (5000 bytes in all)"));
/// ```
pub fn truncate_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= MAX_BODY_IN_MESSAGE {
        return text.to_owned();
    }
    let mut end = MAX_BODY_IN_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], body.len())
}

/// A URL as messages show it: no user name or password, and the query
/// string (where API keys tend to live) replaced by `?...`.
///
/// ```
/// use reqwest::Url;
/// let url = Url::parse("https://bob:pw@hooks.example.com:8443/in/abc?token=s3cret").unwrap();
/// assert_eq!(sink_http::redact_url(&url), "https://hooks.example.com:8443/in/abc?...");
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some_and(|q| !q.is_empty());
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?...");
    }
    text
}

/// A reqwest error as one line, without the URL (which may be secret),
/// with a hint when TLS met a plain-HTTP server.
pub(crate) fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let mut out = http::describe_error(error);
    if find_cause::<rustls::Error>(error).is_some_and(tls::is_plain_text_peer) {
        out.push_str(" (is the server speaking plain HTTP? try an http:// URL)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let one = Label::Record {
            index: 3,
            position: None,
        };
        assert_eq!(one.to_string(), "record 3 of its batch");
        let seq = Label::Record {
            index: 0,
            position: Some(Position::Sequence(17)),
        };
        assert_eq!(seq.to_string(), "record #17");
        let many = Label::Records {
            count: 5,
            first: Some(Position::Offset {
                topic: "t".into(),
                partition: 1,
                offset: 9,
            }),
        };
        assert_eq!(
            many.to_string(),
            "5 records from topic t partition 1 offset 9"
        );
    }

    #[test]
    fn truncation_respects_characters() {
        let text = "é".repeat(1000); // 2000 bytes
        let cut = truncate_body(text.as_bytes());
        assert!(cut.ends_with("... (2000 bytes in all)"), "{cut}");
        assert_eq!(truncate_body(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn urls_are_redacted() {
        let u = Url::parse("http://127.0.0.1:9000/hook").unwrap();
        assert_eq!(redact_url(&u), "http://127.0.0.1:9000/hook");
        let u = Url::parse("http://a:b@x.org/?").unwrap();
        assert_eq!(redact_url(&u), "http://x.org/");
    }
}
