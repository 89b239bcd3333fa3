//! OAuth2 client credentials (RFC 6749 §4.4) the way Pulsar clients do it:
//! the token endpoint is found at `{issuer_url}/.well-known/openid-configuration`,
//! the client id and secret come from the config or a credentials file, and
//! `audience` and `scope` go with the request. The token is cached until
//! shortly before it expires.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use connector_core::Secret;
use connector_core::check::FailureKind;
use serde_json::Value as Json;
use tokio::time::Instant;
use url::Url;

use crate::auth::{OAuth2Config, OAuth2Credentials};

/// Why no token could be had (no secrets in it).
#[derive(Debug, Clone)]
pub struct TokenError {
    /// The class of failure.
    pub kind: FailureKind,
    /// Whether trying again later may help.
    pub retryable: bool,
    /// What went wrong.
    pub reason: String,
}

impl TokenError {
    fn new(kind: FailureKind, retryable: bool, reason: impl Into<String>) -> Self {
        TokenError {
            kind,
            retryable,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

struct CachedToken {
    value: Secret,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

/// Fetches and caches access tokens for one [`OAuth2Config`].
pub struct OAuth2Client {
    config: OAuth2Config,
    http: Option<reqwest::Client>,
    token_endpoint: Option<Url>,
    token: Option<CachedToken>,
}

impl fmt::Debug for OAuth2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Client")
            .field("config", &self.config)
            .field(
                "token_endpoint",
                &self.token_endpoint.as_ref().map(Url::as_str),
            )
            .field("has_token", &self.token.is_some())
            .finish()
    }
}

impl OAuth2Client {
    /// A client for `config`; nothing is fetched until asked.
    pub fn new(config: OAuth2Config) -> Self {
        OAuth2Client {
            config,
            http: None,
            token_endpoint: None,
            token: None,
        }
    }

    fn http(&mut self) -> Result<reqwest::Client, TokenError> {
        if let Some(http) = &self.http {
            return Ok(http.clone());
        }
        let tls = crate::tls::client_config(None)
            .map_err(|e| TokenError::new(FailureKind::Tls, false, e))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| {
                TokenError::new(
                    FailureKind::Invalid,
                    false,
                    format!("cannot build HTTP client: {e}"),
                )
            })?;
        self.http = Some(http.clone());
        Ok(http)
    }

    /// A valid access token: the cached one, or a new one when it is about
    /// to expire. When refreshing fails but the old token has not expired,
    /// the old token is used (and the failure logged).
    pub async fn token(&mut self) -> Result<Secret, TokenError> {
        let now = Instant::now();
        if let Some(token) = &self.token
            && token.refresh_at.is_none_or(|at| now < at)
        {
            return Ok(token.value.clone());
        }
        match self.fetch().await {
            Ok(token) => Ok(token),
            Err(e) => match &self.token {
                Some(old) if old.expires_at.is_none_or(|at| now < at) => {
                    tracing::warn!(error = %e, "refreshing the OAuth2 token failed; using the current one until it expires");
                    Ok(old.value.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// The token endpoint, from the issuer's OpenID configuration (cached).
    pub async fn token_endpoint(&mut self) -> Result<Url, TokenError> {
        if let Some(url) = &self.token_endpoint {
            return Ok(url.clone());
        }
        let http = self.http()?;
        let issuer = self.config.issuer_url.as_str().trim_end_matches('/');
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let response = http
            .get(&discovery)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| request_error(&discovery, &e))?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(TokenError::new(
                if status.as_u16() == 404 {
                    FailureKind::NotFound
                } else {
                    FailureKind::Invalid
                },
                status.is_server_error(),
                format!("GET {discovery}: HTTP {status}: {}", snippet(&body)),
            ));
        }
        let endpoint = serde_json::from_slice::<Json>(&body)
            .ok()
            .and_then(|j| j.get("token_endpoint")?.as_str().map(str::to_owned))
            .ok_or_else(|| {
                TokenError::new(
                    FailureKind::Invalid,
                    false,
                    format!("GET {discovery}: the answer has no `token_endpoint`"),
                )
            })?;
        let url = Url::parse(&endpoint).map_err(|e| {
            TokenError::new(
                FailureKind::Invalid,
                false,
                format!("GET {discovery}: `token_endpoint` `{endpoint}` is not a URL: {e}"),
            )
        })?;
        self.token_endpoint = Some(url.clone());
        Ok(url)
    }

    /// Fetches a new token from the token endpoint and caches it.
    pub async fn fetch(&mut self) -> Result<Secret, TokenError> {
        let endpoint = self.token_endpoint().await?;
        let (client_id, client_secret) = self.credentials().await?;
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &client_id)
                .append_pair("client_secret", client_secret.expose());
            if let Some(audience) = &self.config.audience {
                form.append_pair("audience", audience);
            }
            if let Some(scope) = &self.config.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let http = self.http()?;
        let sent_at = Instant::now();
        let response = http
            .post(endpoint.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| request_error(endpoint.as_str(), &e))?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let json: Option<Json> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            // RFC 6749 §5.2: {"error": "invalid_client", "error_description": ".."}
            let detail = json
                .as_ref()
                .and_then(|j| {
                    let error = j.get("error")?.as_str()?;
                    Some(match j.get("error_description").and_then(Json::as_str) {
                        Some(d) => format!("{error}: {d}"),
                        None => error.to_owned(),
                    })
                })
                .unwrap_or_else(|| snippet(&body));
            let (kind, retryable) = match status.as_u16() {
                400 | 401 | 403 => (FailureKind::AuthRefused, false),
                404 => (FailureKind::NotFound, false),
                429 => (FailureKind::Unreachable, true),
                s if s >= 500 => (FailureKind::Unreachable, true),
                _ => (FailureKind::Invalid, false),
            };
            return Err(TokenError::new(
                kind,
                retryable,
                format!(
                    "token request to {endpoint} for client `{client_id}`: HTTP {status}: {detail}"
                ),
            ));
        }
        let json = json.unwrap_or(Json::Null);
        let token = json
            .get("access_token")
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                TokenError::new(
                    FailureKind::Invalid,
                    false,
                    format!("token response from {endpoint} has no `access_token`"),
                )
            })?;
        let lifetime = json
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map(Duration::from_secs);
        let token = Secret::new(token);
        self.token = Some(CachedToken {
            value: token.clone(),
            // Refresh when 90% of the lifetime has passed, as Pulsar's clients do.
            refresh_at: lifetime.map(|l| sent_at + l.mul_f64(0.9)),
            expires_at: lifetime.map(|l| sent_at + l),
        });
        tracing::debug!(client_id = %client_id, expires_in = ?lifetime, "fetched an OAuth2 token");
        Ok(token)
    }

