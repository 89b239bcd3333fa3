//! Typed configuration and its property-map form.

use std::path::PathBuf;
use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::template::Template;
use connector_core::{Properties, Result, Secret};
use lettre::message::Mailbox;

/// The properties of the `email` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "email",
    role: Role::Sink,
    description: "Sends one email per record over SMTP, with subject and body rendered from `{{ .column }}` templates.",
    properties: &[
        PropertySpec::required(
            "server",
            PropertyKind::String,
            "SMTP server host name or address.",
        ),
        PropertySpec::optional(
            "port",
            PropertyKind::Integer,
            Some("587"),
            "SMTP port: 587 submission with STARTTLS, 465 implicit TLS, 25 plain.",
        ),
        PropertySpec::optional(
            "username",
            PropertyKind::String,
            None,
            "AUTH user name; no AUTH when empty.",
        ),
        PropertySpec::optional("password", PropertyKind::Secret, None, "AUTH password."),
        PropertySpec::optional(
            "from",
            PropertyKind::String,
            None,
            "Sender, `addr@example.com` or `Name <addr@example.com>`; defaults to `username`.",
        ),
        PropertySpec::required(
            "to",
            PropertyKind::List,
            "Recipients (JSON array or comma-separated), each `addr@example.com` or `Name <addr@example.com>`.",
        ),
        PropertySpec::optional(
            "subject",
            PropertyKind::String,
            Some(""),
            "Subject template with `{{ .column }}`; empty sends no subject.",
        ),
        PropertySpec::optional(
            "body",
            PropertyKind::String,
            Some(""),
            "Body template with `{{ .column }}`; empty sends the record as a JSON object.",
        ),
        PropertySpec::optional(
            "content_type",
            PropertyKind::Choice(&["text/plain", "text/html"]),
            Some("text/plain"),
            "MIME type of the body (UTF-8).",
        ),
        PropertySpec::optional(
            "tls.mode",
            PropertyKind::Choice(&["auto", "starttls", "implicit", "none"]),
            Some("auto"),
            "`auto` follows the port (465 implicit TLS, 25 none, else STARTTLS); `starttls` requires STARTTLS; `implicit` is TLS from the first byte; `none` is plain text.",
        ),
        PropertySpec::optional(
            "tls.skip_verify_server",
            PropertyKind::Boolean,
            Some("false"),
            "`true` accepts any server certificate and host name (self-signed test servers).",
        ),
        PropertySpec::optional(
            "tls.ca_file",
            PropertyKind::String,
            None,
            "PEM file of extra CA certificates to trust (a private relay's CA).",
        ),
        PropertySpec::optional(
            "timeout",
            PropertyKind::Duration,
            Some("30s"),
            "Longest wait for connecting (TLS and AUTH included) and for each mail.",
        ),
        PropertySpec::optional(
            "retries",
            PropertyKind::Integer,
            Some("3"),
            "Retries of a mail after a temporary failure (4xx reply, lost connection, timeout).",
        ),
        PropertySpec::optional(
            "retry_interval",
            PropertyKind::Duration,
            Some("1s"),
            "Wait before the first retry; doubles on each further retry, up to 1 minute.",
        ),
    ],
};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection, then `STARTTLS` is required before anything else.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS: credentials and mail travel in clear text.
    None,
}

impl TlsMode {
    /// The mode a port implies: 465 implicit TLS, 25 none, anything else STARTTLS.
    pub fn for_port(port: u16) -> TlsMode {
        match port {
            465 => TlsMode::Implicit,
            25 => TlsMode::None,
            _ => TlsMode::StartTls,
        }
    }
}

/// Typed configuration of [`EmailSink`](crate::EmailSink).
///
/// ```
/// use sink_email::{EmailConfig, TlsMode};
///
/// let config = EmailConfig::new("smtp.example.com", "alerts@example.com".parse().unwrap(), vec!["ops@example.com".parse().unwrap()])
///     .credentials("alerts@example.com", "app-password")
///     .subject("{{ .device }} is hot")
///     .unwrap();
/// assert_eq!(config.port, 587);
/// assert_eq!(config.tls_mode, TlsMode::StartTls);
/// ```
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// SMTP server host name or address.
    pub server: String,
    /// SMTP port.
    pub port: u16,
    /// How the connection is secured.
    pub tls_mode: TlsMode,
    /// Accept any certificate and host name.
    pub skip_verify_server: bool,
    /// Extra CA certificates (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// AUTH user name, if any.
    pub username: Option<String>,
    /// AUTH password.
    pub password: Secret,
    /// Sender.
    pub from: Mailbox,
    /// Recipients (at least one).
    pub to: Vec<Mailbox>,
    /// Subject template; `None` sends no subject.
    pub subject: Option<Template>,
    /// Body template; `None` sends the record as a JSON object.
    pub body: Option<Template>,
    /// Send the body as HTML instead of plain text.
    pub html: bool,
    /// Longest wait for connecting and for each mail.
    pub timeout: Duration,
    /// Retries after a temporary failure.
    pub retries: u32,
    /// Wait before the first retry (doubling, up to a minute).
    pub retry_interval: Duration,
}

