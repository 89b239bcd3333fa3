//! A real SMTP server per test: aiosmtpd (installed by
//! `scripts/install/20-python.sh`) running `testkit/smtp_server.py` on a free
//! loopback port, in plain, STARTTLS or implicit-TLS mode, with optional
//! AUTH, refused recipients or contents, and temporary failures. Every message it accepts
//! is recorded (before it answers 250) and readable with
//! [`SmtpServer::messages`].
//!
//! ```no_run
//! use testkit::smtp::{SmtpMode, SmtpServer};
//!
//! let server = SmtpServer::builder()
//!     .mode(SmtpMode::StartTls)
//!     .auth("alice", "s3cret")
//!     .reject_recipient("nobody@example.com")
//!     .start();
//! // ... point a client at 127.0.0.1:server.port() ...
//! let mails = server.wait_for_messages(1, std::time::Duration::from_secs(10));
//! assert_eq!(mails[0].header("Subject"), Some("hello"));
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{INSTALL_COMMAND, ServerProcess, free_port, require_binary};

/// How the server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpMode {
    /// No TLS at all (a local relay on port 25).
    #[default]
    Plain,
    /// Plain at first; STARTTLS is offered and required before MAIL.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    ImplicitTls,
}

/// Settings for an [`SmtpServer`]; see [`SmtpServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct SmtpServerBuilder {
    mode: SmtpMode,
    auth: Option<(String, String)>,
    reject: Vec<String>,
    reject_content: Vec<String>,
    tempfail_data: u32,
    port: Option<u16>,
}

impl SmtpServerBuilder {
    /// Plain, STARTTLS or implicit TLS (with a new self-signed certificate
    /// for `localhost` and `127.0.0.1`).
    pub fn mode(mut self, mode: SmtpMode) -> Self {
        self.mode = mode;
        self
    }

    /// Requires AUTH (PLAIN or LOGIN) as `user` with `password` before MAIL.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Refuses `address` at RCPT TO with `550 5.1.1 ... User unknown`.
    pub fn reject_recipient(mut self, address: &str) -> Self {
        self.reject.push(address.to_owned());
        self
    }

    /// Refuses a message whose raw text contains `text` at the end of DATA
    /// with `554 5.7.1 Message content rejected by policy` (a content filter).
    pub fn reject_content(mut self, text: &str) -> Self {
        self.reject_content.push(text.to_owned());
        self
    }

    /// Answers the first `n` messages' DATA with `451 4.3.0` (a temporary
    /// failure a client should retry).
    pub fn tempfail_first(mut self, n: u32) -> Self {
        self.tempfail_data = n;
        self
    }

    /// Listens on `port` instead of a new free one (to restart a server
    /// where a client expects it).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(self) -> SmtpServer {
        let python = require_binary("venv/bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_server.py");
        let dir = ServerProcess::temp_dir();
        let out = dir.path().join("mail");
        std::fs::create_dir(&out).expect("create mail dir");
        let port = self.port.unwrap_or_else(free_port);

        let mut command = Command::new(python);
        command
            .arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--out")
            .arg(&out);
        let mut certificate_pem = None;
        if self.mode != SmtpMode::Plain {
            let (cert, key) = self_signed_certificate(&["localhost", "127.0.0.1"]);
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, &cert).expect("write certificate");
            std::fs::write(&key_path, key).expect("write key");
            command
                .arg("--mode")
                .arg(match self.mode {
                    SmtpMode::StartTls => "starttls",
                    _ => "implicit",
                })
                .arg("--cert")
                .arg(cert_path)
                .arg("--key")
                .arg(key_path);
            certificate_pem = Some(cert);
        }
        if let Some((user, password)) = &self.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        for address in &self.reject {
            command.arg("--reject-rcpt").arg(address);
        }
        for text in &self.reject_content {
            command.arg("--reject-content").arg(text);
        }
        if self.tempfail_data > 0 {
            command
                .arg("--tempfail-data")
                .arg(self.tempfail_data.to_string());
        }

        let process = ServerProcess::start("aiosmtpd", command, dir);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if !crate::wait_for_tcp(addr, Duration::from_secs(20)) {
            let log = process.log();
            if log.contains("No module named") {
                panic!(
                    "aiosmtpd is not installed in {}; run `{INSTALL_COMMAND}`\n{log}",
                    crate::tools_dir().join("venv").display()
                );
            }
            panic!("aiosmtpd did not accept connections on {addr} within 20s; log:\n{log}");
        }
        SmtpServer {
            process,
            port,
            out,
            certificate_pem,
        }
    }
}

/// A running aiosmtpd, killed on drop.
#[derive(Debug)]
pub struct SmtpServer {
    process: ServerProcess,
    port: u16,
    out: PathBuf,
    certificate_pem: Option<String>,
}

impl SmtpServer {
    /// Settings for a new server (plain, no AUTH, accepts every recipient).
    pub fn builder() -> SmtpServerBuilder {
        SmtpServerBuilder::default()
    }

    /// A plain server without AUTH.
    pub fn start_plain() -> SmtpServer {
        SmtpServer::builder().start()
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The self-signed certificate (PEM) of a TLS server.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Kills the server now (connections drop mid-conversation).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Every message accepted so far, in the order accepted.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .expect("read mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("read recorded mail");
                ReceivedMail::parse(&text)
                    .unwrap_or_else(|e| panic!("bad record {}: {e}\n{text}", p.display()))
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived; panics with the server log
    /// if they do not within `timeout`.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} messages, got {} within {timeout:?}; server log:\n{}",
                    messages.len(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMail {
    /// Order of acceptance, from 1.
    pub seq: u64,
    /// Which TCP connection carried it (numbered from 1 in accept order;
    /// the launcher's readiness probe is number 1).
    pub connection: u64,
    /// The envelope sender (MAIL FROM).
    pub mail_from: String,
    /// The envelope recipients (RCPT TO) the server accepted.
    pub rcpt_tos: Vec<String>,
    /// The message as sent (headers and encoded body).
    pub data: String,
    /// Headers, decoded (RFC 2047 words, folded lines), in order.
    pub headers: Vec<(String, String)>,
    /// The text body, decoded (quoted-printable, base64, charset), with
    /// `\n` line ends.
    pub body: Option<String>,
    /// The MIME type of the message, e.g. `text/plain`.
    pub content_type: Option<String>,
    /// The user that authenticated, if any.
    pub login: Option<String>,
    /// Whether the connection was encrypted when the message came.
    pub tls: bool,
}

impl ReceivedMail {
    fn parse(text: &str) -> Result<ReceivedMail, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        let headers = v["headers"]
            .as_array()
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| Some((h[0].as_str()?.to_owned(), h[1].as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ReceivedMail {
            seq: v["seq"].as_u64().ok_or("no seq")?,
            connection: v["connection"].as_u64().ok_or("no connection")?,
            mail_from: s("mail_from").ok_or("no mail_from")?,
            rcpt_tos: v["rcpt_tos"]
                .as_array()
                .ok_or("no rcpt_tos")?
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            data: s("data").ok_or("no data")?,
            headers,
            body: s("body"),
            content_type: s("content_type"),
            login: s("login"),
            tls: v["tls"].as_bool().unwrap_or(false),
        })
    }

    /// The first header called `name` (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A new self-signed certificate and its private key (both PEM) for
/// `names` (DNS names or IP addresses).
pub fn self_signed_certificate(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("generate certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}
