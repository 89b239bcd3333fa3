//! A private ClickHouse server per test.
//!
//! The server runs from the installed `clickhouse-server` (Debian's 18.16,
//! see `scripts/install/10-clickhouse.sh`) with a config copied from
//! `/etc/clickhouse-server/config.xml`: data and logs in a temp dir, free
//! ports on 127.0.0.1 only, and its own users file. As root it runs as the
//! `clickhouse` user, as the packaged service does. It is killed on drop.
//!
//! ```no_run
//! use testkit::clickhouse::ClickHouse;
//!
//! let server = ClickHouse::builder().user("writer", "secret").start();
//! server.query("CREATE TABLE t (n Int64) ENGINE = Memory");
//! assert_eq!(server.query("SELECT count() FROM t"), "0");
//! println!("HTTP interface at {}", server.http_url());
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{ServerProcess, free_port, require_binary};

/// Where the packaged server config lives.
const PACKAGED_CONFIG: &str = "/etc/clickhouse-server/config.xml";

/// How long a server may take to answer `/ping` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct User {
    name: String,
    password: String,
    readonly: bool,
}

/// Options for [`ClickHouse`]; finish with [`ClickHouseBuilder::start`].
#[derive(Debug, Clone, Default)]
pub struct ClickHouseBuilder {
    users: Vec<User>,
    tls: bool,
}

impl ClickHouseBuilder {
    /// Adds a user with a password (besides `default`, which has none).
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push(User {
            name: name.into(),
            password: password.into(),
            readonly: false,
        });
        self
    }

    /// Adds a user that may only read (`readonly = 1`).
    pub fn readonly_user(mut self, name: &str, password: &str) -> Self {
        self.users.push(User {
            name: name.into(),
            password: password.into(),
            readonly: true,
        });
        self
    }

    /// Also serves HTTPS, with a certificate for `localhost` and
    /// `127.0.0.1` signed by a fresh CA ([`ClickHouse::ca_file`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Writes the config, starts the server and waits until `/ping`
    /// answers. Panics (with the server log) if it does not come up.
    pub fn start(self) -> ClickHouse {
        let binary = require_binary("clickhouse-server");
        require_binary("clickhouse-client");
        let root = tempfile::Builder::new()
            .prefix("connectors-clickhouse-")
            .tempdir()
            .expect("create temp dir");
        let mut server = ClickHouse {
            http_port: 0,
            tcp_port: 0,
            https_port: None,
            interserver_port: 0,
            run_as: clickhouse_user(),
            binary,
            process: None,
            root,
        };
        // A free port can be taken by another test before the server binds
        // it: then try again with new ones.
        for attempt in 1.. {
            server.http_port = free_port();
            server.tcp_port = free_port();
            server.https_port = self.tls.then(free_port);
            server.interserver_port = free_port();
            server.write_config(&self);
            match server.launch() {
                Ok(()) => break,
                Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("clickhouse-server did not start; log:\n{log}"),
            }
        }
        server
    }
}

/// A running private ClickHouse server.
#[derive(Debug)]
pub struct ClickHouse {
    root: tempfile::TempDir,
    process: Option<ServerProcess>,
    binary: PathBuf,
    http_port: u16,
    tcp_port: u16,
    https_port: Option<u16>,
    interserver_port: u16,
    run_as: Option<(u32, u32)>,
}

impl ClickHouse {
    /// A server with the `default` user (no password), plain HTTP.
    pub fn start() -> ClickHouse {
        ClickHouse::builder().start()
    }

    /// Options: extra users, TLS.
    pub fn builder() -> ClickHouseBuilder {
        ClickHouseBuilder::default()
    }

    /// The HTTP port on 127.0.0.1.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The native-protocol port on 127.0.0.1 (what `clickhouse-client` uses).
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// The HTTPS port, when started with [`ClickHouseBuilder::tls`].
    pub fn https_port(&self) -> Option<u16> {
        self.https_port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `https://localhost:<port>`, when started with TLS.
    pub fn https_url(&self) -> Option<String> {
        self.https_port.map(|p| format!("https://localhost:{p}"))
    }

    /// PEM file of the CA that signed the server certificate (TLS only).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.https_port.map(|_| self.root.path().join("ca.crt"))
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The process id of the running server (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, ServerProcess::pid)
    }

