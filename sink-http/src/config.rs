//! Typed configuration of the `http` sink and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::{Properties, Result, Secret};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::body::{BatchFormat, Payload};
use crate::oauth2::OAuth2Config;
use crate::retry::RetryPolicy;
use crate::settings;
use connector_core::tls::{self, TlsSettings};

/// The properties of the `http` sink (also used for webhooks).
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "http",
    role: Role::Sink,
    description: "Sends each record (or batches of records) to an HTTP endpoint, e.g. a webhook.",
    properties: &[
        PropertySpec::required(
            "url",
            PropertyKind::Url,
            "Target URL (http:// or https://).",
        ),
        PropertySpec::optional(
            "content_type",
            PropertyKind::String,
            Some("application/json"),
            "Content-Type header of the requests (`application/x-ndjson` by default with `batch_format` `ndjson`).",
        ),
        PropertySpec::optional(
            "http_method",
            PropertyKind::Choice(&["POST", "PUT", "PATCH", "GET", "DELETE"]),
            Some("POST"),
            "HTTP method; the body is sent with every method.",
        ),
        PropertySpec::optional(
            "payload_field",
            PropertyKind::String,
            None,
            "Body template with `{{ .column }}` (Go template syntax); empty means the whole record as a JSON object.",
        ),
        PropertySpec::optional(
            "http_header",
            PropertyKind::Map,
            Some("{}"),
            "Extra headers, as a JSON object of names to values.",
        ),
        PropertySpec::optional(
            "oauth2.enabled",
            PropertyKind::Boolean,
            Some("false"),
            "Authenticate with OAuth2 client credentials; the token is sent as `Authorization: Bearer`.",
        ),
        PropertySpec::optional(
            "oauth2.client_key",
            PropertyKind::String,
            None,
            "OAuth2 client id.",
        ),
        PropertySpec::optional(
            "oauth2.client_secret",
            PropertyKind::Secret,
            None,
            "OAuth2 client secret.",
        ),
        PropertySpec::optional(
            "oauth2.token_url",
            PropertyKind::Url,
            None,
            "OAuth2 token endpoint.",
        ),
        PropertySpec::optional(
            "oauth2.scopes",
            PropertyKind::List,
            None,
            "OAuth2 scopes to ask for.",
        ),
        settings::parallelism("1"),
        settings::retries("0"),
        settings::retry_interval("10s"),
        settings::timeout("10s"),
        settings::RETRY_BACKOFF,
        settings::RETRY_MAX_INTERVAL,
        PropertySpec::optional(
            "batch_format",
            PropertyKind::Choice(&["none", "json_array", "ndjson"]),
            Some("none"),
            "`none`: one request per record; `json_array`: up to `batch_size` records as one JSON array; `ndjson`: one record per line.",
        ),
        PropertySpec::optional(
            "batch_size",
            PropertyKind::Integer,
            Some("100"),
            "Most records in one request when `batch_format` is not `none`.",
        ),
        PropertySpec::optional(
            "batch_wait",
            PropertyKind::Duration,
            Some("100ms"),
            "Longest a record waits for its request to fill when `batch_format` is not `none`.",
        ),
        tls::SKIP_VERIFY_SERVER,
        tls::CA_CERT,
    ],
};

/// Typed configuration of [`HttpSink`](crate::HttpSink).
///
/// ```
/// use std::time::Duration;
/// use sink_http::{HttpSinkConfig, Payload, RetryPolicy};
///
/// let config = HttpSinkConfig::new("https://hooks.example.com/alerts".parse().unwrap())
///     .payload(Payload::parse(r#"{"text": "{{ .device }} at {{ .number }}"}"#).unwrap())
///     .parallelism(8)
///     .retry(RetryPolicy::new(3, Duration::from_secs(1)));
/// assert_eq!(config.method, reqwest::Method::POST);
/// ```
///
/// `Debug` shows the URL without credentials or query string (see
/// [`redact_url`](crate::redact_url)) and no header value that usually
/// carries credentials.
#[derive(Clone)]
pub struct HttpSinkConfig {
    /// Target URL.
    pub url: Url,
    /// HTTP method.
    pub method: Method,
    /// `Content-Type` of the requests (a `Content-Type` in `headers` wins).
    pub content_type: HeaderValue,
    /// How a record becomes a body.
    pub payload: Payload,
    /// Extra headers. Values that usually hold credentials are marked
    /// sensitive and left out of `Debug`.
    pub headers: HeaderMap,
    /// OAuth2 client credentials.
    pub oauth2: Option<OAuth2Config>,
    /// Requests in flight at once.
    pub parallelism: usize,
    /// Retries.
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
    /// One request per record, or several records per request.
    pub batch_format: BatchFormat,
    /// Most records per request with a batch format.
    pub batch_size: usize,
    /// Longest a record waits for its request to fill.
    pub batch_wait: Duration,
    /// Certificate verification.
    pub tls: TlsSettings,
}