impl EmailConfig {
    /// A config for `server` on port 587 with STARTTLS, no AUTH, the record
    /// as JSON for body and no subject.
    pub fn new(server: impl Into<String>, from: Mailbox, to: Vec<Mailbox>) -> Self {
        EmailConfig {
            server: server.into(),
            port: 587,
            tls_mode: TlsMode::StartTls,
            skip_verify_server: false,
            ca_file: None,
            username: None,
            password: Secret::default(),
            from,
            to,
            subject: None,
            body: None,
            html: false,
            timeout: Duration::from_secs(30),
            retries: 3,
            retry_interval: Duration::from_secs(1),
        }
    }

    /// Sets the port and the TLS mode it implies (465 implicit, 25 none, else STARTTLS).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self.tls_mode = TlsMode::for_port(port);
        self
    }

    /// Sets the TLS mode regardless of the port.
    pub fn tls_mode(mut self, mode: TlsMode) -> Self {
        self.tls_mode = mode;
        self
    }

    /// Accepts any server certificate (self-signed test servers).
    pub fn skip_verify_server(mut self, skip: bool) -> Self {
        self.skip_verify_server = skip;
        self
    }

    /// Authenticates as `username`.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.username = Some(username.into());
        self.password = password.into();
        self
    }

    /// Sets the subject template.
    pub fn subject(mut self, template: &str) -> std::result::Result<Self, String> {
        self.subject = non_empty_template(template)?;
        Ok(self)
    }

    /// Sets the body template.
    pub fn body(mut self, template: &str) -> std::result::Result<Self, String> {
        self.body = non_empty_template(template)?;
        Ok(self)
    }

    /// Sets the retries and the first wait between them.
    pub fn retries(mut self, retries: u32, interval: Duration) -> Self {
        self.retries = retries;
        self.retry_interval = interval;
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let server: String = r.required("server");
        let port: u16 = r.required("port");
        let username: Option<String> = r.optional::<String>("username").filter(|u| !u.is_empty());
        let password: Secret = r.optional("password").unwrap_or_default();
        let from: Option<String> = r
            .optional::<String>("from")
            .filter(|f| !f.trim().is_empty());
        let to: Vec<String> = r.required("to");
        let subject: String = r.required("subject");
        let body: String = r.required("body");
        let content_type: String = r.required("content_type");
        let tls_mode: String = r.required("tls.mode");
        let skip_verify_server: bool = r.required("tls.skip_verify_server");
        let ca_file: Option<String> = r.optional("tls.ca_file");
        let timeout: Duration = r.required("timeout");
        let retries: u32 = r.required("retries");
        let retry_interval: Duration = r.required("retry_interval");

        if server.trim().is_empty() && r.is_set("server") {
            r.invalid("server", "must not be empty");
        }
        if port == 0 && r.is_set("port") {
            r.invalid("port", "must be between 1 and 65535");
        }
        if timeout.is_zero() {
            r.invalid("timeout", "must be more than 0");
        }
        if username.is_none() && !password.is_empty() {
            r.invalid("password", "is set but `username` is not");
        }

        let from = match (from, &username) {
            (Some(from), _) => parse_mailbox(&from).map_err(|e| r.invalid("from", e)).ok(),
            (None, Some(user)) => match parse_mailbox(user) {
                Ok(m) => Some(m),
                Err(_) => {
                    r.invalid(
                        "from",
                        format!("not set, and `username` `{user}` is not an email address to send from; set `from`"),
                    );
                    None
                }
            },
            (None, None) => {
                r.invalid("from", "required when `username` is not set");
                None
            }
        };
        let mut recipients = Vec::with_capacity(to.len());
        for (i, addr) in to.iter().enumerate() {
            match parse_mailbox(addr) {
                Ok(m) => recipients.push(m),
                Err(e) => r.invalid("to", format!("item {}: {e}", i + 1)),
            }
        }
        if to.is_empty() && r.is_set("to") {
            r.invalid("to", "must list at least one recipient");
        }
        let subject = non_empty_template(&subject)
            .map_err(|e| r.invalid("subject", e))
            .ok()
            .flatten();
        let body = non_empty_template(&body)
            .map_err(|e| r.invalid("body", e))
            .ok()
            .flatten();
        r.finish()?;

        let tls_mode = match tls_mode.as_str() {
            "starttls" => TlsMode::StartTls,
            "implicit" => TlsMode::Implicit,
            "none" => TlsMode::None,
            _ => TlsMode::for_port(port),
        };
        Ok(EmailConfig {
            server,
            port,
            tls_mode,
            skip_verify_server,
            ca_file: ca_file.filter(|f| !f.is_empty()).map(PathBuf::from),
            username,
            password,
            from: from.expect("checked above"),
            to: recipients,
            subject,
            body,
            html: content_type == "text/html",
            timeout,
            retries,
            retry_interval,
        })
    }
}

