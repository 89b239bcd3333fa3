//! Typed configuration and its property-map form.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{Decoder, FormatConfig, props};
use connector_core::schema::Schema;
use connector_core::{Error, Properties, Result, Secret};

/// How errors and logs name this connector.
pub const COMPONENT: &str = "httppush source";

/// The properties of the `httppush` source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "httppush",
    role: Role::Source,
    description: "Receives records pushed by HTTP clients. Every httppush source of a process on the same address shares one HTTP server; each source serves its own endpoint (URL path).",
    properties: &[
        PropertySpec::optional(
            "http_server_ip",
            PropertyKind::String,
            Some("0.0.0.0"),
            "IP address the shared HTTP server listens on.",
        ),
        PropertySpec::optional(
            "http_server_port",
            PropertyKind::Integer,
            Some("10081"),
            "Port of the shared HTTP server (`0`: a port chosen by the system, see `local_addr`).",
        ),
        PropertySpec::optional(
            "certfile",
            PropertyKind::String,
            None,
            "PEM file with the server certificate chain; with `keyfile`, the server speaks HTTPS.",
        )
        .with_aliases(&["http_server_tls.certfile"]),
        PropertySpec::optional(
            "keyfile",
            PropertyKind::String,
            None,
            "PEM file with the private key of `certfile` (PKCS#8, PKCS#1 or SEC1).",
        )
        .with_aliases(&["http_server_tls.keyfile"]),
        PropertySpec::required(
            "endpoint",
            PropertyKind::String,
            "URL path this source serves, starting with `/`, e.g. `/api/data`.",
        ),
        PropertySpec::optional(
            "method",
            PropertyKind::String,
            Some("POST"),
            "HTTP method of the endpoint: `POST` or `PUT`.",
        ),
        props::FORMAT,
        props::DELIMITER,
        props::FIELDS,
        props::SCHEMA,
        props::STRICT_VALIDATION,
        props::TIMESTAMP,
        props::TIMESTAMP_FORMAT,
        props::PROTO_FILE,
        props::PROTO_MESSAGE,
        props::PROTO_INCLUDE_PATHS,
        PropertySpec::optional(
            "shared",
            PropertyKind::Boolean,
            Some("false"),
            "Several sources may serve the same endpoint; each of them gets every record.",
        ),
        PropertySpec::optional(
            "retain_size",
            PropertyKind::Integer,
            Some("0"),
            "Keep the last N records received for lookup (scan-table use); 0 keeps none.",
        ),
        PropertySpec::optional(
            "bearer_token",
            PropertyKind::Secret,
            None,
            "When set, requests must carry `Authorization: Bearer <token>` (else 401).",
        ),
        PropertySpec::optional(
            "wait_for_delivery",
            PropertyKind::Boolean,
            Some("false"),
            "Answer only after the sink delivered the request's records (200), or failed to (500).",
        ),
        PropertySpec::optional(
            "delivery_timeout",
            PropertyKind::Duration,
            Some("30s"),
            "With `wait_for_delivery`, how long a request waits for delivery before 504.",
        ),
        PropertySpec::optional(
            "max_body_bytes",
            PropertyKind::Integer,
            Some("4194304"),
            "Largest request body accepted, in bytes (larger: 413).",
        ),
        PropertySpec::optional(
            "max_pending_records",
            PropertyKind::Integer,
            Some("10000"),
            "Records accepted but not yet delivered; past this, requests get 429 until the pipeline catches up.",
        ),
        PropertySpec::optional(
            "max_pending_bytes",
            PropertyKind::Integer,
            Some("67108864"),
            "Request-body bytes accepted but not yet delivered; past this, requests get 429.",
        ),
        PropertySpec::optional(
            "retry_after",
            PropertyKind::Duration,
            Some("1s"),
            "The `Retry-After` sent with 429 (rounded up to whole seconds).",
        ),
        PropertySpec::optional(
            "batch_size",
            PropertyKind::Integer,
            Some("1024"),
            "Most records per batch handed to the pipeline.",
        ),
    ],
};

/// The HTTP method an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PushMethod {
    /// `POST` (the default).
    #[default]
    Post,
    /// `PUT`.
    Put,
}

