//! `auth_type` and `auth_params`: no auth, a token, or OAuth2 client
//! credentials, and the provider that hands the `pulsar` client its auth data.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use connector_core::Secret;
use connector_core::check::FailureKind;
use pulsar::error::AuthenticationError;
use url::Url;

use crate::oauth2::{OAuth2Client, TokenError};

/// How the connectors authenticate to the broker.
#[derive(Clone, PartialEq, Default)]
pub enum Auth {
    /// No authentication (`auth_type` empty).
    #[default]
    None,
    /// A token (JWT), sent as auth method `token` (`auth_type` `token`).
    Token(TokenSource),
    /// OAuth2 client credentials: a token fetched from the issuer's token
    /// endpoint and sent as auth method `token` (`auth_type` `oauth2`).
    OAuth2(OAuth2Config),
}

/// Where the token comes from.
#[derive(Clone, PartialEq)]
pub enum TokenSource {
    /// The token itself.
    Value(Secret),
    /// A file holding the token, read at every connection (so a rotated
    /// token is picked up): `auth_params` `{"token": "file:///path"}`.
    File(PathBuf),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Value(secret) => write!(f, "Value({secret:?})"),
            TokenSource::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(source) => f.debug_tuple("Token").field(source).finish(),
            Auth::OAuth2(config) => f.debug_tuple("OAuth2").field(config).finish(),
        }
    }
}

/// The client credentials of `auth_type` `oauth2`.
#[derive(Clone, PartialEq)]
pub struct OAuth2Config {
    /// The issuer; its token endpoint is found at
    /// `{issuer_url}/.well-known/openid-configuration`.
    pub issuer_url: Url,
    /// Where the client id and secret come from.
    pub credentials: OAuth2Credentials,
    /// `audience` sent with the token request.
    pub audience: Option<String>,
    /// `scope` sent with the token request.
    pub scope: Option<String>,
}

/// OAuth2 client credentials.
#[derive(Clone, PartialEq)]
pub enum OAuth2Credentials {
    /// `client_id` and `client_secret` given directly.
    Secret {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
    },
    /// `private_key`: a credentials file (`{"client_id": .., "client_secret": ..}`,
    /// the key file format of Pulsar's OAuth2 plugin), as a path, a
    /// `file://` URL or a `data:` URL; read at every token request.
    KeyFile(String),
}

impl fmt::Debug for OAuth2Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = match &self.credentials {
            OAuth2Credentials::Secret { client_id, .. } => format!("client_id {client_id}"),
            OAuth2Credentials::KeyFile(key) if key.starts_with("data:") => "key data".to_owned(),
            OAuth2Credentials::KeyFile(key) => format!("key file {key}"),
        };
        f.debug_struct("OAuth2Config")
            .field("issuer_url", &self.issuer_url.as_str())
            .field("credentials", &credentials)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .finish()
    }
}

/// The `auth_params` keys of `oauth2`, each with its camelCase spelling.
const OAUTH2_KEYS: &[(&str, Option<&str>)] = &[
    ("issuer_url", Some("issuerUrl")),
    ("client_id", Some("clientId")),
    ("client_secret", Some("clientSecret")),
    ("private_key", Some("privateKey")),
    ("audience", None),
    ("scope", None),
];

impl Auth {
    /// A fixed token.
    pub fn token(token: impl Into<Secret>) -> Auth {
        Auth::Token(TokenSource::Value(token.into()))
    }

    /// The `auth_type` name: `""`, `token` or `oauth2`.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::None => "",
            Auth::Token(_) => "token",
            Auth::OAuth2(_) => "oauth2",
        }
    }

    /// Reads `auth_type` and the `auth_params` map; the error (about
    /// `auth_params`) names keys, never values.
    pub fn from_params(auth_type: &str, params: &BTreeMap<String, String>) -> Result<Auth, String> {
        match auth_type {
            "" => {
                if params.is_empty() {
                    Ok(Auth::None)
                } else {
                    Err(format!(
                        "given ({}) but `auth_type` is empty (no authentication); set `auth_type` to `token` or `oauth2`",
                        keys(params)
                    ))
                }
            }
            "token" => {
                let unknown: Vec<&str> = params
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "token")
                    .collect();
                if !unknown.is_empty() {
                    return Err(format!(
                        "unknown key(s) {} for `auth_type` `token` (valid: `token`)",
                        quoted(&unknown)
                    ));
                }
                match params.get("token").map(|t| t.trim()) {
                    None | Some("") => Err(
                        "`token` is required for `auth_type` `token`: {\"token\": \"<JWT>\"} or {\"token\": \"file:///path\"}"
                            .into(),
                    ),
                    Some(token) => Ok(Auth::Token(match token.strip_prefix("file:") {
                        Some(path) => TokenSource::File(PathBuf::from(
                            path.strip_prefix("//").unwrap_or(path),
                        )),
                        None => TokenSource::Value(Secret::new(
                            token.strip_prefix("token:").unwrap_or(token),
                        )),
                    })),
                }
            }
            "oauth2" => oauth2_from_params(params).map(Auth::OAuth2),
            other => Err(format!(
                "unsupported `auth_type` `{other}` (expected empty, `token` or `oauth2`)"
            )),
        }
    }

    /// The provider the `pulsar` client asks for auth data, or `None`.
    pub fn provider(&self) -> Option<AuthProvider> {
        match self {
            Auth::None => None,
            Auth::Token(source) => Some(AuthProvider::Token(source.clone())),
            Auth::OAuth2(config) => Some(AuthProvider::OAuth2(Box::new(OAuth2Client::new(
                config.clone(),
            )))),
        }
    }
}

