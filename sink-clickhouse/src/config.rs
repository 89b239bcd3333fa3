//! Typed configuration and its property-map form.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::tls::{self, TlsSettings};
use connector_core::{Error, Properties, Result, Schema, Secret};
use percent_encoding::percent_decode_str;
use tracing::warn;

/// The properties of the `clickhouse` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "clickhouse",
    role: Role::Sink,
    description: "Writes records to a ClickHouse table over the HTTP interface, in RowBinary batches.",
    properties: &[
        PropertySpec::required(
            "table_name",
            PropertyKind::String,
            "The target table (`db.table` names the database too).",
        ),
        PropertySpec::optional(
            "dsn",
            PropertyKind::Secret,
            None,
            "`clickhouse://user:pass@host:8123/db` (`https://` or `?secure=true` for TLS; several hosts separated by commas; other parameters are sent as ClickHouse settings). When given, `hosts`, `username`, `password` and `database` are ignored.",
        ),
        PropertySpec::optional(
            "hosts",
            PropertyKind::List,
            None,
            "`host:port` HTTP endpoints (`https://host:8443` for TLS), tried in turn when one fails. Required without `dsn`.",
        ),
        PropertySpec::optional(
            "username",
            PropertyKind::String,
            Some("default"),
            "User name.",
        ),
        PropertySpec::optional(
            "password",
            PropertyKind::Secret,
            None,
            "Password (empty by default).",
        ),
        PropertySpec::optional(
            "database",
            PropertyKind::String,
            Some("default"),
            "Database of the table.",
        ),
        PropertySpec::optional(
            "engine",
            PropertyKind::String,
            None,
            "Creates the table from the record schema when it does not exist: `CREATE TABLE IF NOT EXISTS db.t (cols) ENGINE = <engine> <suffix>`.",
        ),
        PropertySpec::optional(
            "suffix",
            PropertyKind::String,
            None,
            "Appended after the engine when creating the table (`ORDER BY ...`, `PARTITION BY ...`, `SETTINGS ...`).",
        ),
        PropertySpec::optional(
            "init_sql",
            PropertyKind::String,
            None,
            "SQL run once before the first insert (`engine` and `suffix` are then ignored).",
        ),
        PropertySpec::optional(
            "batch_count",
            PropertyKind::Integer,
            Some("128"),
            "Rows per insert.",
        ),
        PropertySpec::optional(
            "batch_duration",
            PropertyKind::Duration,
            Some("100ms"),
            "Longest wait before a partial batch is inserted.",
        ),
        PropertySpec::optional(
            "timeout",
            PropertyKind::Duration,
            Some("30s"),
            "Timeout of each HTTP request.",
        ),
        PropertySpec::optional(
            "retry_timeout",
            PropertyKind::Duration,
            Some("2m"),
            "How long an insert keeps retrying transient failures before its batch fails (and the source delivers it again).",
        ),
        PropertySpec::optional(
            "parallelism",
            PropertyKind::Integer,
            Some("2"),
            "Inserts in flight at once.",
        ),
        PropertySpec::optional(
            "settings",
            PropertyKind::Map,
            Some("{}"),
            "ClickHouse settings sent with every insert, e.g. `{\"insert_quorum\": \"2\"}`.",
        ),
        tls::SKIP_VERIFY_SERVER,
        tls::CA_CERT.with_aliases(&["tls.ca_file"]),
    ],
};

/// One ClickHouse HTTP endpoint.
///
/// ```
/// use sink_clickhouse::Endpoint;
///
/// let e = Endpoint::parse("ch1.example.com").unwrap();
/// assert_eq!(e.to_string(), "http://ch1.example.com:8123");
/// let e = Endpoint::parse("https://ch1.example.com").unwrap();
/// assert_eq!(e.to_string(), "https://ch1.example.com:8443");
/// let e = Endpoint::parse("[::1]:9123").unwrap();
/// assert_eq!((e.host.as_str(), e.port, e.tls), ("::1", 9123, false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `https` when true.
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// HTTP(S) port.
    pub port: u16,
}

