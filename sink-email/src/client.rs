//! Talking SMTP: opening an authenticated connection stage by stage, and
//! sorting lettre's errors into what the sink (retry, reject, stop) and the
//! connection check (which step, which failure kind) need.
//!
//! The sink keeps one open connection and reuses it for every mail instead
//! of lettre's pooled transport: the pool returns a connection to the pool
//! from a spawned task (so the next mail often opens a new one) and cannot
//! tell that a mail was cut off by our timeout (lettre's tokio transport has
//! no read timeout, so we need one), after which a pooled connection would be
//! out of step with the server. lettre still does all the protocol work.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use connector_core::FailureKind;
use connector_core::error::find_cause;
use connector_core::{Error, Result};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::{ClientId, Extension};

use crate::config::{EmailConfig, TlsMode};

/// The component name in errors and reports.
pub(crate) const COMPONENT: &str = "email sink";

/// The stage of the SMTP conversation an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// TCP connect, implicit TLS, greeting and EHLO.
    Connect,
    /// STARTTLS and the second EHLO.
    StartTls,
    /// AUTH.
    Auth,
    /// MAIL FROM (connection check only).
    MailFrom,
    /// RCPT TO (connection check only).
    RcptTo,
    /// A whole mail: MAIL, RCPT, DATA.
    Send,
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Configuration or credentials are wrong: retrying cannot help.
    Fatal,
    /// The connection broke or could not be made: reconnect and retry.
    Connection,
    /// The server asked to try this mail again later (4xx).
    Transient,
    /// The server refused this mail for good (5xx).
    Rejected,
}

/// An SMTP failure, sorted.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub class: Class,
    pub kind: FailureKind,
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Failure {
    fn new(class: Class, kind: FailureKind, reason: impl Into<String>) -> Self {
        Failure {
            class,
            kind,
            reason: reason.into(),
        }
    }

    pub(crate) fn timeout(what: &str, timeout: Duration) -> Self {
        Failure::new(
            Class::Connection,
            FailureKind::Timeout,
            format!(
                "no answer to {what} within {}",
                connector_core::config::format_duration(timeout)
            ),
        )
    }
}

/// The connection settings of one sink, ready to open connections.
pub(crate) struct SmtpClient {
    server: String,
    port: u16,
    mode: TlsMode,
    skip_verify: bool,
    tls: Option<TlsParameters>,
    hello: ClientId,
    credentials: Option<(String, Credentials)>,
    timeout: Duration,
}