    /// The client id and secret, from the config or the credentials file.
    async fn credentials(&self) -> Result<(String, Secret), TokenError> {
        let key = match &self.config.credentials {
            OAuth2Credentials::Secret {
                client_id,
                client_secret,
            } => return Ok((client_id.clone(), client_secret.clone())),
            OAuth2Credentials::KeyFile(key) => key,
        };
        let (text, shown) = read_key(key).await?;
        let bad = |what: &str| {
            TokenError::new(
                FailureKind::Invalid,
                false,
                format!("credentials {shown}: {what}"),
            )
        };
        let json: Json = serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON: {e}")))?;
        let field = |name: &str, camel: &str| {
            json.get(name)
                .or_else(|| json.get(camel))
                .and_then(Json::as_str)
                .map(str::to_owned)
        };
        let client_id = field("client_id", "clientId").ok_or_else(|| bad("no `client_id`"))?;
        let secret =
            field("client_secret", "clientSecret").ok_or_else(|| bad("no `client_secret`"))?;
        Ok((client_id, Secret::new(secret)))
    }
}

/// Reads a `private_key`: a path, a `file://` URL or a `data:` URL. Returns
/// the text and how to name the key in errors (never its content).
async fn read_key(key: &str) -> Result<(String, String), TokenError> {
    if let Some(data) = key.strip_prefix("data:") {
        let shown = "from the `data:` URL".to_owned();
        let (meta, body) = data.split_once(',').ok_or_else(|| {
            TokenError::new(
                FailureKind::Invalid,
                false,
                format!("credentials {shown}: no `,` before the data"),
            )
        })?;
        let bytes = if meta.ends_with(";base64") {
            base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| {
                    TokenError::new(
                        FailureKind::Invalid,
                        false,
                        format!("credentials {shown}: bad base64: {e}"),
                    )
                })?
        } else {
            percent_encoding::percent_decode_str(body).collect()
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            TokenError::new(
                FailureKind::Invalid,
                false,
                format!("credentials {shown}: not UTF-8"),
            )
        })?;
        return Ok((text, shown));
    }
    let path = match key.strip_prefix("file://") {
        Some(path) => percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned(),
        None => key.strip_prefix("file:").unwrap_or(key).to_owned(),
    };
    let shown = format!("file {path}");
    tokio::fs::read_to_string(&path)
        .await
        .map(|text| (text, shown.clone()))
        .map_err(|e| {
            TokenError::new(
                FailureKind::Invalid,
                false,
                format!("cannot read credentials {shown}: {e}"),
            )
        })
}

fn request_error(url: &str, e: &reqwest::Error) -> TokenError {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let (kind, retryable) = if e.is_timeout() {
        (FailureKind::Timeout, true)
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("TLS") {
        (FailureKind::Tls, false)
    } else {
        // Connection refused, reset, DNS: the issuer may come back.
        (FailureKind::Unreachable, true)
    };
    TokenError::new(kind, retryable, format!("{url}: {chain}"))
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 200 {
        format!("{}...", text.chars().take(200).collect::<String>())
    } else if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text.to_owned()
    }
}