impl Endpoint {
    /// A plain HTTP endpoint.
    pub fn http(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            tls: false,
            host: host.into(),
            port,
        }
    }

    /// An HTTPS endpoint.
    pub fn https(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            tls: true,
            host: host.into(),
            port,
        }
    }

    /// Parses `host`, `host:port`, `http://host:port` or `https://host:port`
    /// (ports default to 8123, or 8443 for https).
    pub fn parse(text: &str) -> std::result::Result<Endpoint, String> {
        Endpoint::parse_with(text, false)
    }

    fn parse_with(text: &str, default_tls: bool) -> std::result::Result<Endpoint, String> {
        let trimmed = text.trim().trim_end_matches('/');
        let (tls, rest) = if let Some(rest) = trimmed.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = trimmed.strip_prefix("http://") {
            (false, rest)
        } else if trimmed.contains("://") {
            return Err(format!(
                "`{trimmed}`: only http:// and https:// endpoints are supported"
            ));
        } else {
            (default_tls, trimmed)
        };
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            let (host, tail) = after
                .split_once(']')
                .ok_or_else(|| format!("`{trimmed}`: unclosed `[` in the IPv6 address"))?;
            let port = match tail.strip_prefix(':') {
                Some(p) => Some(p),
                None if tail.is_empty() => None,
                None => return Err(format!("`{trimmed}` is not `host:port`")),
            };
            (host, port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(format!("`{trimmed}` is not `host:port`"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{trimmed}`: `{p}` is not a port number"))?,
            None if tls => 8443,
            None => 8123,
        };
        Ok(Endpoint {
            tls,
            host: host.to_owned(),
            port,
        })
    }

    /// `http://host:port/` (IPv6 hosts in brackets).
    pub fn base_url(&self) -> String {
        format!("{self}/")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Typed configuration of [`ClickHouseSink`](crate::ClickHouseSink).
///
/// ```
/// use sink_clickhouse::{ClickHouseConfig, Endpoint};
/// use std::time::Duration;
///
/// let config = ClickHouseConfig::new("events", vec![Endpoint::http("127.0.0.1", 8123)])
///     .credentials("writer", "secret")
///     .database("metrics")
///     .engine("MergeTree")
///     .suffix("ORDER BY time")
///     .batch_count(10_000)
///     .batch_duration(Duration::from_secs(1));
/// assert_eq!(config.batch_count, 10_000);
/// assert!(!format!("{config:?}").contains("secret"));
///
/// let from_dsn = ClickHouseConfig::from_dsn("events", "clickhouse://writer:secret@127.0.0.1:8123/metrics").unwrap();
/// assert_eq!(from_dsn.database, "metrics");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClickHouseConfig {
    /// Target table (`table_name`); `db.table` names its database too.
    pub table: String,
    /// Database of the table, unless `table` names one.
    pub database: String,
    /// HTTP endpoints, tried in turn.
    pub endpoints: Vec<Endpoint>,
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Engine for creating the table from the record schema.
    pub engine: Option<String>,
    /// Appended after the engine when creating the table.
    pub suffix: Option<String>,
    /// SQL run once before the first insert; `engine`/`suffix` are then ignored.
    pub init_sql: Option<String>,
    /// Rows per insert.
    pub batch_count: usize,
    /// Longest wait before a partial batch is inserted.
    pub batch_duration: Duration,
    /// Timeout of each HTTP request.
    pub timeout: Duration,
    /// How long an insert keeps retrying transient failures.
    pub retry_timeout: Duration,
    /// Inserts in flight at once.
    pub parallelism: usize,
    /// ClickHouse settings sent with every insert.
    pub settings: BTreeMap<String, String>,
    /// How HTTPS endpoints are verified (`tls.skip_verify_server`,
    /// `tls.ca_cert`).
    pub tls: TlsSettings,
    /// The record schema, when known before the first batch: lets
    /// [`check`](connector_core::Sink::check) verify that the table's
    /// columns fit it. Not a property (set it from the source's schema).
    pub schema: Option<Arc<Schema>>,
}

impl ClickHouseConfig {
    /// Defaults for `table` at `endpoints`: user `default` without password,
    /// database `default`, batches of 128 rows or 100ms.
    pub fn new(table: impl Into<String>, endpoints: Vec<Endpoint>) -> Self {
        ClickHouseConfig {
            table: table.into(),
            database: "default".into(),
            endpoints,
            username: "default".into(),
            password: Secret::default(),
            engine: None,
            suffix: None,
            init_sql: None,
            batch_count: 128,
            batch_duration: Duration::from_millis(100),
            timeout: Duration::from_secs(30),
            retry_timeout: Duration::from_secs(120),
            parallelism: 2,
            settings: BTreeMap::new(),
            tls: TlsSettings::default(),
            schema: None,
        }
    }

    /// Defaults for `table`, with endpoints, credentials, database and
    /// settings from a DSN (see [`SPEC`]'s `dsn`).
    pub fn from_dsn(table: impl Into<String>, dsn: &str) -> Result<Self> {
        let parsed =
            parse_dsn(dsn).map_err(|reason| Error::config(SPEC.component(), "dsn", reason))?;
        let mut config = ClickHouseConfig::new(table, parsed.endpoints);
        config.apply_dsn_parts(parsed.username, parsed.password, parsed.database);
        config.settings = parsed.settings;
        config.tls.skip_verify_server = parsed.skip_verify;
        Ok(config)
    }

    fn apply_dsn_parts(
        &mut self,
        username: Option<String>,
        password: Option<Secret>,
        database: Option<String>,
    ) {
        if let Some(u) = username {
            self.username = u;
        }
        if let Some(p) = password {
            self.password = p;
        }
        if let Some(d) = database {
            self.database = d;
        }
    }

    /// Sets user name and password.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.username = username.into();
        self.password = password.into();
        self
    }

    /// Sets the database.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Sets the engine used to create the table.
    pub fn engine(mut self, engine: impl Into<String>) -> Self {
        self.engine = Some(engine.into());
        self
    }

    /// Sets the suffix used to create the table.
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = Some(suffix.into());
        self
    }

    /// Sets SQL to run once before the first insert.
    pub fn init_sql(mut self, sql: impl Into<String>) -> Self {
        self.init_sql = Some(sql.into());
        self
    }

    /// Sets the rows per insert.
    pub fn batch_count(mut self, rows: usize) -> Self {
        self.batch_count = rows.max(1);
        self
    }

    /// Sets the longest wait for a partial batch.
    pub fn batch_duration(mut self, wait: Duration) -> Self {
        self.batch_duration = wait;
        self
    }

    /// Sets the timeout of each request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long an insert keeps retrying.
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }

    /// Sets the number of inserts in flight at once.
    pub fn parallelism(mut self, inserts: usize) -> Self {
        self.parallelism = inserts.max(1);
        self
    }

    /// Adds a ClickHouse setting sent with every insert.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(name.into(), value.into());
        self
    }

    /// Skips server certificate checks (`tls.skip_verify_server`).
    pub fn skip_verify(mut self, skip: bool) -> Self {
        self.tls.skip_verify_server = skip;
        self
    }

    /// Trusts the certificate authorities in a PEM file (`tls.ca_cert`).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_cert = Some(path.into());
        self
    }

    /// Declares the record schema ahead of the first batch (see [`ClickHouseConfig::schema`]).
    pub fn with_schema(mut self, schema: Arc<Schema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// The database and table the sink writes to: `table` may be `db.table`.
    pub fn target(&self) -> (String, String) {
        let name = self.table.trim();
        if let Some(quoted) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) {
            return (self.database.clone(), quoted.to_owned());
        }
        match name.split_once('.') {
            Some((db, table)) if !db.is_empty() && !table.is_empty() => (
                db.trim_matches('`').to_owned(),
                table.trim_matches('`').to_owned(),
            ),
            _ => (self.database.clone(), name.to_owned()),
        }
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let table: String = r.required("table_name");
        let dsn: Option<Secret> = r.optional("dsn");
        let hosts: Option<Vec<String>> = r.optional("hosts");
        let username: Option<String> = r.optional("username");
        let password: Option<Secret> = r.optional("password");
        let database: Option<String> = r.optional("database");
        let engine: Option<String> = r.optional("engine");
        let suffix: Option<String> = r.optional("suffix");
        let init_sql: Option<String> = r.optional("init_sql");
        let batch_count: usize = r.required("batch_count");
        let batch_duration: Duration = r.required("batch_duration");
        let timeout: Duration = r.required("timeout");
        let retry_timeout: Duration = r.required("retry_timeout");
        let parallelism: usize = r.required("parallelism");
        let mut settings: BTreeMap<String, String> = r.required("settings");
        let tls = TlsSettings::read(&mut r);

        if table.trim().is_empty() && r.is_set("table_name") {
            r.invalid("table_name", "must not be empty");
        }
        if batch_count == 0 {
            r.invalid("batch_count", "must be at least 1");
        }
        if parallelism == 0 {
            r.invalid("parallelism", "must be at least 1");
        }
        if timeout.is_zero() {
            r.invalid("timeout", "must be more than 0");
        }
        for name in settings.keys() {
            if !is_setting_name(name) {
                r.invalid(
                    "settings",
                    format!("`{name}` is not a ClickHouse setting name"),
                );
            }
        }

        let mut endpoints = Vec::new();
        let mut dsn_parts = None;
        let mut dsn_skip_verify = false;
        match (&dsn, &hosts) {
            (Some(dsn), _) => {
                let ignored: Vec<&str> = ["hosts", "username", "password", "database"]
                    .into_iter()
                    .filter(|p| r.is_set(p))
                    .collect();
                if !ignored.is_empty() {
                    warn!(
                        ignored = ignored.join(", "),
                        "clickhouse sink: `dsn` is set, so these properties are ignored"
                    );
                }
                match parse_dsn(dsn.expose()) {
                    Ok(parsed) => {
                        endpoints = parsed.endpoints;
                        dsn_skip_verify = parsed.skip_verify;
                        for (k, v) in parsed.settings {
                            settings.entry(k).or_insert(v);
                        }
                        dsn_parts = Some((parsed.username, parsed.password, parsed.database));
                    }
                    Err(reason) => r.invalid("dsn", reason),
                }
            }
            (None, Some(hosts)) => {
                if hosts.is_empty() {
                    r.invalid("hosts", "must list at least one `host:port`");
                }
                for host in hosts {
                    match Endpoint::parse(host) {
                        Ok(e) => endpoints.push(e),
                        Err(reason) => r.invalid("hosts", reason),
                    }
                }
            }
            (None, None) => r.invalid(
                "hosts",
                "required property is missing (give `dsn`, or `hosts` with `username`, `password` and `database`)",
            ),
        }
        r.finish()?;

        let mut config = ClickHouseConfig::new(table.trim(), endpoints);
        match dsn_parts {
            Some((u, p, d)) => config.apply_dsn_parts(u, p, d),
            None => config.apply_dsn_parts(username, password, database),
        }
        config.engine = engine.filter(|e| !e.trim().is_empty());
        config.suffix = suffix.filter(|s| !s.trim().is_empty());
        config.init_sql = init_sql.filter(|s| !s.trim().is_empty());
        config.batch_count = batch_count;
        config.batch_duration = batch_duration;
        config.timeout = timeout;
        config.retry_timeout = retry_timeout;
        config.parallelism = parallelism;
        config.settings = settings;
        config.tls = TlsSettings {
            skip_verify_server: tls.skip_verify_server || dsn_skip_verify,
            ..tls
        };
        Ok(config)
    }
}

