//! Talking to ClickHouse over HTTP: endpoints with failover, TLS, requests,
//! and reading ClickHouse's errors into something a retry policy can use.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use connector_core::error::find_cause;
use connector_core::http;
use connector_core::{Error, Result};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::config::{ClickHouseConfig, Endpoint, SPEC};

/// Longest error text kept from a server answer.
const MAX_MESSAGE: usize = 2000;

/// What went wrong with one request.
#[derive(Debug, Clone)]
pub enum RequestError {
    /// Nothing reached the server: connection refused, name not resolved,
    /// TLS handshake failed. Safe to retry anywhere.
    Connect {
        /// The endpoint tried.
        endpoint: String,
        /// Whether TLS (rather than TCP/DNS) failed.
        tls: bool,
        /// The underlying reason.
        reason: String,
    },
    /// The request may have reached the server but no answer came
    /// (connection reset, timeout): whether it ran is unknown.
    NoAnswer {
        /// The endpoint tried.
        endpoint: String,
        /// Whether the request timed out.
        timeout: bool,
        /// The underlying reason.
        reason: String,
    },
    /// Something answered, but not in HTTP (e.g. ClickHouse's native port).
    Protocol {
        /// The endpoint tried.
        endpoint: String,
        /// The underlying reason.
        reason: String,
    },
    /// The server answered with an error.
    Server(ServerError),
}

impl RequestError {
    /// How a retry policy should treat the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            RequestError::Connect { .. } => ErrorClass::Transient,
            RequestError::NoAnswer { .. } => ErrorClass::Ambiguous,
            RequestError::Protocol { .. } => ErrorClass::Permanent,
            RequestError::Server(e) => e.class(),
        }
    }

    /// The error as the library's error type, for `operation`.
    pub fn to_error(&self, operation: &str) -> Error {
        let component = SPEC.component();
        let message = self.to_string();
        match self.class() {
            ErrorClass::Transient | ErrorClass::Ambiguous | ErrorClass::AlreadyRunning => {
                Error::transient(component, operation.to_owned(), message)
            }
            ErrorClass::BadData => Error::rejected(component, operation.to_owned(), message),
            _ => Error::permanent(component, operation.to_owned(), message),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Connect {
                endpoint,
                tls: true,
                reason,
            } => write!(f, "TLS handshake with {endpoint} failed: {reason}"),
            RequestError::Connect {
                endpoint, reason, ..
            } => write!(f, "cannot connect to {endpoint}: {reason}"),
            RequestError::NoAnswer {
                endpoint,
                timeout: true,
                reason,
            } => write!(f, "no answer from {endpoint} in time: {reason}"),
            RequestError::NoAnswer {
                endpoint, reason, ..
            } => write!(f, "connection to {endpoint} lost: {reason}"),
            RequestError::Protocol { endpoint, reason } => write!(
                f,
                "{endpoint} does not answer in HTTP ({reason}); is it ClickHouse's native TCP port (9000)? This sink needs the HTTP port (8123, or 8443 for https)"
            ),
            RequestError::Server(e) => e.fmt(f),
        }
    }
}

/// What a retry policy makes of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// May work later: retry with backoff (on the next host if a host failed).
    Transient,
    /// The request may or may not have been executed.
    Ambiguous,
    /// A query with the same id is still running on the server.
    AlreadyRunning,
    /// The data was refused; no retry can help.
    BadData,
    /// Credentials refused.
    Auth,
    /// Authenticated, but not allowed.
    Permission,
    /// Unknown table or database.
    NotFound,
    /// Anything else no retry will fix (syntax, unknown setting, ...).
    Permanent,
}

/// An error answer from ClickHouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// HTTP status.
    pub status: u16,
    /// ClickHouse's error code, when it gave one.
    pub code: Option<u32>,
    /// ClickHouse's message, trimmed of its C++ decorations.
    pub message: String,
}