impl PushMethod {
    /// `POST` or `PUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushMethod::Post => "POST",
            PushMethod::Put => "PUT",
        }
    }

    /// Parses `POST` or `PUT` (any case).
    pub fn parse(text: &str) -> Option<PushMethod> {
        if text.eq_ignore_ascii_case("POST") {
            Some(PushMethod::Post)
        } else if text.eq_ignore_ascii_case("PUT") {
            Some(PushMethod::Put)
        } else {
            None
        }
    }
}

impl fmt::Display for PushMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The certificate chain and key files of an HTTPS server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    /// PEM certificate chain (`certfile`).
    pub certfile: PathBuf,
    /// PEM private key (`keyfile`).
    pub keyfile: PathBuf,
}

/// Settings of the shared server. Every source configured with the same
/// address shares one server, so they must agree on TLS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpServerConfig {
    /// Address to listen on (`http_server_ip`, `http_server_port`).
    pub addr: SocketAddr,
    /// HTTPS when set (`certfile`, `keyfile`).
    pub tls: Option<TlsFiles>,
}

impl Default for HttpServerConfig {
    /// `0.0.0.0:10081`, plain HTTP.
    fn default() -> Self {
        HttpServerConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 10081),
            tls: None,
        }
    }
}

/// Builds a decoder for request bodies. Called once per concurrent request
/// that needs one (decoders are pooled and reused), so it should be cheap.
pub type DecoderFactory = Arc<dyn Fn() -> Box<dyn Decoder> + Send + Sync>;

/// How request bodies become records: a format from the properties, or a
/// decoder supplied in code.
#[derive(Clone)]
pub enum BodyFormat {
    /// `format` and its properties.
    Format(Box<FormatConfig>),
    /// A user-supplied decoder (see [`HttpPushConfig::with_decoder`]).
    Custom(DecoderFactory),
}

impl fmt::Debug for BodyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyFormat::Format(c) => f.debug_tuple("Format").field(&c.data_format).finish(),
            BodyFormat::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl BodyFormat {
    /// A factory for this format's decoders; a configuration error when the
    /// format cannot be built.
    pub(crate) fn factory(&self) -> Result<DecoderFactory> {
        match self {
            BodyFormat::Format(config) => {
                // Build one now so configuration errors surface at once.
                config.decoder()?;
                let config = config.clone();
                Ok(Arc::new(move || {
                    config
                        .decoder()
                        .expect("a format config that built a decoder once builds it again")
                }))
            }
            BodyFormat::Custom(factory) => Ok(factory.clone()),
        }
    }

    /// The records' schema, when known before any request arrives.
    pub(crate) fn schema(&self) -> Option<Arc<Schema>> {
        match self {
            BodyFormat::Format(config) => config.record_schema(),
            BodyFormat::Custom(_) => None,
        }
    }
}

/// Typed configuration of [`HttpPushSource`](crate::HttpPushSource).
///
/// ```
/// use source_httppush::{HttpPushConfig, PushMethod};
/// use connector_core::format::{DataFormat, FormatConfig};
/// use std::time::Duration;
///
/// let config = HttpPushConfig::new("/api/orders")
///     .with_address("127.0.0.1:8080".parse().unwrap())
///     .with_method(PushMethod::Put)
///     .with_format(FormatConfig::new(DataFormat::DELIMITED).with_fields(["id", "amount"]))
///     .with_wait_for_delivery(Duration::from_secs(10));
/// assert_eq!(config.endpoint, "/api/orders");
/// assert!(config.wait_for_delivery);
/// ```
#[derive(Debug, Clone)]
pub struct HttpPushConfig {
    /// The shared server this source's endpoint lives on.
    pub server: HttpServerConfig,
    /// URL path, starting with `/`.
    pub endpoint: String,
    /// `POST` or `PUT`.
    pub method: PushMethod,
    /// How bodies are decoded.
    pub format: BodyFormat,
    /// Several sources may serve the endpoint, each getting every record.
    pub shared: bool,
    /// Keep the last N records for lookup (0: none).
    pub retain_size: usize,
    /// Required `Authorization: Bearer` token.
    pub bearer_token: Option<Secret>,
    /// Answer after delivery instead of after queueing.
    pub wait_for_delivery: bool,
    /// How long a request waits for delivery before 504.
    pub delivery_timeout: Duration,
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// Records accepted and not yet delivered before 429.
    pub max_pending_records: usize,
    /// Body bytes accepted and not yet delivered before 429.
    pub max_pending_bytes: usize,
    /// `Retry-After` of a 429.
    pub retry_after: Duration,
    /// Most records per batch.
    pub batch_size: usize,
}

