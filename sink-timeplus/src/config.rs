//! Typed configuration of the `timeplus` sink and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::tls;
use connector_core::{Error, Properties, Result, Secret};
use sink_http::reqwest::Url;
use sink_http::{RetryPolicy, TlsSettings, settings};

/// The properties of the `timeplus` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "timeplus",
    role: Role::Sink,
    description: "Writes records to a Timeplus/Proton stream through the ingest REST API.",
    properties: &[
        PropertySpec::required("stream_name", PropertyKind::String, "The target stream."),
        PropertySpec::optional(
            "url",
            PropertyKind::Url,
            Some("http://localhost:3218"),
            "Base URL of the Timeplus/Proton REST API; records go to `{url}/proton/v1/ingest/streams/{stream_name}`.",
        ),
        PropertySpec::optional(
            "api_key",
            PropertyKind::Secret,
            None,
            "API key, sent as `X-Api-Key`.",
        ),
        PropertySpec::optional(
            "username",
            PropertyKind::String,
            None,
            "User for HTTP Basic authentication (self-hosted timeplusd).",
        ),
        PropertySpec::optional(
            "password",
            PropertyKind::Secret,
            None,
            "Password for HTTP Basic authentication.",
        ),
        PropertySpec::optional(
            "batch_size",
            PropertyKind::Integer,
            Some("1000"),
            "Most rows in one ingest request.",
        ),
        PropertySpec::optional(
            "batch_wait",
            PropertyKind::Duration,
            Some("100ms"),
            "Longest a record waits for its request to fill.",
        ),
        PropertySpec::optional(
            "changelog",
            PropertyKind::Boolean,
            Some("false"),
            "`true` adds the `_tp_delta` column (1 for inserts and new values, -1 for deletes and old values) for changelog streams.",
        ),
        settings::parallelism("1"),
        settings::timeout("10s"),
        settings::retries("3"),
        settings::retry_interval("1s"),
        settings::RETRY_BACKOFF,
        settings::RETRY_MAX_INTERVAL,
        tls::SKIP_VERIFY_SERVER,
        tls::CA_CERT,
    ],
};

/// Typed configuration of [`TimeplusSink`](crate::TimeplusSink).
///
/// ```
/// use sink_timeplus::TimeplusConfig;
///
/// let config = TimeplusConfig::new("alerts").api_key("tp-key");
/// assert_eq!(config.url.as_str(), "http://localhost:3218/");
/// assert!(!format!("{config:?}").contains("tp-key"));
/// ```
#[derive(Debug, Clone)]
pub struct TimeplusConfig {
    /// The target stream.
    pub stream_name: String,
    /// Base URL of the REST API.
    pub url: Url,
    /// API key (`X-Api-Key`).
    pub api_key: Option<Secret>,
    /// HTTP Basic credentials.
    pub basic_auth: Option<(String, Secret)>,
    /// Most rows per request.
    pub batch_size: usize,
    /// Longest a record waits for its request to fill.
    pub batch_wait: Duration,
    /// Whether to add `_tp_delta`.
    pub changelog: bool,
    /// Requests in flight.
    pub parallelism: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Certificate verification.
    pub tls: TlsSettings,
}

impl TimeplusConfig {
    /// Defaults for `stream_name`: `http://localhost:3218`, no
    /// authentication, 1000 rows per request, 3 retries.
    pub fn new(stream_name: impl Into<String>) -> Self {
        TimeplusConfig {
            stream_name: stream_name.into(),
            url: Url::parse("http://localhost:3218").expect("a valid URL"),
            api_key: None,
            basic_auth: None,
            batch_size: 1000,
            batch_wait: Duration::from_millis(100),
            changelog: false,
            parallelism: 1,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::new(3, Duration::from_secs(1)),
            tls: TlsSettings::default(),
        }
    }

    /// Sets the base URL.
    pub fn url(mut self, url: Url) -> Self {
        self.url = url;
        self
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the rows per request.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Adds `_tp_delta` for changelog streams.
    pub fn changelog(mut self, on: bool) -> Self {
        self.changelog = on;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let stream_name: String = r.required("stream_name");
        if r.is_set("stream_name") && stream_name.trim().is_empty() {
            r.invalid("stream_name", "must not be empty");
        }
        let url = settings::read_url(&mut r, "url", false);
        let api_key: Option<Secret> = r.optional("api_key");
        let username: Option<String> = r.optional("username");
        let password: Option<Secret> = r.optional("password");
        let batch_size: usize = r.required("batch_size");
        if batch_size == 0 {
            r.invalid("batch_size", "must be at least 1");
        }
        let batch_wait: Duration = r.required("batch_wait");
        let changelog: bool = r.required("changelog");
        let parallelism = settings::read_parallelism(&mut r);
        let timeout = settings::read_timeout(&mut r);
        let retry = settings::read_retry(&mut r);
        let tls = TlsSettings::read(&mut r);
        let basic_auth = match (username, password) {
            (Some(user), password) => Some((user, password.unwrap_or_default())),
            (None, Some(_)) => {
                r.invalid("password", "given without `username`");
                None
            }
            (None, None) => None,
        };
        r.finish()?;
        let url = url.ok_or_else(|| Error::config(SPEC.component(), "url", "not a valid URL"))?;
        Ok(TimeplusConfig {
            stream_name: stream_name.trim().to_owned(),
            url,
            api_key: api_key.filter(|k| !k.is_empty()),
            basic_auth,
            batch_size: batch_size.max(1),
            batch_wait,
            changelog,
            parallelism,
            timeout,
            retry,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_problems() {
        let c = TimeplusConfig::from_properties(&Properties::from_pairs([("stream_name", "s")]))
            .unwrap();
        assert_eq!(c.url.as_str(), "http://localhost:3218/");
        assert_eq!(c.batch_size, 1000);
        assert!(c.api_key.is_none() && c.basic_auth.is_none() && !c.changelog);

        let err = TimeplusConfig::from_properties(&Properties::from_pairs([
            ("url", "localhost:3218"),
            ("password", "pw-s3cret"),
            ("batch_size", "0"),
        ]))
        .unwrap_err()
        .to_string();
        for expected in [
            "property `stream_name`: required property is missing",
            "property `password`: given without `username`",
            "property `batch_size`: must be at least 1",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in {err}");
        }
        assert!(!err.contains("pw-s3cret"));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = TimeplusConfig::from_properties(&Properties::from_pairs([
            ("stream_name", "s"),
            ("api_key", "key-s3cret"),
            ("username", "u"),
            ("password", "pw-s3cret"),
        ]))
        .unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
