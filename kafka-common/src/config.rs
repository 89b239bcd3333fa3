//! The Kafka client settings shared by the source and the sink: brokers,
//! SASL and TLS, as properties and as a typed config, and their mapping to
//! librdkafka properties.

use std::collections::BTreeMap;
use std::fmt;

use connector_core::Secret;
use connector_core::config::{PropertyKind, PropertyReader, PropertySpec};
use rdkafka::ClientConfig;

/// The `brokers` property.
pub const BROKERS: PropertySpec = PropertySpec::required(
    "brokers",
    PropertyKind::List,
    "Broker addresses, a comma-separated `host:port` list such as `kafka1:9092,kafka2:9092`.",
);

/// The SASL mechanisms of the `sasl` property.
pub const SASL_CHOICES: &[&str] = &["none", "plain", "scram-sha-256", "scram-sha-512"];

/// The `sasl` property.
pub const SASL: PropertySpec = PropertySpec::optional(
    "sasl",
    PropertyKind::Choice(SASL_CHOICES),
    Some("none"),
    "SASL mechanism: `none`, `plain`, `scram-sha-256` or `scram-sha-512`.",
);

/// The `username` property.
pub const USERNAME: PropertySpec = PropertySpec::optional(
    "username",
    PropertyKind::String,
    None,
    "SASL user name (required when `sasl` is not `none`).",
);

/// The `password` property.
pub const PASSWORD: PropertySpec = PropertySpec::optional(
    "password",
    PropertyKind::Secret,
    None,
    "SASL password (required when `sasl` is not `none`).",
);

/// The `tls.disable` property.
pub const TLS_DISABLE: PropertySpec = PropertySpec::optional(
    "tls.disable",
    PropertyKind::Boolean,
    Some("false"),
    "`true` turns TLS off (plain TCP).",
);

/// The `tls.skip_verify_server` property.
pub const TLS_SKIP_VERIFY_SERVER: PropertySpec = PropertySpec::optional(
    "tls.skip_verify_server",
    PropertyKind::Boolean,
    Some("false"),
    "`true` skips the server certificate and host name checks.",
);

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password in the clear (use with TLS).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// The name librdkafka's `sasl.mechanisms` takes.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The spelling of the `sasl` property.
    pub fn property_name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "plain",
            SaslMechanism::ScramSha256 => "scram-sha-256",
            SaslMechanism::ScramSha512 => "scram-sha-512",
        }
    }

    /// Reads the `sasl` property's spelling; `none` and unknown words give `None`.
    pub fn from_property(name: &str) -> Option<SaslMechanism> {
        match name {
            "plain" => Some(SaslMechanism::Plain),
            "scram-sha-256" => Some(SaslMechanism::ScramSha256),
            "scram-sha-512" => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.librdkafka_name())
    }
}

/// SASL authentication: a mechanism and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password (never printed).
    pub password: Secret,
}

/// How to reach and authenticate to a Kafka cluster.
///
/// The defaults follow the properties: TLS on and verified, no SASL.
///
/// ```
/// use kafka_common::{KafkaClientConfig, SaslMechanism};
///
/// let config = KafkaClientConfig::new(["kafka1:9092", "kafka2:9092"])
///     .sasl(SaslMechanism::ScramSha512, "alice", "s3cret");
/// let librdkafka = config.client_config();
/// assert_eq!(librdkafka.get("bootstrap.servers"), Some("kafka1:9092,kafka2:9092"));
/// assert_eq!(librdkafka.get("security.protocol"), Some("sasl_ssl"));
/// assert_eq!(librdkafka.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaClientConfig {
    /// Bootstrap brokers, `host:port` each.
    pub brokers: Vec<String>,
    /// SASL authentication, if any.
    pub sasl: Option<SaslConfig>,
    /// Whether connections use TLS.
    pub tls: bool,
    /// Whether TLS skips the certificate and host name checks.
    pub tls_skip_verify: bool,
    /// Further librdkafka properties (e.g. `ssl.ca.location`,
    /// `session.timeout.ms`), applied last so they override what the
    /// connector sets. Their values are never printed.
    pub options: BTreeMap<String, String>,
}

impl KafkaClientConfig {
    /// Brokers with the defaults: TLS on and verified, no SASL.
    pub fn new<S: Into<String>>(brokers: impl IntoIterator<Item = S>) -> Self {
        KafkaClientConfig {
            brokers: brokers.into_iter().map(Into::into).collect(),
            sasl: None,
            tls: true,
            tls_skip_verify: false,
            options: BTreeMap::new(),
        }
    }