fn oauth2_from_params(params: &BTreeMap<String, String>) -> Result<OAuth2Config, String> {
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    for key in params.keys() {
        if !OAUTH2_KEYS
            .iter()
            .any(|(snake, camel)| key == snake || Some(key.as_str()) == *camel)
        {
            unknown.push(key.as_str());
        }
    }
    if !unknown.is_empty() {
        let valid: Vec<String> = OAUTH2_KEYS
            .iter()
            .map(|(snake, camel)| match camel {
                Some(camel) => format!("`{snake}`/`{camel}`"),
                None => format!("`{snake}`"),
            })
            .collect();
        problems.push(format!(
            "unknown key(s) {} for `auth_type` `oauth2` (valid: {})",
            quoted(&unknown),
            valid.join(", ")
        ));
    }
    let mut get = |snake: &str, camel: Option<&str>| -> Option<String> {
        let a = params.get(snake).filter(|v| !v.trim().is_empty());
        let b = camel
            .and_then(|c| params.get(c))
            .filter(|v| !v.trim().is_empty());
        match (a, b) {
            (Some(_), Some(_)) => {
                problems.push(format!(
                    "`{snake}` and `{}` are the same key; give one",
                    camel.unwrap_or_default()
                ));
                None
            }
            (Some(v), None) | (None, Some(v)) => Some(v.trim().to_owned()),
            (None, None) => None,
        }
    };
    let issuer = get("issuer_url", Some("issuerUrl"));
    let client_id = get("client_id", Some("clientId"));
    let client_secret = get("client_secret", Some("clientSecret"));
    let private_key = get("private_key", Some("privateKey"));
    let audience = get("audience", None);
    let scope = get("scope", None);

    let issuer_url = match issuer {
        None => {
            problems.push("`issuer_url` is required for `auth_type` `oauth2`".into());
            None
        }
        Some(text) => match Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                problems.push(format!("`issuer_url` must be an http(s) URL, got `{text}`"));
                None
            }
        },
    };
    let credentials = match (private_key, client_id, client_secret) {
        (Some(key), None, None) => Some(OAuth2Credentials::KeyFile(key)),
        (None, Some(client_id), Some(secret)) => Some(OAuth2Credentials::Secret {
            client_id,
            client_secret: Secret::new(secret),
        }),
        (Some(_), _, _) => {
            problems.push(
                "give either `private_key` (a credentials file) or `client_id` and `client_secret`, not both"
                    .into(),
            );
            None
        }
        (None, Some(_), None) => {
            problems.push("`client_secret` is required with `client_id`".into());
            None
        }
        (None, None, Some(_)) => {
            problems.push("`client_id` is required with `client_secret`".into());
            None
        }
        (None, None, None) => {
            problems.push(
                "`auth_type` `oauth2` needs `client_id` and `client_secret`, or `private_key` (a credentials file)"
                    .into(),
            );
            None
        }
    };
    match (issuer_url, credentials) {
        (Some(issuer_url), Some(credentials)) if problems.is_empty() => Ok(OAuth2Config {
            issuer_url,
            credentials,
            audience,
            scope,
        }),
        _ => Err(problems.join("; ")),
    }
}

fn keys(params: &BTreeMap<String, String>) -> String {
    let names: Vec<&str> = params.keys().map(String::as_str).collect();
    quoted(&names)
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why no auth data could be had, without secrets.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    /// The class of failure, for connection checks.
    pub kind: FailureKind,
    /// Whether trying again later may help.
    pub retryable: bool,
    /// What went wrong.
    pub reason: String,
}

impl From<TokenError> for AuthFailure {
    fn from(e: TokenError) -> Self {
        AuthFailure {
            kind: e.kind,
            retryable: e.retryable,
            reason: e.reason,
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Hands the `pulsar` client the auth method and data for each connection.
pub enum AuthProvider {
    /// A token from the config or a file.
    Token(TokenSource),
    /// A token from an OAuth2 token endpoint, cached until shortly before
    /// it expires.
    OAuth2(Box<OAuth2Client>),
}

impl fmt::Debug for AuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthProvider::Token(source) => f.debug_tuple("Token").field(source).finish(),
            AuthProvider::OAuth2(client) => f.debug_tuple("OAuth2").field(client).finish(),
        }
    }
}