    /// `clickhouse-client` set up for this server (as `default`).
    pub fn client_command(&self) -> Command {
        let mut command = Command::new(require_binary("clickhouse-client"));
        command.args(["--host", "127.0.0.1", "--port", &self.tcp_port.to_string()]);
        command
    }

    /// Runs `sql` with `clickhouse-client`; the output without its final
    /// newline, or the client's error text.
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        let output = self
            .client_command()
            .args(["--query", sql])
            .output()
            .map_err(|e| format!("run clickhouse-client: {e}"))?;
        if output.status.success() {
            let text = String::from_utf8_lossy(&output.stdout);
            Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }

    /// Runs `sql` with `clickhouse-client` and returns its output (without
    /// the final newline). Panics with the error.
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("ClickHouse query failed: {sql}\n{e}"))
    }

    /// The server's error log so far.
    pub fn log(&self) -> String {
        let mut text =
            std::fs::read_to_string(self.root.path().join("log/clickhouse-server.err.log"))
                .unwrap_or_default();
        if let Some(p) = &self.process {
            text.push_str(&p.log());
        }
        text
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts the server again on the same data directory and ports (after
    /// [`ClickHouse::kill`]) and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.launch() {
            panic!("clickhouse-server did not restart; log:\n{log}");
        }
    }

    /// Starts the server and waits for `/ping`; on failure, the logs.
    fn launch(&mut self) -> Result<(), String> {
        let config = self.root.path().join("config.xml");
        let mut command = Command::new(&self.binary);
        command
            .arg(format!("--config-file={}", config.display()))
            .current_dir(self.root.path());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        // Only what this start logs counts (the error log survives restarts).
        let seen = self.log().len();
        let process = ServerProcess::start("clickhouse-server", command, ServerProcess::temp_dir());
        let addr = SocketAddr::from(([127, 0, 0, 1], self.http_port));
        let deadline = Instant::now() + START_TIMEOUT;
        self.process = Some(process);
        loop {
            if ping(addr) {
                return Ok(());
            }
            let log = self.log().get(seen..).unwrap_or_default().to_owned();
            // The server logs why it cannot serve (a port taken, a bad config).
            let exited = log.contains("Address already in use")
                || log.contains("Application: DB::Exception");
            if exited || Instant::now() > deadline {
                self.kill();
                return Err(format!("no answer to /ping on {addr}\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_config(&self, options: &ClickHouseBuilder) {
        let root = self.root.path();
        for dir in ["data", "log"] {
            std::fs::create_dir_all(root.join(dir)).expect("create server dirs");
        }
        let packaged = std::fs::read_to_string(PACKAGED_CONFIG).unwrap_or_else(|e| {
            panic!(
                "cannot read {PACKAGED_CONFIG} ({e}); run `{}`",
                crate::INSTALL_COMMAND
            )
        });
        let mut xml = strip_comments(&packaged)
            .replace("/var/lib/clickhouse/", &format!("{}/data/", root.display()))
            .replace(
                "/var/log/clickhouse-server/",
                &format!("{}/log/", root.display()),
            );
        for tag in [
            "listen_host",
            "https_port",
            "tcp_port_secure",
            "interserver_https_port",
            "mysql_port",
            "postgresql_port",
            "grpc_port",
            "dhParamsFile",
        ] {
            xml = remove_tag(&xml, tag);
        }
        xml = set_tag(&xml, "listen_host", "127.0.0.1");
        xml = set_tag(&xml, "http_port", &self.http_port.to_string());
        xml = set_tag(&xml, "tcp_port", &self.tcp_port.to_string());
        xml = set_tag(
            &xml,
            "interserver_http_port",
            &self.interserver_port.to_string(),
        );
        xml = set_tag(
            &xml,
            "users_config",
            &root.join("users.xml").display().to_string(),
        );
        if let Some(port) = self.https_port {
            write_certificates(root);
            xml = set_tag(&xml, "https_port", &port.to_string());
            xml = set_tag(
                &xml,
                "certificateFile",
                &root.join("server.crt").display().to_string(),
            );
            xml = set_tag(
                &xml,
                "privateKeyFile",
                &root.join("server.key").display().to_string(),
            );
        }
        std::fs::write(root.join("config.xml"), xml).expect("write config.xml");
        std::fs::write(
            root.join("users.xml"),
            users_xml(&root_tag(&packaged), &options.users),
        )
        .expect("write users.xml");
        if let Some((uid, gid)) = self.run_as {
            chown_tree(root, uid, gid);
        }
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `clickhouse` user's uid and gid when this process is root (the
/// server then drops to it); `None` when not root (it runs as us).
fn clickhouse_user() -> Option<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    if me != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("clickhouse:"));
    let Some(line) = line else {
        panic!(
            "running as root but there is no `clickhouse` user; run `{}`",
            crate::INSTALL_COMMAND
        );
    };
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir").flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}

/// `GET /ping` answered `Ok.`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ") && answer.ends_with("Ok.\n")
}

fn strip_comments(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = &rest[start + end + 3..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes every `<tag ...>...</tag>` element.
fn remove_tag(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = xml.to_owned();
    while let Some(start) = out.find(&open) {
        let Some(end) = out[start..].find(&close) else {
            break;
        };
        out.replace_range(start..start + end + close.len(), "");
    }
    out
}

/// Sets the text of the first `<tag>` element, or adds the element before
/// the root's closing tag.
fn set_tag(xml: &str, tag: &str, value: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = xml.to_owned();
    if let Some(start) = out.find(&open)
        && let Some(end) = out[start..].find(&close)
    {
        out.replace_range(start + open.len()..start + end, value);
        return out;
    }
    let root_close = format!("</{}>", root_tag(xml));
    let at = out.rfind(&root_close).expect("config has a root element");
    out.insert_str(at, &format!("    {open}{value}{close}\n"));
    out
}

/// `yandex` (old servers) or `clickhouse` (new ones).
fn root_tag(xml: &str) -> String {
    if xml.contains("<clickhouse>") {
        "clickhouse".into()
    } else {
        "yandex".into()
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn users_xml(root: &str, users: &[User]) -> String {
    let mut entries = String::from(
        "        <default><password></password><networks><ip>::/0</ip></networks>\
         <profile>default</profile><quota>default</quota></default>\n",
    );
    for user in users {
        entries.push_str(&format!(
            "        <{name}><password>{password}</password><networks><ip>::/0</ip></networks>\
             <profile>{profile}</profile><quota>default</quota></{name}>\n",
            name = user.name,
            password = xml_escape(&user.password),
            profile = if user.readonly { "readonly" } else { "default" },
        ));
    }
    format!(
        "<?xml version=\"1.0\"?>\n<{root}>\n\
         <profiles>\n\
         <default><max_memory_usage>10000000000</max_memory_usage><load_balancing>random</load_balancing></default>\n\
         <readonly><readonly>1</readonly></readonly>\n\
         </profiles>\n\
         <users>\n{entries}</users>\n\
         <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>\
         <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>\
         </interval></default></quotas>\n\
         </{root}>\n"
    )
}

/// A CA and a server certificate for `localhost`/`127.0.0.1` signed by it.
fn write_certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "connectors test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");

    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("write ca.crt");
    std::fs::write(dir.join("server.crt"), cert.pem()).expect("write server.crt");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write server.key");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_edits() {
        let xml = "<yandex>\n<!-- <https_port>1</https_port> -->\n<http_port>8123</http_port>\n\
                   <listen_host>::1</listen_host>\n<listen_host>127.0.0.1</listen_host>\n</yandex>\n";
        let mut out = strip_comments(xml);
        out = remove_tag(&out, "listen_host");
        out = set_tag(&out, "listen_host", "127.0.0.1");
        out = set_tag(&out, "http_port", "18123");
        out = set_tag(&out, "https_port", "18443");
        assert!(!out.contains("::1"));
        assert_eq!(
            out.matches("<listen_host>127.0.0.1</listen_host>").count(),
            1
        );
        assert!(out.contains("<http_port>18123</http_port>"));
        assert!(out.contains("<https_port>18443</https_port>"));
        assert!(!out.contains("<https_port>1</https_port>"));
    }
}