    /// Turns TLS off (`tls.disable=true`).
    pub fn without_tls(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Skips the server certificate checks (`tls.skip_verify_server=true`).
    pub fn skip_verify_server(mut self) -> Self {
        self.tls_skip_verify = true;
        self
    }

    /// Authenticates with SASL.
    pub fn sasl(
        mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        self.sasl = Some(SaslConfig {
            mechanism,
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Sets a further librdkafka property.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// Reads `brokers`, `sasl`, `username`, `password`, `tls.disable` and
    /// `tls.skip_verify_server`; the connector's spec must list them (see
    /// [`crate::CLIENT_PROPERTIES`]). Problems are recorded in the reader.
    pub fn read(reader: &mut PropertyReader<'_>) -> Self {
        let brokers: Vec<String> = reader.required("brokers");
        if reader.is_set("brokers") {
            check_brokers(reader, &brokers);
        }
        let sasl: String = reader.required("sasl");
        let username: Option<String> = reader.optional("username");
        let password: Option<Secret> = reader.optional("password");
        let tls_disable: bool = reader.required("tls.disable");
        let tls_skip_verify: bool = reader.required("tls.skip_verify_server");
        let sasl = match SaslMechanism::from_property(&sasl) {
            Some(mechanism) => {
                let username = username.filter(|u| !u.is_empty());
                let password = password.filter(|p| !p.is_empty());
                if username.is_none() {
                    reader.invalid("username", format!("required when `sasl` is `{sasl}`"));
                }
                if password.is_none() {
                    reader.invalid("password", format!("required when `sasl` is `{sasl}`"));
                }
                Some(SaslConfig {
                    mechanism,
                    username: username.unwrap_or_default(),
                    password: password.unwrap_or_default(),
                })
            }
            None => {
                if username.is_some() || password.is_some() {
                    let which = if username.is_some() {
                        "username"
                    } else {
                        "password"
                    };
                    reader.invalid(
                        which,
                        "only used with SASL; set `sasl` to `plain`, `scram-sha-256` or `scram-sha-512`",
                    );
                }
                None
            }
        };
        if tls_disable && tls_skip_verify {
            reader.invalid(
                "tls.skip_verify_server",
                "has no effect when `tls.disable` is `true`",
            );
        }
        KafkaClientConfig {
            brokers,
            sasl,
            tls: !tls_disable,
            tls_skip_verify,
            options: BTreeMap::new(),
        }
    }

    /// librdkafka's `security.protocol`: `plaintext`, `ssl`,
    /// `sasl_plaintext` or `sasl_ssl`.
    pub fn security_protocol(&self) -> &'static str {
        match (self.sasl.is_some(), self.tls) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        }
    }

    /// The brokers as librdkafka's `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.brokers.join(",")
    }

    /// The librdkafka properties for these settings (connectors add their
    /// own, e.g. `group.id`, before creating a client). The result holds the
    /// password: never print it.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap_servers());
        config.set("security.protocol", self.security_protocol());
        if let Some(sasl) = &self.sasl {
            config.set("sasl.mechanisms", sasl.mechanism.librdkafka_name());
            config.set("sasl.username", sasl.username.as_str());
            config.set("sasl.password", sasl.password.expose());
        }
        if self.tls {
            if self.tls_skip_verify {
                config.set("enable.ssl.certificate.verification", "false");
                config.set("ssl.endpoint.identification.algorithm", "none");
            } else {
                config.set("enable.ssl.certificate.verification", "true");
                config.set("ssl.endpoint.identification.algorithm", "https");
            }
        }
        for (key, value) in &self.options {
            config.set(key.as_str(), value.as_str());
        }
        config
    }

    /// The librdkafka properties with every secret value replaced by `***`,
    /// for logs and tests.
    pub fn redacted_client_config(&self) -> BTreeMap<String, String> {
        redact(&self.client_config())
    }
}

/// The properties of `config` with secret values (`sasl.password`,
/// `ssl.key.password`, ...) replaced by `***`.
pub fn redact(config: &ClientConfig) -> BTreeMap<String, String> {
    config
        .config_map()
        .into_iter()
        .map(|(k, v)| {
            let value = if is_secret_key(k) { "***" } else { v };
            (k.to_owned(), value.to_owned())
        })
        .collect()
}