impl HttpPushConfig {
    /// Defaults for `endpoint`: `0.0.0.0:10081`, `POST`, JSON bodies.
    pub fn new(endpoint: impl Into<String>) -> Self {
        HttpPushConfig {
            server: HttpServerConfig::default(),
            endpoint: endpoint.into(),
            method: PushMethod::Post,
            format: BodyFormat::Format(Box::new(
                FormatConfig::new(connector_core::format::DataFormat::JSON)
                    .with_component(COMPONENT),
            )),
            shared: false,
            retain_size: 0,
            bearer_token: None,
            wait_for_delivery: false,
            delivery_timeout: Duration::from_secs(30),
            max_body_bytes: 4 * 1024 * 1024,
            max_pending_records: 10_000,
            max_pending_bytes: 64 * 1024 * 1024,
            retry_after: Duration::from_secs(1),
            batch_size: 1024,
        }
    }

    /// Sets the server address.
    pub fn with_address(mut self, addr: SocketAddr) -> Self {
        self.server.addr = addr;
        self
    }

    /// Serves HTTPS with this certificate chain and key.
    pub fn with_tls(mut self, certfile: impl Into<PathBuf>, keyfile: impl Into<PathBuf>) -> Self {
        self.server.tls = Some(TlsFiles {
            certfile: certfile.into(),
            keyfile: keyfile.into(),
        });
        self
    }

    /// Sets the method.
    pub fn with_method(mut self, method: PushMethod) -> Self {
        self.method = method;
        self
    }

    /// Decodes bodies with this format.
    pub fn with_format(mut self, format: FormatConfig) -> Self {
        self.format = BodyFormat::Format(Box::new(format.with_component(COMPONENT)));
        self
    }

    /// Decodes bodies with decoders from `factory` instead of a format.
    ///
    /// ```
    /// use connector_core::format::text::TextDecoder;
    /// use source_httppush::HttpPushConfig;
    ///
    /// let config = HttpPushConfig::new("/logs").with_decoder(|| Box::new(TextDecoder::new()));
    /// # let _ = config;
    /// ```
    pub fn with_decoder(
        mut self,
        factory: impl Fn() -> Box<dyn Decoder> + Send + Sync + 'static,
    ) -> Self {
        self.format = BodyFormat::Custom(Arc::new(factory));
        self
    }

    /// Lets other sources serve the same endpoint.
    pub fn with_shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Keeps the last `n` records for lookup.
    pub fn with_retain_size(mut self, n: usize) -> Self {
        self.retain_size = n;
        self
    }