impl AuthProvider {
    /// The auth data to send now (the token's bytes).
    pub async fn data(&mut self) -> Result<Vec<u8>, AuthFailure> {
        match self {
            AuthProvider::Token(TokenSource::Value(token)) => {
                Ok(token.expose().as_bytes().to_vec())
            }
            AuthProvider::Token(TokenSource::File(path)) => {
                match tokio::fs::read_to_string(&*path).await {
                    Ok(text) if !text.trim().is_empty() => Ok(text.trim().as_bytes().to_vec()),
                    Ok(_) => Err(AuthFailure {
                        kind: FailureKind::Invalid,
                        retryable: false,
                        reason: format!("token file {} is empty", path.display()),
                    }),
                    Err(e) => Err(AuthFailure {
                        kind: FailureKind::Invalid,
                        retryable: false,
                        reason: format!("cannot read token file {}: {e}", path.display()),
                    }),
                }
            }
            AuthProvider::OAuth2(client) => client
                .token()
                .await
                .map(|t| t.expose().as_bytes().to_vec())
                .map_err(AuthFailure::from),
        }
    }
}

#[async_trait]
impl pulsar::authentication::Authentication for AuthProvider {
    fn auth_method_name(&self) -> String {
        // OAuth2 access tokens travel as tokens, as in every Pulsar client.
        "token".to_owned()
    }

    async fn initialize(&mut self) -> Result<(), AuthenticationError> {
        Ok(())
    }

    async fn auth_data(&mut self) -> Result<Vec<u8>, AuthenticationError> {
        self.data().await.map_err(|e| {
            if e.retryable {
                AuthenticationError::Retriable(e.reason)
            } else {
                AuthenticationError::Custom(e.reason)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_auth() {
        assert_eq!(Auth::from_params("", &params(&[])), Ok(Auth::None));
        let err = Auth::from_params("", &params(&[("token", "secret-value")])).unwrap_err();
        assert!(err.contains("`auth_type` is empty"), "{err}");
        assert!(!err.contains("secret-value"));
    }

    #[test]
    fn token_forms() {
        assert_eq!(
            Auth::from_params("token", &params(&[("token", "abc")])),
            Ok(Auth::token("abc"))
        );
        assert_eq!(
            Auth::from_params("token", &params(&[("token", "file:///run/token")])),
            Ok(Auth::Token(TokenSource::File("/run/token".into())))
        );
        let err = Auth::from_params("token", &params(&[])).unwrap_err();
        assert!(err.contains("`token` is required"), "{err}");
        let err =
            Auth::from_params("token", &params(&[("token", "x"), ("tokn", "y")])).unwrap_err();
        assert!(err.contains("unknown key(s) `tokn`"), "{err}");
    }

    #[test]
    fn oauth2_both_spellings() {
        let snake = Auth::from_params(
            "oauth2",
            &params(&[
                ("issuer_url", "https://auth.example.com/"),
                ("client_id", "app"),
                ("client_secret", "s3cret"),
                ("audience", "urn:pulsar"),
                ("scope", "produce"),
            ]),
        )
        .unwrap();
        let camel = Auth::from_params(
            "oauth2",
            &params(&[
                ("issuerUrl", "https://auth.example.com/"),
                ("clientId", "app"),
                ("clientSecret", "s3cret"),
                ("audience", "urn:pulsar"),
                ("scope", "produce"),
            ]),
        )
        .unwrap();
        assert_eq!(snake, camel);
        let Auth::OAuth2(config) = &snake else {
            panic!("expected oauth2")
        };
        assert_eq!(config.audience.as_deref(), Some("urn:pulsar"));
        assert!(!format!("{snake:?}").contains("s3cret"));

        let key = Auth::from_params(
            "oauth2",
            &params(&[
                ("issuerUrl", "https://auth.example.com"),
                ("privateKey", "file:///keys/app.json"),
            ]),
        )
        .unwrap();
        let key_snake = Auth::from_params(
            "oauth2",
            &params(&[
                ("issuer_url", "https://auth.example.com"),
                ("private_key", "file:///keys/app.json"),
            ]),
        )
        .unwrap();
        assert_eq!(key, key_snake);
    }

    #[test]
    fn oauth2_problems_are_all_named() {
        let err = Auth::from_params(
            "oauth2",
            &params(&[
                ("issuer_url", "ftp://x"),
                ("client_id", "a"),
                ("colour", "b"),
            ]),
        )
        .unwrap_err();
        assert!(err.contains("unknown key(s) `colour`"), "{err}");
        assert!(err.contains("`issuer_url` must be an http(s) URL"), "{err}");
        assert!(err.contains("`client_secret` is required"), "{err}");

        let err = Auth::from_params(
            "oauth2",
            &params(&[
                ("issuer_url", "https://x"),
                ("issuerUrl", "https://y"),
                ("private_key", "k"),
                ("client_id", "a"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.contains("`issuer_url` and `issuerUrl` are the same key"),
            "{err}"
        );
        assert!(err.contains("not both"), "{err}");
    }
}
