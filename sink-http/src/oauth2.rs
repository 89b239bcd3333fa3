//! OAuth2 client credentials (RFC 6749 §4.4): a token fetched from the
//! token endpoint, cached until shortly before it expires, shared by every
//! request of a sink, and fetched again when the server refuses it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use connector_core::check::FailureKind;
use connector_core::{Error, Secret};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::client::{describe_reqwest_error, redact_url, truncate_body};

/// The `oauth2` properties: client credentials and where to exchange them.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuth2Config {
    /// The token endpoint (`oauth2.token_url`).
    pub token_url: Url,
    /// The client id (`oauth2.client_key`).
    pub client_id: String,
    /// The client secret (`oauth2.client_secret`).
    pub client_secret: Secret,
    /// Scopes to ask for (`oauth2.scopes`); none leaves `scope` out.
    pub scopes: Vec<String>,
}

impl OAuth2Config {
    /// Client credentials for `token_url`.
    pub fn new(
        token_url: Url,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        OAuth2Config {
            token_url,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: Vec::new(),
        }
    }

    /// Sets the scopes.
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl fmt::Debug for OAuth2Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Config")
            .field("token_url", &redact_url(&self.token_url))
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A bearer token and when to stop using it. (`Debug` shows no token:
/// the header value is marked sensitive.)
#[derive(Debug)]
pub(crate) struct Token {
    pub(crate) header: HeaderValue,
    refresh_at: Option<Instant>,
}

impl Token {
    fn is_fresh(&self) -> bool {
        self.refresh_at.is_none_or(|at| Instant::now() < at)
    }
}

/// Why no token could be had.
#[derive(Debug)]
pub(crate) struct TokenError {
    pub(crate) kind: FailureKind,
    pub(crate) retryable: bool,
    pub(crate) reason: String,
}

impl TokenError {
    pub(crate) fn into_error(self, component: &str, token_url: &str) -> Error {
        let operation = format!("fetch an OAuth2 token from {token_url}");
        if self.retryable {
            Error::transient(component.to_owned(), operation, self.reason)
        } else {
            Error::permanent(component.to_owned(), operation, self.reason)
        }
    }
}

/// How the client authenticates at the token endpoint. Servers differ, so
/// the first fetch tries HTTP Basic (the RFC's recommendation) and falls
/// back to form parameters, then sticks with whichever worked.
const STYLE_UNKNOWN: u8 = 0;
const STYLE_HEADER: u8 = 1;
const STYLE_PARAMS: u8 = 2;

/// Fetches and caches tokens; one fetch at a time, shared by all requests.
pub(crate) struct TokenSource {
    config: OAuth2Config,
    token_url_display: String,
    http: reqwest::Client,
    timeout: Duration,
    cached: Mutex<Option<Arc<Token>>>,
    style: AtomicU8,
    fetches: AtomicU64,
}

impl TokenSource {
    pub(crate) fn new(config: OAuth2Config, http: reqwest::Client, timeout: Duration) -> Self {
        TokenSource {
            token_url_display: redact_url(&config.token_url),
            config,
            http,
            timeout,
            cached: Mutex::new(None),
            style: AtomicU8::new(STYLE_UNKNOWN),
            fetches: AtomicU64::new(0),
        }
    }

    /// The token URL as messages show it.
    pub(crate) fn token_url(&self) -> &str {
        &self.token_url_display
    }

    /// Tokens fetched so far.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// A fresh token: the cached one, or a new one from the endpoint.
    pub(crate) async fn token(&self) -> Result<Arc<Token>, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.is_fresh()) {
            return Ok(token.clone());
        }
        let token = Arc::new(self.fetch().await?);
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Forgets `token` after the server refused it, unless another request
    /// already replaced it.
    pub(crate) async fn invalidate(&self, token: &Arc<Token>) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, token)) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Token, TokenError> {
        let style = self.style.load(Ordering::Relaxed);
        let first = if style == STYLE_PARAMS {
            STYLE_PARAMS
        } else {
            STYLE_HEADER
        };
        match self.fetch_with(first).await {
            Err(e) if style == STYLE_UNKNOWN && e.kind == FailureKind::AuthRefused => {
                let second = self.fetch_with(STYLE_PARAMS).await;
                if second.is_ok() {
                    self.style.store(STYLE_PARAMS, Ordering::Relaxed);
                }
                second
            }
            Ok(token) => {
                self.style.store(first, Ordering::Relaxed);
                Ok(token)
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch_with(&self, style: u8) -> Result<Token, TokenError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let body = {
            // The serializer is not Send: keep it out of the await below.
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if !self.config.scopes.is_empty() {
                form.append_pair("scope", &self.config.scopes.join(" "));
            }
            if style == STYLE_PARAMS {
                form.append_pair("client_id", &self.config.client_id);
                form.append_pair("client_secret", self.config.client_secret.expose());
            }
            form.finish()
        };
        let mut request = self
            .http
            .post(self.config.token_url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        if style == STYLE_HEADER {
            // RFC 6749 §2.3.1: both parts are form-encoded before Base64.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = format!(
                "{}:{}",
                encode(&self.config.client_id),
                encode(self.config.client_secret.expose())
            );
            let mut value = HeaderValue::try_from(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            ))
            .map_err(|_| TokenError {
                kind: FailureKind::Invalid,
                retryable: false,
                reason: "the client credentials cannot be sent in a header".into(),
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.body(body).send().await.map_err(|e| {
            let (kind, retryable) = if e.is_timeout() {
                (FailureKind::Timeout, true)
            } else if e.is_connect() {
                (FailureKind::Unreachable, true)
            } else {
                (FailureKind::Unreachable, !e.is_builder())
            };
            TokenError {
                kind,
                retryable,
                reason: describe_reqwest_error(&e),
            }
        })?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.bytes().await.map_err(|e| TokenError {
            kind: FailureKind::Unreachable,
            retryable: true,
            reason: describe_reqwest_error(&e),
        })?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        parse_token(&body, &content_type)
    }
}

/// Classifies a non-2xx answer of the token endpoint.
fn refusal(status: StatusCode, body: &[u8]) -> TokenError {
    // RFC 6749 §5.2: `{"error": "invalid_client", "error_description": ...}`.
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            let error = json.get("error")?.as_str()?.to_owned();
            Some(
                match json.get("error_description").and_then(|d| d.as_str()) {
                    Some(d) => format!("{error} ({d})"),
                    None => error,
                },
            )
        })
        .unwrap_or_else(|| truncate_body(body));
    let (kind, retryable) = match status.as_u16() {
        400 | 401 | 403 => (FailureKind::AuthRefused, false),
        404 | 410 => (FailureKind::NotFound, false),
        408 | 429 | 500..=599 => (FailureKind::Unreachable, true),
        _ => (FailureKind::Invalid, false),
    };
    let reason = if detail.is_empty() {
        format!("the token endpoint answered {status}")
    } else {
        format!("the token endpoint answered {status}: {detail}")
    };
    TokenError {
        kind,
        retryable,
        reason,
    }
}

fn parse_token(body: &[u8], content_type: &str) -> Result<Token, TokenError> {
    let invalid = |reason: String| TokenError {
        kind: FailureKind::Invalid,
        retryable: false,
        reason,
    };
    // Most servers answer JSON; a few (GitHub) answer a form.
    let looks_like_json = body.trim_ascii_start().starts_with(b"{");
    let (access_token, expires_in) = if !looks_like_json
        && (content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.starts_with("text/plain"))
    {
        let mut token = None;
        let mut expires = None;
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "access_token" => token = Some(v.into_owned()),
                "expires_in" => expires = v.parse::<f64>().ok(),
                _ => {}
            }
        }
        (token, expires)
    } else {
        let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            invalid(format!(
                "the token endpoint answered something that is not JSON ({e})"
            ))
        })?;
        let expires = match json.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.parse::<f64>().ok(),
            _ => None,
        };
        (
            json.get("access_token")
                .and_then(|t| t.as_str())
                .map(str::to_owned),
            expires,
        )
    };
    let access_token = access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("the token endpoint's answer has no `access_token`".into()))?;
    let mut header = HeaderValue::try_from(format!("Bearer {access_token}"))
        .map_err(|_| invalid("the access token holds characters not allowed in a header".into()))?;
    header.set_sensitive(true);
    let refresh_at = expires_in
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|secs| {
            let lifetime = Duration::from_secs_f64(secs.min(1e9));
            // Renew a little early so a token does not expire in flight:
            // 10s, or a tenth of a short lifetime.
            let margin = Duration::from_secs(10).min(lifetime / 10);
            Instant::now() + (lifetime - margin)
        });
    Ok(Token { header, refresh_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_form_answers() {
        let t = parse_token(
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
            "application/json",
        )
        .unwrap();
        assert_eq!(t.header.to_str().unwrap(), "Bearer abc");
        assert!(t.header.is_sensitive());
        assert!(t.is_fresh());
        let t = parse_token(b"access_token=xyz&scope=a&token_type=bearer", "text/plain").unwrap();
        assert_eq!(t.header.to_str().unwrap(), "Bearer xyz");
        assert!(
            t.refresh_at.is_none(),
            "no expires_in: cached until refused"
        );
        let t = parse_token(br#"{"access_token":"q","expires_in":"60"}"#, "").unwrap();
        assert!(t.refresh_at.is_some());
        let t = parse_token(br#" {"access_token":"q","expires_in":60}"#, "text/plain").unwrap();
        assert!(t.refresh_at.is_some());
        let err = parse_token(br#"{"token_type":"Bearer"}"#, "application/json").unwrap_err();
        assert!(err.reason.contains("no `access_token`"), "{}", err.reason);
        let err = parse_token(b"<html>", "text/html").unwrap_err();
        assert!(err.reason.contains("not JSON"), "{}", err.reason);
    }

    #[test]
    fn refusals_are_classified() {
        let e = refusal(
            StatusCode::UNAUTHORIZED,
            br#"{"error":"invalid_client","error_description":"bad secret"}"#,
        );
        assert_eq!(e.kind, FailureKind::AuthRefused);
        assert!(!e.retryable);
        assert_eq!(
            e.reason,
            "the token endpoint answered 401 Unauthorized: invalid_client (bad secret)"
        );
        let e = refusal(StatusCode::SERVICE_UNAVAILABLE, b"down");
        assert!(e.retryable);
        assert_eq!(
            e.reason,
            "the token endpoint answered 503 Service Unavailable: down"
        );
        assert_eq!(
            refusal(StatusCode::NOT_FOUND, b"").kind,
            FailureKind::NotFound
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = OAuth2Config::new(
            Url::parse("https://user:pw@auth.example.com/token").unwrap(),
            "id",
            "s3cret",
        );
        let text = format!("{c:?}");
        assert!(!text.contains("s3cret") && !text.contains("pw"), "{text}");
    }
}