impl std::fmt::Debug for HttpSinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSinkConfig")
            .field("url", &crate::redact_url(&self.url))
            .field("method", &self.method)
            .field("content_type", &self.content_type)
            .field("payload", &self.payload)
            .field("headers", &self.headers)
            .field("oauth2", &self.oauth2)
            .field("parallelism", &self.parallelism)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("batch_format", &self.batch_format)
            .field("batch_size", &self.batch_size)
            .field("batch_wait", &self.batch_wait)
            .field("tls", &self.tls)
            .finish()
    }
}

impl HttpSinkConfig {
    /// Defaults for `url`: POST, `application/json`, the record as JSON, one
    /// request at a time, no retries, 10s timeout.
    pub fn new(url: Url) -> Self {
        HttpSinkConfig {
            url,
            method: Method::POST,
            content_type: HeaderValue::from_static("application/json"),
            payload: Payload::Json,
            headers: HeaderMap::new(),
            oauth2: None,
            parallelism: 1,
            retry: RetryPolicy::new(0, Duration::from_secs(10)),
            timeout: Duration::from_secs(10),
            batch_format: BatchFormat::None,
            batch_size: 100,
            batch_wait: Duration::from_millis(100),
            tls: TlsSettings::default(),
        }
    }

    /// Sets the method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: HeaderValue) -> Self {
        self.content_type = content_type;
        self
    }

    /// Sets how records become bodies.
    pub fn payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Authenticates with OAuth2 client credentials.
    pub fn oauth2(mut self, oauth2: OAuth2Config) -> Self {
        self.oauth2 = Some(oauth2);
        self
    }

    /// Sets the requests in flight.
    pub fn parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.clamp(1, settings::MAX_PARALLELISM);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends up to `size` records per request in `format`.
    pub fn batch(mut self, format: BatchFormat, size: usize) -> Self {
        self.batch_format = format;
        self.batch_size = size.max(1);
        self
    }

    /// Sets the TLS settings.
    pub fn tls(mut self, tls: TlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    ///
    /// `oauth2` may be a nested object (`{"oauth2": {"enabled": true, ...}}`),
    /// a string holding one, or dotted names (`oauth2.enabled`).
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let (props, oauth2_problem) = normalize(props);
        let mut r = PropertyReader::new(&SPEC, &props);
        if let Some(problem) = oauth2_problem {
            r.invalid("oauth2", problem);
        }
        let url = settings::read_url(&mut r, "url", false);
        let content_type_set = r.is_set("content_type");
        let content_type: String = r.required("content_type");
        let method: String = r.required("http_method");
        let payload_field: Option<String> = r.optional("payload_field");
        let headers = settings::read_headers(&mut r, "http_header");
        let oauth2 = read_oauth2(&mut r);
        let parallelism = settings::read_parallelism(&mut r);
        let retry = settings::read_retry(&mut r);
        let timeout = settings::read_timeout(&mut r);
        let batch_format: String = r.required("batch_format");
        let batch_format = BatchFormat::parse(&batch_format).unwrap_or_default();
        let batch_size: usize = r.required("batch_size");
        if batch_size == 0 {
            r.invalid("batch_size", "must be at least 1");
        }
        let batch_wait: Duration = r.required("batch_wait");
        let tls = TlsSettings::read(&mut r);

        let payload = match Payload::parse(payload_field.as_deref().unwrap_or("")) {
            Ok(p) => p,
            Err(reason) => {
                r.invalid("payload_field", reason);
                Payload::Json
            }
        };
        let content_type = if content_type_set {
            content_type
        } else {
            batch_format.default_content_type().to_owned()
        };
        let content_type = match HeaderValue::from_str(content_type.trim()) {
            Ok(v) => v,
            Err(_) => {
                r.invalid("content_type", "holds characters not allowed in a header");
                HeaderValue::from_static("application/json")
            }
        };
        if oauth2.is_some() && headers.contains_key(AUTHORIZATION) {
            r.invalid(
                "http_header",
                "sets `Authorization`, which OAuth2 (`oauth2.enabled`) sets too; remove one of them",
            );
        }
        r.finish()?;
        let url = url.ok_or_else(|| {
            connector_core::Error::config(SPEC.component(), "url", "required property is missing")
        })?;
        Ok(HttpSinkConfig {
            url,
            method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST),
            content_type,
            payload,
            headers,
            oauth2,
            parallelism,
            retry,
            timeout,
            batch_format,
            batch_size: batch_size.max(1),
            batch_wait,
            tls,
        })
    }
}

