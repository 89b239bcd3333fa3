//! The sink: renders one mail per record and sends it over a reused
//! connection, retrying what may heal and rejecting what the server refuses.

use std::time::Duration;

use async_trait::async_trait;
use connector_core::check::CheckReport;
use connector_core::{Batch, BatchLimits, Error, FailureKind, Properties, Record, Result, Sink};
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Mail, Quit, Rcpt, Rset};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::client::{COMPONENT, Class, Failure, SmtpClient, Stage};
use crate::config::{EmailConfig, TlsMode};

/// A connection idle for longer than this is checked with NOOP before it
/// carries a mail (servers drop idle sessions; RFC 5321 allows 5 minutes).
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Sends one email per record.
///
/// Subject and body come from the templates (`{{ .column }}`); without a
/// body template the body is the record as a JSON object. One SMTP
/// connection is opened on the first mail and reused for the following ones
/// (checked with NOOP after a pause, reopened when the server dropped it).
///
/// A batch is acknowledged after the server accepted every mail of it
/// (`250` to DATA). A mail the server refuses for good (a `5xx` reply, such
/// as an unknown recipient) makes its batch *rejected* with the server's
/// reply, and the following records are still sent. Temporary failures
/// (`4xx`, a lost connection, a timeout) are retried `retries` times with
/// doubling waits, then the batch *fails* (the source delivers it again).
/// Refused credentials and TLS errors cannot heal: the batch fails and
/// [`Sink::send`] returns the error, which stops the pipeline.
pub struct EmailSink {
    config: EmailConfig,
    client: SmtpClient,
    conn: Option<AsyncSmtpConnection>,
    last_used: Instant,
    sent: u64,
}

/// How sending one mail ended, when it did not succeed.
enum Outcome {
    /// Refused for good: reject the record, go on.
    Rejected(Error),
    /// Retries exhausted; `connection` tells whether the server is out of
    /// reach (then the rest of the batch would fail the same way).
    Failed { error: Error, connection: bool },
    /// Cannot go on (credentials, TLS).
    Fatal(Error),
}

impl EmailSink {
    /// A sink from a typed config (reads `tls.ca_file` if set).
    pub fn new(config: EmailConfig) -> Result<Self> {
        let client = SmtpClient::new(&config)?;
        if config.tls_mode == TlsMode::None && config.username.is_some() {
            warn!(
                server = %client.address(),
                "AUTH over a plain connection: the password crosses the network unencrypted"
            );
        }
        Ok(EmailSink {
            config,
            client,
            conn: None,
            last_used: Instant::now(),
            sent: 0,
        })
    }

    /// A sink from the `email` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        EmailSink::new(EmailConfig::from_properties(props)?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// Mails the server has accepted so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The mail for `record`.
    pub fn render(&self, record: &Record) -> Result<Message> {
        let mut builder = Message::builder()
            .from(self.config.from.clone())
            .message_id(None);
        for to in &self.config.to {
            builder = builder.to(to.clone());
        }
        if let Some(subject) = &self.config.subject {
            // A value with a line break must not start a new header.
            let text = subject.render(record).replace(['\r', '\n'], " ");
            builder = builder.subject(text);
        }
        let body = match &self.config.body {
            Some(template) => template.render(record),
            None => serde_json::to_string_pretty(record).map_err(|e| {
                Error::encode("json", describe(record, 0), e.to_string()).in_component(COMPONENT)
            })?,
        };
        builder
            .header(if self.config.html {
                ContentType::TEXT_HTML
            } else {
                ContentType::TEXT_PLAIN
            })
            .body(body)
            .map_err(|e| {
                Error::encode("email", describe(record, 0), e.to_string()).in_component(COMPONENT)
            })
    }

    /// A connection ready for a mail: the open one if it still answers,
    /// else a new one.
    async fn connection(&mut self) -> std::result::Result<AsyncSmtpConnection, Failure> {
        if let Some(mut conn) = self.conn.take() {
            if self.last_used.elapsed() < IDLE_CHECK {
                return Ok(conn);
            }
            let alive = tokio::time::timeout(self.client.timeout(), conn.test_connected()).await;
            if matches!(alive, Ok(true)) {
                return Ok(conn);
            }
            debug!(server = %self.client.address(), "idle SMTP connection is gone; reconnecting");
        }
        let conn = self.client.open().await?;
        debug!(server = %self.client.address(), "SMTP connection open");
        Ok(conn)
    }