    /// Requires `Authorization: Bearer <token>`.
    pub fn with_bearer_token(mut self, token: impl Into<Secret>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Answers each request only after its records were delivered, waiting
    /// at most `timeout`.
    pub fn with_wait_for_delivery(mut self, timeout: Duration) -> Self {
        self.wait_for_delivery = true;
        self.delivery_timeout = timeout;
        self
    }

    /// Sets the largest body accepted.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets how many records (and body bytes) may be accepted and not yet
    /// delivered before requests get 429.
    pub fn with_max_pending(mut self, records: usize, bytes: usize) -> Self {
        self.max_pending_records = records;
        self.max_pending_bytes = bytes;
        self
    }

    /// Sets the `Retry-After` of a 429.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Sets the most records per batch.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let mut config = HttpPushConfig::new(String::new());

        let ip: String = r.required("http_server_ip");
        let port: u16 = r.required("http_server_port");
        match ip.trim().parse::<IpAddr>() {
            Ok(ip) => config.server.addr = SocketAddr::new(ip, port),
            Err(_) => r.invalid(
                "http_server_ip",
                format!("expected an IP address such as `0.0.0.0` or `127.0.0.1`, got `{ip}`"),
            ),
        }
        let certfile = r.optional::<String>("certfile").filter(|s| !s.is_empty());
        let keyfile = r.optional::<String>("keyfile").filter(|s| !s.is_empty());
        match (certfile, keyfile) {
            (Some(certfile), Some(keyfile)) => config = config.with_tls(certfile, keyfile),
            (Some(_), None) => r.invalid("keyfile", "required when `certfile` is set"),
            (None, Some(_)) => r.invalid("certfile", "required when `keyfile` is set"),
            (None, None) => {}
        }

        config.endpoint = r.required("endpoint");
        if (r.is_set("endpoint") || !config.endpoint.is_empty())
            && let Err(reason) = check_endpoint(&config.endpoint)
        {
            r.invalid("endpoint", reason);
        }
        let method: String = r.required("method");
        match PushMethod::parse(method.trim()) {
            Some(m) => config.method = m,
            None => r.invalid(
                "method",
                format!("expected `POST` or `PUT`, got `{method}`"),
            ),
        }
        config.format = BodyFormat::Format(Box::new(FormatConfig::read(&mut r)));

        config.shared = r.required("shared");
        config.retain_size = r.required("retain_size");
        config.bearer_token = r.optional::<Secret>("bearer_token");
        if config.bearer_token.as_ref().is_some_and(Secret::is_empty) {
            r.invalid(
                "bearer_token",
                "must not be empty (leave it out to accept any client)",
            );
        }
        config.wait_for_delivery = r.required("wait_for_delivery");
        config.delivery_timeout = r.required("delivery_timeout");
        for (property, slot) in [
            ("max_body_bytes", &mut config.max_body_bytes),
            ("max_pending_records", &mut config.max_pending_records),
            ("max_pending_bytes", &mut config.max_pending_bytes),
            ("batch_size", &mut config.batch_size),
        ] {
            match r.optional::<usize>(property) {
                Some(0) => r.invalid(property, "must be at least 1"),
                Some(v) => *slot = v,
                None => {}
            }
        }
        config.retry_after = r.required("retry_after");
        if config.wait_for_delivery && config.delivery_timeout.is_zero() {
            r.invalid(
                "delivery_timeout",
                "must be longer than 0 with `wait_for_delivery`",
            );
        }
        r.finish()?;
        Ok(config)
    }

    /// Checks what [`HttpPushConfig::from_properties`] checks, for configs
    /// built in code.
    pub fn validate(&self) -> Result<()> {
        let bad = |property: &str, reason: String| Err(Error::config(COMPONENT, property, reason));
        if let Err(reason) = check_endpoint(&self.endpoint) {
            return bad("endpoint", reason);
        }
        for (property, value) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_pending_records", self.max_pending_records),
            ("max_pending_bytes", self.max_pending_bytes),
            ("batch_size", self.batch_size),
        ] {
            if value == 0 {
                return bad(property, "must be at least 1".into());
            }
        }
        if self.wait_for_delivery && self.delivery_timeout.is_zero() {
            return bad(
                "delivery_timeout",
                "must be longer than 0 with `wait_for_delivery`".into(),
            );
        }
        if self.bearer_token.as_ref().is_some_and(Secret::is_empty) {
            return bad(
                "bearer_token",
                "must not be empty (leave it out to accept any client)".into(),
            );
        }
        Ok(())
    }
}

/// An endpoint is an absolute URL path without query or fragment.
pub(crate) fn check_endpoint(endpoint: &str) -> std::result::Result<(), String> {
    if !endpoint.starts_with('/') {
        return Err(format!(
            "must be a URL path starting with `/` (e.g. `/api/data`), got `{endpoint}`"
        ));
    }
    if let Some(c) = endpoint
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        return Err(format!(
            "must be a plain URL path, got `{}` (it contains {c:?})",
            endpoint.escape_debug()
        ));
    }
    Ok(())
}