impl SmtpClient {
    /// Prepares TLS (reading `tls.ca_file`) and credentials.
    pub(crate) fn new(config: &EmailConfig) -> Result<Self> {
        let tls = match config.tls_mode {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Implicit => {
                let mut builder = TlsParameters::builder(config.server.clone())
                    .dangerous_accept_invalid_certs(config.skip_verify_server)
                    .dangerous_accept_invalid_hostnames(config.skip_verify_server);
                if let Some(path) = &config.ca_file {
                    let pem = std::fs::read(path).map_err(|e| {
                        Error::config(
                            COMPONENT,
                            "tls.ca_file",
                            format!("cannot read `{}`: {e}", path.display()),
                        )
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        Error::config(
                            COMPONENT,
                            "tls.ca_file",
                            format!("`{}` holds no usable PEM certificate: {e}", path.display()),
                        )
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build_rustls().map_err(|e| {
                    Error::config(COMPONENT, "tls", format!("cannot set up TLS: {e}"))
                })?)
            }
        };
        let credentials = config.username.as_ref().map(|user| {
            (
                user.clone(),
                Credentials::new(user.clone(), config.password.expose().to_owned()),
            )
        });
        Ok(SmtpClient {
            server: config.server.clone(),
            port: config.port,
            mode: config.tls_mode,
            skip_verify: config.skip_verify_server,
            tls,
            hello: ClientId::default(),
            credentials,
            timeout: config.timeout,
        })
    }

    /// `host:port`, for messages.
    pub(crate) fn address(&self) -> String {
        format!("{}:{}", self.server, self.port)
    }

    pub(crate) fn mode(&self) -> TlsMode {
        self.mode
    }

    pub(crate) fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// What the certificate check does, for reports.
    pub(crate) fn verification(&self) -> &'static str {
        if self.skip_verify {
            "certificate not verified: tls.skip_verify_server is on"
        } else {
            "certificate verified"
        }
    }

    /// An open, authenticated connection, each stage within the timeout.
    pub(crate) async fn open(&self) -> std::result::Result<AsyncSmtpConnection, Failure> {
        let mut conn = self.connect().await?;
        if self.mode == TlsMode::StartTls {
            self.starttls(&mut conn).await?;
        }
        if self.credentials.is_some() {
            self.auth(&mut conn).await?;
        }
        Ok(conn)
    }

    /// TCP connect, TLS for implicit mode, greeting and EHLO.
    pub(crate) async fn connect(&self) -> std::result::Result<AsyncSmtpConnection, Failure> {
        let connect = async {
            let tcp = crate::stream::connect(&self.server, self.port)
                .await
                .map_err(|e| {
                    let kind = match e.kind() {
                        std::io::ErrorKind::TimedOut => FailureKind::Timeout,
                        _ => FailureKind::Unreachable,
                    };
                    Failure::new(
                        Class::Connection,
                        kind,
                        format!("cannot connect to {}: {e}", self.address()),
                    )
                })?;
            let stream: Box<dyn AsyncTokioStream> = match (self.mode, &self.tls) {
                (TlsMode::Implicit, Some(tls)) => crate::stream::tls(tcp, tls.clone())
                    .await
                    .map_err(|e| self.classify(Stage::Connect, &e))?,
                _ => Box::new(tcp),
            };
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
                .await
                .map_err(|e| self.classify(Stage::Connect, &e))
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(result) => result,
            Err(_) => {
                let mut f = Failure::timeout("the SMTP greeting", self.timeout);
                if self.mode != TlsMode::Implicit {
                    // An implicit-TLS server waits for our TLS hello, as we wait for its greeting.
                    f.reason.push_str(
                        " (if this port expects TLS from the start, as 465 does, use port 465 or tls.mode `implicit`)",
                    );
                }
                Err(f)
            }
        }
    }

    /// STARTTLS; fails if the server does not offer it.
    pub(crate) async fn starttls(
        &self,
        conn: &mut AsyncSmtpConnection,
    ) -> std::result::Result<(), Failure> {
        let Some(tls) = self.tls.clone() else {
            return Ok(());
        };
        if !conn.server_info().supports_feature(Extension::StartTls) {
            return Err(Failure::new(
                Class::Fatal,
                FailureKind::Tls,
                format!(
                    "{} does not offer STARTTLS, which port {} requires here (set port 25 or tls.mode `none` for plain SMTP)",
                    self.address(),
                    self.port
                ),
            ));
        }
        match tokio::time::timeout(self.timeout, conn.starttls(tls, &self.hello)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.classify(Stage::StartTls, &e)),
            Err(_) => Err(Failure::timeout("STARTTLS", self.timeout)),
        }
    }

    /// AUTH with PLAIN or LOGIN, whichever the server offers.
    pub(crate) async fn auth(
        &self,
        conn: &mut AsyncSmtpConnection,
    ) -> std::result::Result<String, Failure> {
        let Some((user, credentials)) = &self.credentials else {
            return Ok(String::new());
        };
        let mechanisms = [Mechanism::Plain, Mechanism::Login];
        if conn.server_info().get_auth_mechanism(&mechanisms).is_none() {
            let hint = if self.mode != TlsMode::None {
                ""
            } else {
                " (servers usually offer AUTH only over TLS)"
            };
            return Err(Failure::new(
                Class::Fatal,
                FailureKind::AuthRefused,
                format!(
                    "{} offers no AUTH mechanism we can use as `{user}` (PLAIN or LOGIN){hint}",
                    self.address()
                ),
            ));
        }
        match tokio::time::timeout(self.timeout, conn.auth(&mechanisms, credentials)).await {
            Ok(Ok(response)) => Ok(reply_text(
                u16::from(response.code()),
                response.message().collect::<Vec<_>>().join(" "),
            )),
            Ok(Err(e)) => Err(self.classify(Stage::Auth, &e)),
            Err(_) => Err(Failure::timeout("AUTH", self.timeout)),
        }
    }