    /// One try at one mail.
    async fn try_send(
        &mut self,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> std::result::Result<String, (Failure, bool)> {
        let reused = self.conn.is_some();
        let mut conn = self.connection().await.map_err(|f| (f, false))?;
        let timeout = self.client.timeout();
        match tokio::time::timeout(timeout, conn.send(envelope, bytes)).await {
            Ok(Ok(response)) => {
                self.conn = Some(conn);
                self.last_used = Instant::now();
                Ok(response.message().collect::<Vec<_>>().join(" "))
            }
            Ok(Err(e)) => {
                // lettre closes the session after a refused command; keep
                // the connection only if it is still in a known state.
                if !conn.has_broken() {
                    self.conn = Some(conn);
                }
                Err((self.client.classify(Stage::Send, &e), reused))
            }
            // Dropped mid-conversation: the connection goes with it.
            Err(_) => Err((Failure::timeout("the mail", timeout), reused)),
        }
    }

    /// Sends one mail, retrying temporary failures.
    async fn deliver(&mut self, message: &Message, what: &str) -> std::result::Result<(), Outcome> {
        let bytes = message.formatted();
        let envelope = message.envelope();
        let mut attempt = 0u32;
        let mut wait = self.config.retry_interval;
        let mut reconnected = false;
        loop {
            let (failure, reused) = match self.try_send(envelope, &bytes).await {
                Ok(reply) => {
                    self.sent += 1;
                    debug!(record = what, reply = %reply, "mail accepted");
                    return Ok(());
                }
                Err(e) => e,
            };
            let operation = format!("send {what} via {}", self.client.address());
            match failure.class {
                Class::Rejected => {
                    return Err(Outcome::Rejected(Error::rejected(
                        COMPONENT,
                        what,
                        failure.reason,
                    )));
                }
                Class::Fatal => {
                    return Err(Outcome::Fatal(Error::permanent(
                        COMPONENT,
                        operation,
                        failure.reason,
                    )));
                }
                // A reused connection that broke was most likely closed by
                // the server between mails: reconnect once at no cost.
                Class::Connection if reused && !reconnected => {
                    reconnected = true;
                    debug!(reason = %failure, "reused SMTP connection failed; reconnecting");
                    continue;
                }
                Class::Connection | Class::Transient => {}
            }
            if attempt >= self.config.retries {
                let error = Error::transient(
                    COMPONENT,
                    operation,
                    format!("{} (gave up after {} tries)", failure.reason, attempt + 1),
                );
                return Err(Outcome::Failed {
                    error,
                    connection: failure.class == Class::Connection,
                });
            }
            attempt += 1;
            warn!(
                record = what,
                reason = %failure,
                retry = attempt,
                of = self.config.retries,
                wait_ms = wait.as_millis() as u64,
                "mail not sent; retrying"
            );
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }
}

/// How errors name a record: its source position, else its index in the batch.
fn describe(record: &Record, index: usize) -> String {
    match &record.position {
        Some(p) => format!("record at {p}"),
        None => format!("record {index} of the batch"),
    }
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink")
            .field("config", &self.config)
            .field("connected", &self.conn.is_some())
            .field("sent", &self.sent)
            .finish()
    }
}

#[async_trait]
impl Sink for EmailSink {
    fn name(&self) -> &str {
        COMPONENT
    }