fn non_empty_template(source: &str) -> std::result::Result<Option<Template>, String> {
    if source.is_empty() {
        return Ok(None);
    }
    Template::parse(source).map(Some)
}

fn parse_mailbox(text: &str) -> std::result::Result<Mailbox, String> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("`{text}` is not an email address ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Properties {
        Properties::from_pairs([
            ("server", "smtp.example.com"),
            ("username", "alerts@example.com"),
            ("password", "hunter2"),
            ("to", "ops@example.com, Jane Doe <jane@example.com>"),
        ])
    }

    #[test]
    fn defaults() {
        let c = EmailConfig::from_properties(&props()).unwrap();
        assert_eq!(c.port, 587);
        assert_eq!(c.tls_mode, TlsMode::StartTls);
        assert_eq!(c.from.email.to_string(), "alerts@example.com");
        assert_eq!(c.to.len(), 2);
        assert_eq!(c.to[1].name.as_deref(), Some("Jane Doe"));
        assert!(c.subject.is_none() && c.body.is_none() && !c.html);
        assert!(!c.skip_verify_server);
        assert_eq!(c.retries, 3);
    }

    #[test]
    fn port_picks_tls_mode_unless_given() {
        let c = EmailConfig::from_properties(&props().with("port", "465")).unwrap();
        assert_eq!(c.tls_mode, TlsMode::Implicit);
        let c = EmailConfig::from_properties(&props().with("port", 25)).unwrap();
        assert_eq!(c.tls_mode, TlsMode::None);
        let c = EmailConfig::from_properties(
            &props().with("port", "2525").with("tls.mode", "implicit"),
        )
        .unwrap();
        assert_eq!(c.tls_mode, TlsMode::Implicit);
        let c = EmailConfig::from_properties(&props().with("port", "25").with(
            "tls",
            serde_json::json!({"mode": "starttls", "skip_verify_server": true}),
        ))
        .unwrap();
        assert_eq!(c.tls_mode, TlsMode::StartTls);
        assert!(c.skip_verify_server);
    }

    #[test]
    fn every_problem_is_named() {
        let bad = Properties::from_pairs([
            ("server", "smtp.example.com"),
            ("username", "bob"),
            ("password", "hunter2"),
            ("to", "ops@example.com, not an address"),
            ("subject", "{{ if .x }}"),
            ("port", "smtp"),
            ("tls.mode", "ssl"),
        ]);
        let err = EmailConfig::from_properties(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("email sink: invalid configuration:"),
            "{err}"
        );
        assert!(
            err.contains("property `port`: expected a whole number"),
            "{err}"
        );
        assert!(
            err.contains("property `from`: not set, and `username` `bob` is not an email address"),
            "{err}"
        );
        assert!(
            err.contains("property `to`: item 2: `not an address` is not an email address"),
            "{err}"
        );
        assert!(
            err.contains("property `subject`: template `{{ if .x }}`"),
            "{err}"
        );
        assert!(err.contains("property `tls.mode`: expected one of `auto`, `starttls`, `implicit`, `none`, got `ssl`"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn sender_is_required_somehow() {
        let p = Properties::from_pairs([("server", "s"), ("to", "a@example.com")]);
        let err = EmailConfig::from_properties(&p).unwrap_err().to_string();
        assert_eq!(
            err,
            "email sink: property `from`: required when `username` is not set"
        );
        let p = p.with("from", "Alerts <alerts@example.com>");
        let c = EmailConfig::from_properties(&p).unwrap();
        assert_eq!(c.from.to_string(), "Alerts <alerts@example.com>");
        assert!(c.username.is_none());
    }

    #[test]
    fn missing_required() {
        let err = EmailConfig::from_properties(&Properties::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `server`: required property is missing"),
            "{err}"
        );
        assert!(
            err.contains("property `to`: required property is missing"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let c = EmailConfig::from_properties(&props()).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