/// Accepts `oauth2` as a string holding a JSON object, and `http_method` in
/// any case. Returns the problem with `oauth2`, if any.
fn normalize(props: &Properties) -> (Properties, Option<String>) {
    let mut props = props.clone();
    let mut problem = None;
    match props.get("oauth2").cloned() {
        Some(serde_json::Value::String(text)) => {
            props.remove("oauth2");
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(object @ serde_json::Value::Object(_)) => {
                    props.set("oauth2", object);
                }
                _ if text.trim().is_empty() => {}
                _ => {
                    problem = Some(
                        "expected a JSON object with `enabled`, `client_key`, `client_secret`, `token_url` and `scopes`"
                            .to_owned(),
                    );
                }
            }
        }
        Some(serde_json::Value::Object(_)) | None => {}
        Some(_) => {
            props.remove("oauth2");
            problem = Some(
                "expected a JSON object with `enabled`, `client_key`, `client_secret`, `token_url` and `scopes`"
                    .to_owned(),
            );
        }
    }
    if let Some(serde_json::Value::String(m)) = props.get("http_method").cloned() {
        props.set("http_method", m.trim().to_ascii_uppercase());
    }
    (props, problem)
}

fn read_oauth2(r: &mut PropertyReader<'_>) -> Option<OAuth2Config> {
    let enabled: bool = r.required("oauth2.enabled");
    let client_key: Option<String> = r.optional("oauth2.client_key");
    let client_secret: Option<Secret> = r.optional("oauth2.client_secret");
    let token_url = if r.is_set("oauth2.token_url") {
        settings::read_url(r, "oauth2.token_url", false)
    } else {
        let _: Option<String> = r.optional("oauth2.token_url");
        None
    };
    let scopes: Option<Vec<String>> = r.optional("oauth2.scopes");
    if !enabled {
        return None;
    }
    let mut missing = false;
    for (name, present) in [
        (
            "oauth2.client_key",
            client_key.as_ref().is_some_and(|k| !k.is_empty()),
        ),
        (
            "oauth2.client_secret",
            client_secret.as_ref().is_some_and(|s| !s.is_empty()),
        ),
        ("oauth2.token_url", r.is_set("oauth2.token_url")),
    ] {
        if !present {
            r.invalid(name, "required when `oauth2.enabled` is true");
            missing = true;
        }
    }
    if missing {
        return None;
    }
    Some(OAuth2Config {
        token_url: token_url?,
        client_id: client_key.unwrap_or_default(),
        client_secret: client_secret.unwrap_or_default(),
        scopes: scopes.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_json(v: serde_json::Value) -> Result<HttpSinkConfig> {
        HttpSinkConfig::from_properties(&Properties::from_json("http sink", v).unwrap())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = HttpSinkConfig::from_properties(&Properties::from_pairs([(
            "url",
            "http://127.0.0.1:9/hook",
        )]))
        .unwrap();
        assert_eq!(c.method, Method::POST);
        assert_eq!(c.content_type, "application/json");
        assert_eq!(c.payload, Payload::Json);
        assert_eq!(c.parallelism, 1);
        assert_eq!(c.retry.retries, 0);
        assert_eq!(c.retry.interval, Duration::from_secs(10));
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert!(c.oauth2.is_none());
        assert_eq!(c.batch_format, BatchFormat::None);
    }

    #[test]
    fn nested_and_dotted_oauth2_agree() {
        let nested = from_json(json!({
            "url": "https://api.example.com/in",
            "http_method": "put",
            "http_header": {"X-Source": "timeplus"},
            "oauth2": {"enabled": true, "client_key": "id", "client_secret": "s3cret",
                       "token_url": "https://auth.example.com/token", "scopes": ["a", "b"]},
            "parallelism": "4",
        }))
        .unwrap();
        let dotted = from_json(json!({
            "url": "https://api.example.com/in",
            "http_method": "PUT",
            "http_header": "{\"X-Source\": \"timeplus\"}",
            "oauth2.enabled": "true", "oauth2.client_key": "id", "oauth2.client_secret": "s3cret",
            "oauth2.token_url": "https://auth.example.com/token", "oauth2.scopes": "a, b",
            "paralism": 4,
        }))
        .unwrap();
        let as_string = from_json(json!({
            "url": "https://api.example.com/in",
            "http_method": "PUT",
            "http_header": {"X-Source": "timeplus"},
            "oauth2": "{\"enabled\": true, \"client_key\": \"id\", \"client_secret\": \"s3cret\", \"token_url\": \"https://auth.example.com/token\", \"scopes\": \"a,b\"}",
            "paralism": "4",
        }))
        .unwrap();
        for c in [&nested, &dotted, &as_string] {
            assert_eq!(c.method, Method::PUT);
            assert_eq!(c.parallelism, 4);
            assert_eq!(c.headers["x-source"], "timeplus");
            assert_eq!(c.oauth2, nested.oauth2);
        }
        let o = nested.oauth2.as_ref().unwrap();
        assert_eq!(o.client_id, "id");
        assert_eq!(o.client_secret.expose(), "s3cret");
        assert_eq!(o.scopes, ["a", "b"]);
        assert!(!format!("{nested:?}").contains("s3cret"));
        let with_token = from_json(json!({"url": "https://u:pw@x.org/in?token=t0k"})).unwrap();
        let shown = format!("{with_token:?}");
        assert!(shown.contains("url: \"https://x.org/in?...\""), "{shown}");
        assert!(!shown.contains("pw") && !shown.contains("t0k"), "{shown}");
    }

    #[test]
    fn every_problem_is_reported() {
        let err = from_json(json!({
            "url": "hooks.example.com",
            "http_method": "SEND",
            "payload_field": "{{ if .x }}",
            "oauth2": {"enabled": true, "client_secret": "s3cret"},
            "retries": "-1",
            "timeout": "0ms",
            "batch_size": 0,
            "paralelism": 2,
        }))
        .unwrap_err()
        .to_string();
        for expected in [
            "http sink: invalid configuration:",
            "property `url`: `hooks.example.com` is not a valid URL: relative URL without a base",
            "property `http_method`: expected one of `POST`, `PUT`, `PATCH`, `GET`, `DELETE`, got `SEND`",
            "property `payload_field`: template `{{ if .x }}`",
            "property `oauth2.client_key`: required when `oauth2.enabled` is true",
            "property `oauth2.token_url`: required when `oauth2.enabled` is true",
            "property `retries`: expected a whole number",
            "property `timeout`: must be longer than 0ms",
            "property `batch_size`: must be at least 1",
            "property `paralelism`: unknown property; did you mean `parallelism`?",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn oauth2_must_be_an_object() {
        let err = from_json(json!({"url": "http://x", "oauth2": "yes"}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `oauth2`: expected a JSON object with `enabled`"),
            "{err}"
        );
    }

    #[test]
    fn authorization_header_and_oauth2_conflict() {
        let err = from_json(json!({
            "url": "http://x",
            "http_header": {"Authorization": "Bearer abc"},
            "oauth2": {"enabled": true, "client_key": "id", "client_secret": "s",
                       "token_url": "http://auth/token"},
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("sets `Authorization`, which OAuth2"), "{err}");
        assert!(!err.contains("Bearer abc"), "{err}");
    }

    #[test]
    fn ndjson_changes_the_default_content_type_only() {
        let c = from_json(json!({"url": "http://x", "batch_format": "ndjson"})).unwrap();
        assert_eq!(c.content_type, "application/x-ndjson");
        let c = from_json(
            json!({"url": "http://x", "batch_format": "ndjson", "content_type": "text/plain"}),
        )
        .unwrap();
        assert_eq!(c.content_type, "text/plain");
    }

    #[test]
    fn disabled_oauth2_is_ignored() {
        let c =
            from_json(json!({"url": "http://x", "oauth2": {"enabled": false, "client_key": "id"}}))
                .unwrap();
        assert!(c.oauth2.is_none());
    }
}