    /// One record per batch: mails go out one at a time anyway, and a
    /// refused mail then rejects only its own record (in a bigger batch the
    /// pipeline would count the delivered mails beside it as bad too).
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: 1,
            max_wait: Duration::ZERO,
        }
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        let (records, ack) = batch.into_parts();
        for (index, record) in records.iter().enumerate() {
            let what = describe(record, index);
            let message = match self.render(record) {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "cannot build mail; rejecting the record");
                    ack.clone().rejected(e);
                    continue;
                }
            };
            match self.deliver(&message, &what).await {
                Ok(()) => {}
                Err(Outcome::Rejected(e)) => {
                    warn!(error = %e, "mail refused by the server");
                    ack.clone().rejected(e);
                }
                Err(Outcome::Failed { error, connection }) => {
                    warn!(error = %error, "mail not delivered; the batch fails");
                    ack.clone().failed(error);
                    if connection {
                        // The server is out of reach: the rest would fail the same way.
                        break;
                    }
                }
                Err(Outcome::Fatal(e)) => {
                    ack.failed(e.duplicate());
                    return Err(e);
                }
            }
        }
        // Each clone above already recorded its outcome; the ack resolves
        // to the worst of them.
        ack.delivered();
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(self.client.timeout(), conn.quit()).await;
        }
        Ok(())
    }

    /// Connects, upgrades with STARTTLS, authenticates and offers the
    /// sender and every recipient (MAIL FROM / RCPT TO, then RSET): no mail
    /// is sent.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(COMPONENT);
        let client = &self.client;
        let address = client.address();

        // A plain TCP connection first, so "nothing listens" is told apart
        // from TLS and SMTP trouble.
        let connected = report
            .step(format!("connect to {address}"), timeout, async {
                match tokio::net::TcpStream::connect(address.as_str()).await {
                    Ok(stream) => Ok(stream
                        .peer_addr()
                        .map(|a| format!("reached {a}"))
                        .unwrap_or_default()),
                    Err(e) => Err((FailureKind::Unreachable, format!("{e}"))),
                }
            })
            .await;
        if !connected {
            return report;
        }

        let greeting = match client.mode() {
            TlsMode::Implicit => "TLS handshake, SMTP greeting and EHLO",
            _ => "SMTP greeting and EHLO",
        };
        let mut slot = None;
        let ok = report
            .step(greeting, timeout, async {
                let conn = client.connect().await.map_err(|f| (f.kind, f.reason))?;
                let info = conn.server_info();
                let mut detail = format!("server `{}`", info.name());
                if client.mode() == TlsMode::Implicit {
                    detail.push_str(&format!(", TLS ({})", client.verification()));
                }
                slot = Some(conn);
                Ok(detail)
            })
            .await;
        let Some(mut conn) = slot.filter(|_| ok) else {
            return report;
        };

        if client.mode() == TlsMode::StartTls {
            let ok = report
                .step("STARTTLS", timeout, async {
                    client
                        .starttls(&mut conn)
                        .await
                        .map(|()| format!("TLS established ({})", client.verification()))
                        .map_err(|f| (f.kind, f.reason))
                })
                .await;
            if !ok {
                return report;
            }
        }

        if let Some(user) = client.username() {
            let ok = report
                .step(format!("AUTH as `{user}`"), timeout, async {
                    client.auth(&mut conn).await.map_err(|f| (f.kind, f.reason))
                })
                .await;
            if !ok {
                return report;
            }
        }

        let from = self.config.from.email.clone();
        let to: Vec<_> = self.config.to.iter().map(|m| m.email.clone()).collect();
        let names: Vec<String> = to.iter().map(|a| format!("<{a}>")).collect();
        report
            .step(
                format!("MAIL FROM <{from}>, RCPT TO {}", names.join(", ")),
                timeout,
                async {
                    let send = |e: &lettre::transport::smtp::Error, stage| {
                        let f = client.classify(stage, e);
                        (f.kind, f.reason)
                    };
                    conn.command(Mail::new(Some(from), vec![]))
                        .await
                        .map_err(|e| send(&e, Stage::MailFrom))?;
                    for rcpt in to {
                        conn.command(Rcpt::new(rcpt, vec![]))
                            .await
                            .map_err(|e| send(&e, Stage::RcptTo))?;
                    }
                    conn.command(Rset)
                        .await
                        .map_err(|e| send(&e, Stage::Send))?;
                    Ok("accepted; nothing sent".to_owned())
                },
            )
            .await;
        let _ = tokio::time::timeout(timeout, conn.command(Quit)).await;
        report
    }
}