    /// Sorts a lettre error from `stage`.
    pub(crate) fn classify(&self, stage: Stage, err: &lettre::transport::smtp::Error) -> Failure {
        use Class::*;
        use FailureKind as K;

        if let Some(tls) = find_cause::<rustls::Error>(err) {
            let hint = match tls {
                rustls::Error::InvalidMessage(_) => {
                    " (the server does not speak TLS here; for STARTTLS use port 587 or tls.mode `starttls`)"
                }
                rustls::Error::InvalidCertificate(_) => {
                    " (trust its CA with tls.ca_file, or set tls.skip_verify_server for a test server)"
                }
                _ => "",
            };
            return Failure::new(
                Fatal,
                K::Tls,
                format!("TLS handshake with {} failed: {tls}{hint}", self.address()),
            );
        }
        if let Some(code) = err.status() {
            let code = u16::from(code);
            let reply = reply_text(code, source_text(err));
            let auth_code = matches!(code, 530 | 534 | 535 | 538);
            return match stage {
                Stage::Connect if code == 421 || code < 500 => Failure::new(
                    Connection,
                    K::Unreachable,
                    format!("{} is not available: {reply}", self.address()),
                ),
                Stage::Connect => Failure::new(
                    Fatal,
                    K::Invalid,
                    format!("{} refused the session: {reply}", self.address()),
                ),
                Stage::StartTls => {
                    Failure::new(Fatal, K::Tls, format!("STARTTLS refused: {reply}"))
                }
                Stage::Auth if code < 500 => Failure::new(
                    Connection,
                    K::AuthRefused,
                    format!(
                        "AUTH as `{}` failed for now: {reply}",
                        self.username().unwrap_or("")
                    ),
                ),
                Stage::Auth => Failure::new(
                    Fatal,
                    K::AuthRefused,
                    format!(
                        "AUTH as `{}` refused: {reply}",
                        self.username().unwrap_or("")
                    ),
                ),
                _ if code == 421 => Failure::new(
                    Connection,
                    K::Unreachable,
                    format!("server closing: {reply}"),
                ),
                _ if auth_code => Failure::new(
                    Fatal,
                    K::AuthRefused,
                    format!("server wants authentication: {reply}"),
                ),
                Stage::MailFrom if code >= 500 => Failure::new(
                    Rejected,
                    K::PermissionDenied,
                    format!("sender refused: {reply}"),
                ),
                Stage::RcptTo if code >= 500 => {
                    Failure::new(Rejected, K::NotFound, format!("recipient refused: {reply}"))
                }
                _ if code >= 500 => {
                    Failure::new(Rejected, K::Invalid, format!("server replied {reply}"))
                }
                _ => Failure::new(Transient, K::Invalid, format!("server replied {reply}")),
            };
        }
        if let Some(io) = find_cause::<std::io::Error>(err) {
            let kind = match io.kind() {
                std::io::ErrorKind::TimedOut => K::Timeout,
                _ => K::Unreachable,
            };
            let what = match stage {
                Stage::Connect => format!("cannot connect to {}", self.address()),
                _ => format!("connection to {} lost", self.address()),
            };
            return Failure::new(Connection, kind, format!("{what}: {io}"));
        }
        let text = source_text(err);
        if err.is_client() {
            // lettre refused before asking the server: the message or the
            // server's abilities are the problem, not the connection.
            let kind = if stage == Stage::Send {
                Rejected
            } else {
                Fatal
            };
            return Failure::new(kind, K::Invalid, text);
        }
        // Unparsable or truncated replies: the connection is not usable.
        Failure::new(
            Connection,
            K::Invalid,
            format!("bad reply from {}: {text}", self.address()),
        )
    }
}

/// `535 5.7.8 Authentication credentials invalid`.
fn reply_text(code: u16, message: String) -> String {
    if message.is_empty() {
        code.to_string()
    } else {
        format!("{code} {message}")
    }
}

/// The text of the error's cause (lettre's own Display adds a prefix such
/// as "permanent error (550): " that would repeat the code).
fn source_text(err: &lettre::transport::smtp::Error) -> String {
    err.source()
        .map(ToString::to_string)
        .unwrap_or_else(|| err.to_string())
}