impl ServerError {
    fn parse(status: u16, header_code: Option<u32>, body: &str) -> ServerError {
        let code = header_code.or_else(|| {
            let at = body.find("Code: ")? + "Code: ".len();
            let digits: String = body[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        });
        let mut message = body.trim().to_owned();
        if let Some(at) = message.find("Stack trace") {
            message.truncate(at);
        }
        // 18.x: "Code: 60, e.displayText() = DB::Exception: ..., e.what() = DB::Exception"
        message = message
            .replace(", e.displayText() = ", ". ")
            .replace(", e.what() = DB::Exception", "");
        let mut message = message.trim().trim_end_matches(',').trim().to_owned();
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        if message.is_empty() {
            message = format!("HTTP status {status} without a message");
        }
        ServerError {
            status,
            code,
            message,
        }
    }

    /// How a retry policy should treat this error.
    pub fn class(&self) -> ErrorClass {
        let Some(code) = self.code else {
            return if self.status >= 500 || self.status == 429 || self.status == 408 {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            };
        };
        match code {
            // UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, IP_ADDRESS_NOT_ALLOWED,
            // AUTHENTICATION_FAILED
            192..=195 | 516 => ErrorClass::Auth,
            // READONLY, DATABASE_ACCESS_DENIED, ACCESS_DENIED, NOT_ENOUGH_PRIVILEGES
            164 | 291 | 497 => ErrorClass::Permission,
            // UNKNOWN_TABLE, UNKNOWN_DATABASE
            60 | 81 => ErrorClass::NotFound,
            // QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING
            216 => ErrorClass::AlreadyRunning,
            // UNKNOWN_STATUS_OF_INSERT
            319 => ErrorClass::Ambiguous,
            // Data that does not parse, convert, fit or pass a constraint:
            // CANNOT_PARSE_TEXT, CANNOT_PARSE_QUOTED_STRING, CANNOT_PARSE_INPUT_ASSERTION_FAILED,
            // ATTEMPT_TO_READ_AFTER_EOF, CANNOT_READ_ALL_DATA, CANNOT_PARSE_DATE,
            // CANNOT_PARSE_DATETIME, ILLEGAL_TYPE_OF_ARGUMENT, ILLEGAL_COLUMN, TYPE_MISMATCH,
            // ARGUMENT_OUT_OF_BOUND, CANNOT_CONVERT_TYPE, CANNOT_PARSE_NUMBER, INCORRECT_DATA,
            // TOO_LARGE_STRING_SIZE, CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN,
            // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO, VIOLATED_CONSTRAINT,
            // DECIMAL_OVERFLOW, UNKNOWN_ELEMENT_OF_ENUM, CANNOT_PARSE_UUID, CANNOT_PARSE_IPV4/6
            6 | 26 | 27 | 32 | 33 | 38 | 41 | 43 | 44 | 53 | 69 | 70 | 72 | 117 | 131 | 349
            | 395 | 407 | 469 | 691 | 376 | 441 | 676 | 677 => ErrorClass::BadData,
            // TIMEOUT_EXCEEDED, TOO_SLOW, QUOTA_EXPIRED, TOO_MANY_SIMULTANEOUS_QUERIES,
            // NO_FREE_CONNECTION, SOCKET_TIMEOUT, NETWORK_ERROR, NO_ZOOKEEPER, ABORTED,
            // MEMORY_LIMIT_EXCEEDED, TABLE_IS_READ_ONLY, TOO_MANY_PARTS, TOO_FEW_LIVE_REPLICAS,
            // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE, QUERY_WAS_CANCELLED, SYSTEM_ERROR,
            // CANNOT_SCHEDULE_TASK, DEADLOCK_AVOIDED, KEEPER_EXCEPTION, ALL_CONNECTION_TRIES_FAILED
            159 | 160 | 201 | 202 | 203 | 209 | 210 | 225 | 236 | 241 | 242 | 252 | 279 | 285
            | 286 | 394 | 425 | 439 | 473 | 999 => ErrorClass::Transient,
            _ if self.status >= 500 && self.status != 501 => {
                // Old servers answer 500 to almost everything; only codes
                // known to be final are final. Unknown ones are retried.
                if is_known_final(code) {
                    ErrorClass::Permanent
                } else {
                    ErrorClass::Transient
                }
            }
            _ => ErrorClass::Permanent,
        }
    }
}

/// Codes that mean the request itself is wrong (retrying cannot help) even
/// when an old server reports them with status 500.
fn is_known_final(code: u32) -> bool {
    matches!(
        code,
        // UNKNOWN_IDENTIFIER, NO_SUCH_COLUMN_IN_TABLE, UNKNOWN_FUNCTION, UNKNOWN_TYPE,
        // BAD_ARGUMENTS, UNKNOWN_SETTING, SYNTAX_ERROR, TABLE_ALREADY_EXISTS,
        // NUMBER_OF_COLUMNS_DOESNT_MATCH, UNKNOWN_FORMAT, NOT_IMPLEMENTED,
        // UNKNOWN_STORAGE, ENGINE_REQUIRED, TABLE_IS_DROPPED, THERE_IS_NO_COLUMN,
        // INCORRECT_QUERY, SETTING_CONSTRAINT_VIOLATION, ILLEGAL_SYNTAX_FOR_DATA_TYPE
        8 | 10
            | 16
            | 20
            | 36
            | 46
            | 47
            | 48
            | 50
            | 56
            | 57
            | 62
            | 73
            | 80
            | 82
            | 115
            | 119
            | 218
            | 377
            | 452
            | 458
    )
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The HTTP client of one sink: endpoints tried in turn, credentials, TLS.
pub struct Client {
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    current: AtomicUsize,
    auth: HeaderValue,
    username: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`'s endpoints and credentials. Fails when the TLS
    /// settings cannot be used (unreadable CA file).
    pub fn new(config: &ClickHouseConfig) -> Result<Client> {
        let component = SPEC.component();
        if config.endpoints.is_empty() {
            return Err(Error::config(
                component,
                "hosts",
                "no endpoint to connect to",
            ));
        }
        let http = http::client_builder(&component, &config.tls)?
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // ClickHouse closes idle keep-alive connections after 3s by
            // default; reusing one it is closing loses the request.
            .pool_idle_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::permanent(component.clone(), "build HTTP client", e.to_string()))?;
        let credentials = format!("{}:{}", config.username, config.password.expose());
        let mut auth = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes())
        ))
        .map_err(|_| {
            Error::config(
                component,
                "username",
                "user name and password must be visible ASCII",
            )
        })?;
        auth.set_sensitive(true);
        Ok(Client {
            http,
            endpoints: config.endpoints.clone(),
            current: AtomicUsize::new(0),
            auth,
            username: config.username.clone(),
        })
    }

    /// The endpoints, in order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The user the client authenticates as.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Index of the endpoint to use now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.endpoints.len()
    }

    /// Moves on from endpoint `failed` to the next one (if nobody else did).
    pub fn fail_over(&self, failed: usize) {
        let next = (failed + 1) % self.endpoints.len();
        let _ = self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// `GET /ping`: whether ClickHouse answers at endpoint `index` (no
    /// credentials needed).
    pub async fn ping(&self, index: usize) -> std::result::Result<(), RequestError> {
        let endpoint = &self.endpoints[index];
        let url = format!("{}ping", endpoint.base_url());
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| transport_error(endpoint, &e))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| transport_error(endpoint, &e))?;
        if status == 200 && body.trim() == "Ok." {
            Ok(())
        } else {
            Err(RequestError::Protocol {
                endpoint: endpoint.to_string(),
                reason: format!(
                    "`/ping` answered status {status} `{}` instead of `Ok.`",
                    body.trim().chars().take(80).collect::<String>()
                ),
            })
        }
    }

    /// Runs `sql` (the request body) at endpoint `index`, with URL
    /// parameters `params` (settings, `database`, `query_id`), and returns
    /// the result text.
    pub async fn query(
        &self,
        index: usize,
        sql: &str,
        params: &[(&str, &str)],
    ) -> std::result::Result<String, RequestError> {
        let endpoint = &self.endpoints[index];
        let url = self.url(endpoint, params);
        let request = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .body(sql.to_owned());
        self.execute(endpoint, request).await
    }

    /// Sends `data` for the statement `sql` (e.g. `INSERT ... FORMAT RowBinary`)
    /// at endpoint `index`.
    pub async fn insert(
        &self,
        index: usize,
        sql: &str,
        params: &[(&str, &str)],
        data: Bytes,
    ) -> std::result::Result<(), RequestError> {
        let endpoint = &self.endpoints[index];
        let mut url = self.url(endpoint, params);
        url.query_pairs_mut().append_pair("query", sql);
        let request = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(data);
        self.execute(endpoint, request).await.map(drop)
    }

    fn url(&self, endpoint: &Endpoint, params: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(&endpoint.base_url()).unwrap_or_else(|_| {
            // Endpoints are validated when parsed; a host that still does not
            // make a URL surfaces as a connect error on this placeholder.
            Url::parse("http://invalid.invalid/").expect("static URL")
        });
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params.iter().copied());
        }
        url
    }

    async fn execute(
        &self,
        endpoint: &Endpoint,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<String, RequestError> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(endpoint, &e))?;
        let status = response.status().as_u16();
        let header_code = response
            .headers()
            .get("X-ClickHouse-Exception-Code")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response
            .text()
            .await
            .map_err(|e| transport_error(endpoint, &e))?;
        if status == 200 && header_code.is_none() {
            return Ok(body);
        }
        Err(RequestError::Server(ServerError::parse(
            status,
            header_code,
            &body,
        )))
    }
}

/// Sorts a transport failure into "never reached the server" (connect, TLS),
/// "not HTTP" and "may have reached it" (everything after the request left).
fn transport_error(endpoint: &Endpoint, error: &reqwest::Error) -> RequestError {
    let endpoint_text = endpoint.to_string();
    // TLS errors arrive as io::Errors wrapped in io::Errors, whose
    // `source()` skips the wrapped error itself: find_cause looks inside.
    let tls = find_cause::<rustls::Error>(error).map(ToString::to_string);
    let mut parse = false;
    let mut deepest = error.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_parse() || h.is_parse_status())
        {
            parse = true;
        }
        deepest = err.to_string();
        source = err.source();
    }
    if let Some(reason) = tls {
        return RequestError::Connect {
            endpoint: endpoint_text,
            tls: true,
            reason,
        };
    }
    if parse {
        return RequestError::Protocol {
            endpoint: endpoint_text,
            reason: deepest,
        };
    }
    if error.is_connect() {
        return RequestError::Connect {
            endpoint: endpoint_text,
            tls: false,
            reason: deepest,
        };
    }
    RequestError::NoAnswer {
        endpoint: endpoint_text,
        timeout: error.is_timeout(),
        reason: if error.is_timeout() {
            "timed out".to_owned()
        } else {
            deepest
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_error_texts() {
        let old = ServerError::parse(
            404,
            None,
            "Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist., e.what() = DB::Exception\n",
        );
        assert_eq!(old.code, Some(60));
        assert_eq!(
            old.message,
            "Code: 60. DB::Exception: Table default.nope doesn't exist."
        );
        assert_eq!(old.class(), ErrorClass::NotFound);

        let new = ServerError::parse(
            500,
            Some(252),
            "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS) (version 23.8.1.1)\n",
        );
        assert_eq!(new.class(), ErrorClass::Transient);

        let auth = ServerError::parse(
            401,
            None,
            "Code: 193, e.displayText() = DB::Exception: Wrong password for user default, e.what() = DB::Exception",
        );
        assert_eq!(auth.class(), ErrorClass::Auth);

        let syntax = ServerError::parse(
            500,
            None,
            "Code: 62, e.displayText() = DB::Exception: Syntax error",
        );
        assert_eq!(syntax.class(), ErrorClass::Permanent);
        let unknown =
            ServerError::parse(500, None, "Code: 1234, e.displayText() = DB::Exception: ?");
        assert_eq!(unknown.class(), ErrorClass::Transient);
        let proxy = ServerError::parse(502, None, "Bad Gateway");
        assert_eq!((proxy.code, proxy.class()), (None, ErrorClass::Transient));
    }
}