/// Whether a librdkafka property holds a secret.
fn is_secret_key(key: &str) -> bool {
    key.contains("password")
        || key.contains("secret")
        || key == "ssl.key.pem"
        || key == "sasl.oauthbearer.config"
}

fn check_brokers(reader: &mut PropertyReader<'_>, brokers: &[String]) {
    if brokers.is_empty() {
        reader.invalid("brokers", "expected at least one `host:port`");
        return;
    }
    for broker in brokers {
        if let Err(reason) = check_broker(broker) {
            reader.invalid("brokers", reason);
        }
    }
}

/// Checks one `host:port` (a host alone is allowed: librdkafka uses 9092).
fn check_broker(broker: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "`{broker}` is not a `host:port` broker address: {why}"
        ))
    };
    if broker.chars().any(char::is_whitespace) {
        return bad("it contains a space");
    }
    // Strip an optional `PROTOCOL://` prefix, as librdkafka accepts one.
    let address = broker.split_once("://").map_or(broker, |(_, rest)| rest);
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        // [ipv6]:port
        match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => return bad("unclosed `[`"),
        }
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() {
        return bad("the host is empty");
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return bad("the port must be a number from 1 to 65535"),
        }
    }
    Ok(())
}

impl fmt::Debug for KafkaClientConfig {
    /// Prints the settings with the password and every option value hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaClientConfig")
            .field("brokers", &self.brokers)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls)
            .field("tls_skip_verify", &self.tls_skip_verify)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::Properties;
    use connector_core::config::{ConnectorSpec, Role};

    static SPEC: ConnectorSpec = ConnectorSpec {
        name: "kafka",
        role: Role::Source,
        description: "test",
        properties: crate::CLIENT_PROPERTIES,
    };

    fn read(pairs: &[(&str, &str)]) -> connector_core::Result<KafkaClientConfig> {
        let props = Properties::from_pairs(pairs.iter().copied());
        let mut reader = PropertyReader::new(&SPEC, &props);
        let config = KafkaClientConfig::read(&mut reader);
        reader.finish().map(|()| config)
    }

    fn mapping(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        read(pairs).unwrap().redacted_client_config()
    }

    /// SPEC.md's table: `sasl` × `tls.disable` → `security.protocol` and
    /// `sasl.mechanisms`, at the level of the librdkafka properties.
    #[test]
    fn sasl_and_tls_map_to_librdkafka_properties() {
        let cases = [
            ("none", "false", "ssl", None),
            ("none", "true", "plaintext", None),
            ("plain", "false", "sasl_ssl", Some("PLAIN")),
            ("plain", "true", "sasl_plaintext", Some("PLAIN")),
            ("scram-sha-256", "false", "sasl_ssl", Some("SCRAM-SHA-256")),
            (
                "scram-sha-256",
                "true",
                "sasl_plaintext",
                Some("SCRAM-SHA-256"),
            ),
            ("scram-sha-512", "false", "sasl_ssl", Some("SCRAM-SHA-512")),
            (
                "scram-sha-512",
                "true",
                "sasl_plaintext",
                Some("SCRAM-SHA-512"),
            ),
        ];
        for (sasl, tls_disable, protocol, mechanism) in cases {
            let mut pairs = vec![
                ("brokers", "k1:9092,k2:9093"),
                ("sasl", sasl),
                ("tls.disable", tls_disable),
            ];
            if mechanism.is_some() {
                pairs.extend([("username", "alice"), ("password", "s3cret")]);
            }
            let m = mapping(&pairs);
            let case = format!("sasl={sasl} tls.disable={tls_disable}");
            assert_eq!(m["bootstrap.servers"], "k1:9092,k2:9093", "{case}");
            assert_eq!(m["security.protocol"], protocol, "{case}");
            assert_eq!(
                m.get("sasl.mechanisms").map(String::as_str),
                mechanism,
                "{case}"
            );
            if mechanism.is_some() {
                assert_eq!(m["sasl.username"], "alice", "{case}");
                assert_eq!(m["sasl.password"], "***", "{case}");
            } else {
                assert!(!m.contains_key("sasl.username"), "{case}");
            }
            // TLS verification is on unless asked otherwise.
            if tls_disable == "false" {
                assert_eq!(m["enable.ssl.certificate.verification"], "true", "{case}");
                assert_eq!(m["ssl.endpoint.identification.algorithm"], "https");
            } else {
                assert!(!m.contains_key("enable.ssl.certificate.verification"));
            }
        }
        // The real client config carries the password for librdkafka.
        let config = read(&[
            ("brokers", "k:9092"),
            ("sasl", "plain"),
            ("username", "u"),
            ("password", "s3cret"),
        ])
        .unwrap();
        assert_eq!(config.client_config().get("sasl.password"), Some("s3cret"));
    }

    /// Every row of the table gives settings librdkafka accepts: the build
    /// has TLS and SASL SCRAM support.
    #[test]
    fn librdkafka_accepts_every_mapping() {
        for sasl in SASL_CHOICES {
            for tls_disable in ["false", "true"] {
                let mut pairs = vec![
                    ("brokers", "127.0.0.1:1"),
                    ("sasl", *sasl),
                    ("tls.disable", tls_disable),
                ];
                if *sasl != "none" {
                    pairs.extend([("username", "alice"), ("password", "s3cret")]);
                }
                let config = read(&pairs).unwrap();
                let created: rdkafka::error::KafkaResult<rdkafka::consumer::BaseConsumer> =
                    config.client_config().create();
                if let Err(e) = created {
                    panic!(
                        "sasl={sasl} tls.disable={tls_disable}: {}",
                        crate::error::describe(&e)
                    );
                }
            }
        }
    }

    #[test]
    fn skip_verify_turns_both_checks_off() {
        let m = mapping(&[("brokers", "k:9092"), ("tls.skip_verify_server", "true")]);
        assert_eq!(m["security.protocol"], "ssl");
        assert_eq!(m["enable.ssl.certificate.verification"], "false");
        assert_eq!(m["ssl.endpoint.identification.algorithm"], "none");
    }

    #[test]
    fn sasl_needs_credentials() {
        let err = read(&[("brokers", "k:9092"), ("sasl", "scram-sha-256")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `username`: required when `sasl` is `scram-sha-256`"),
            "{err}"
        );
        assert!(
            err.contains("property `password`: required when `sasl` is `scram-sha-256`"),
            "{err}"
        );
        let err = read(&[("brokers", "k:9092"), ("username", "u")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `username`: only used with SASL"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = read(&[("brokers", "k:9092"), ("sasl", "gssapi")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `sasl`: expected one of `none`, `plain`, `scram-sha-256`, `scram-sha-512`, got `gssapi`"),
            "{err}"
        );
        let err = read(&[("brokers", "k:90x2, ok:1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `brokers`: `k:90x2` is not a `host:port` broker address: the port must be a number"),
            "{err}"
        );
        let err = read(&[("brokers", "")]).unwrap_err().to_string();
        assert!(
            err.contains("property `brokers`: expected at least one"),
            "{err}"
        );
        let err = read(&[("sasl", "none")]).unwrap_err().to_string();
        assert!(
            err.contains("property `brokers`: required property is missing"),
            "{err}"
        );
        let err = read(&[
            ("brokers", "k"),
            ("tls.disable", "true"),
            ("tls.skip_verify_server", "true"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("has no effect"), "{err}");
    }

    #[test]
    fn broker_shapes() {
        for ok in [
            "k:9092",
            "k",
            "10.0.0.1:9092",
            "[::1]:9092",
            "SASL_SSL://k.example.com:9093",
        ] {
            assert!(check_broker(ok).is_ok(), "{ok}");
        }
        for bad in ["k:0", "k:", ":9092", "[::1:9092", "k :9092", "k:99999"] {
            assert!(check_broker(bad).is_err(), "{bad}");
        }
        let config = read(&[("brokers", r#"["a:1", "b:2"]"#), ("tls.disable", "true")]).unwrap();
        assert_eq!(config.bootstrap_servers(), "a:1,b:2");
    }

    #[test]
    fn secrets_stay_hidden() {
        let config = KafkaClientConfig::new(["k:9092"])
            .sasl(SaslMechanism::Plain, "alice", "hunter2")
            .option("ssl.key.password", "hunter3");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("hunter3"),
            "{debug}"
        );
        let redacted = format!("{:?}", config.redacted_client_config());
        assert!(!redacted.contains("hunter"), "{redacted}");
        assert!(redacted.contains("ssl.key.password"), "{redacted}");
    }

    #[test]
    fn options_override_connector_settings() {
        let config = KafkaClientConfig::new(["k:9092"])
            .without_tls()
            .option("security.protocol", "ssl")
            .option("session.timeout.ms", "6000");
        let c = config.client_config();
        assert_eq!(c.get("security.protocol"), Some("ssl"));
        assert_eq!(c.get("session.timeout.ms"), Some("6000"));
    }
}