fn is_setting_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What a DSN says.
struct Dsn {
    endpoints: Vec<Endpoint>,
    username: Option<String>,
    password: Option<Secret>,
    database: Option<String>,
    skip_verify: bool,
    settings: BTreeMap<String, String>,
}

/// Parameters of Go `clickhouse-go` DSNs that configure that client only;
/// they are accepted so existing DSNs work, and not sent to the server.
const CLIENT_ONLY_PARAMS: &[&str] = &[
    "dial_timeout",
    "read_timeout",
    "compress",
    "compress_level",
    "connection_open_strategy",
    "debug",
    "block_buffer_size",
    "max_compression_buffer",
    "client_info_product",
    "max_open_conns",
    "max_idle_conns",
    "conn_max_lifetime",
    "http_proxy",
];

/// Parses `scheme://[user[:pass]@]host[:port][,host[:port]...][/database][?params]`.
/// Error messages never include the password.
fn parse_dsn(dsn: &str) -> std::result::Result<Dsn, String> {
    let dsn = dsn.trim();
    let (scheme, rest) = dsn
        .split_once("://")
        .ok_or("expected `clickhouse://user:password@host:port/database`")?;
    let scheme_tls = match scheme.to_ascii_lowercase().as_str() {
        "clickhouse" | "http" => false,
        "https" => true,
        "tcp" => {
            return Err(
                "`tcp://` is ClickHouse's native protocol; this sink uses the HTTP interface (`clickhouse://host:8123` or `https://host:8443`)"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "unsupported scheme `{other}://` (use `clickhouse://`, `http://` or `https://`)"
            ));
        }
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let decode = |s: &str, what: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| format!("the {what} in the DSN is not valid percent-encoded UTF-8"))
    };
    let (mut username, mut password) = (None, None);
    if let Some(info) = userinfo {
        let (u, p) = match info.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (info, None),
        };
        if !u.is_empty() {
            username = Some(decode(u, "user name")?);
        }
        if let Some(p) = p {
            password = Some(Secret::new(decode(p, "password")?));
        }
    }
    let mut database = {
        let db = path.trim_matches('/');
        (!db.is_empty())
            .then(|| decode(db, "database"))
            .transpose()?
    };
    let mut tls = scheme_tls;
    let mut skip_verify = false;
    let mut settings = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, "parameter name")?;
        let value = decode(value, "parameter value")?;
        let flag = || match value.as_str() {
            "true" | "1" | "" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!("`{key}` expects true or false, got `{other}`")),
        };
        match key.as_str() {
            "secure" => tls = flag()?,
            "skip_verify" => skip_verify = flag()?,
            "database" => database = Some(value),
            "username" => username = Some(value),
            "password" => password = Some(Secret::new(value)),
            k if CLIENT_ONLY_PARAMS.contains(&k) => {}
            k if is_setting_name(k) => {
                settings.insert(key, value);
            }
            _ => return Err(format!("`{key}` is not a valid parameter name")),
        }
    }
    let mut endpoints = Vec::new();
    for (i, host) in hosts
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .enumerate()
    {
        // Not echoed: a DSN written without `@` has the password here.
        let endpoint = Endpoint::parse_with(host, tls).map_err(|_| {
            format!(
                "host {} of the DSN is not `host` or `host:port` with a port number",
                i + 1
            )
        })?;
        endpoints.push(endpoint);
    }
    if endpoints.is_empty() {
        return Err("the DSN names no host".into());
    }
    Ok(Dsn {
        endpoints,
        username,
        password,
        database,
        skip_verify,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_parts() {
        let c = ClickHouseConfig::from_dsn(
            "t",
            "clickhouse://wr%40iter:p%3Ass@h1:8123,h2/metrics?secure=true&skip_verify=1&dial_timeout=1s&insert_quorum=2",
        )
        .unwrap();
        assert_eq!(c.username, "wr@iter");
        assert_eq!(c.password.expose(), "p:ss");
        assert_eq!(c.database, "metrics");
        assert_eq!(
            c.endpoints,
            vec![Endpoint::https("h1", 8123), Endpoint::https("h2", 8443)]
        );
        assert!(c.tls.skip_verify_server);
        assert_eq!(
            c.settings.into_iter().collect::<Vec<_>>(),
            vec![("insert_quorum".to_owned(), "2".to_owned())]
        );
    }

    #[test]
    fn dsn_errors_hide_the_password() {
        let err = ClickHouseConfig::from_dsn("t", "tcp://u:hunter2@h:9000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("native protocol"), "{err}");
        assert!(!err.contains("hunter2"));
        let err = ClickHouseConfig::from_dsn("t", "clickhouse://u:hunter2@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "clickhouse sink: property `dsn`: host 1 of the DSN is not `host` or `host:port` with a port number"
        );
        // Without `@`, the password would sit where the host belongs.
        let err = ClickHouseConfig::from_dsn("t", "clickhouse://u:hunter2/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn properties_with_hosts() {
        let props = Properties::from_pairs([
            ("table_name", "db1.events"),
            ("hosts", "a:8123, https://b"),
            ("username", "writer"),
            ("password", "pw"),
            ("batch_count", "500"),
            ("batch_duration", "1s"),
        ]);
        let c = ClickHouseConfig::from_properties(&props).unwrap();
        assert_eq!(c.target(), ("db1".into(), "events".into()));
        assert_eq!(
            c.endpoints,
            vec![Endpoint::http("a", 8123), Endpoint::https("b", 8443)]
        );
        assert_eq!(
            (c.batch_count, c.batch_duration),
            (500, Duration::from_secs(1))
        );
        assert_eq!(c.database, "default");
        assert!(!format!("{c:?}").contains("\"pw\""));
    }

    #[test]
    fn dsn_wins() {
        let props = Properties::from_pairs([
            ("table_name", "t"),
            ("dsn", "clickhouse://u:p@dsnhost:8123/dsndb"),
            ("hosts", "other:8123"),
            ("database", "ignored"),
        ]);
        let c = ClickHouseConfig::from_properties(&props).unwrap();
        assert_eq!(c.endpoints, vec![Endpoint::http("dsnhost", 8123)]);
        assert_eq!((c.username.as_str(), c.database.as_str()), ("u", "dsndb"));
    }

    #[test]
    fn every_problem_at_once() {
        let props = Properties::from_pairs([
            ("hosts", "a:notaport"),
            ("batch_count", "0"),
            ("engin", "MergeTree"),
        ]);
        let err = ClickHouseConfig::from_properties(&props)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("clickhouse sink: invalid configuration:"),
            "{err}"
        );
        assert!(
            err.contains("property `table_name`: required property is missing"),
            "{err}"
        );
        assert!(
            err.contains("`a:notaport`: `notaport` is not a port number"),
            "{err}"
        );
        assert!(
            err.contains("property `batch_count`: must be at least 1"),
            "{err}"
        );
        assert!(err.contains("did you mean `engine`?"), "{err}");
    }

    #[test]
    fn hosts_or_dsn_required() {
        let err = ClickHouseConfig::from_properties(&Properties::from_pairs([("table_name", "t")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `hosts`: required property is missing (give `dsn`"),
            "{err}"
        );
    }
}
