//! Typed configuration of the `slack` sink and its property-map form.

use std::fmt;
use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::tls;
use connector_core::{Error, Properties, Result, Secret};
use sink_http::reqwest::Url;
use sink_http::reqwest::header::HeaderMap;
use sink_http::{Payload, RetryPolicy, TlsSettings, settings};

/// The properties of the `slack` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "slack",
    role: Role::Sink,
    description: "Posts each record as a message to a Slack incoming webhook.",
    properties: &[
        PropertySpec::required(
            "url",
            PropertyKind::Secret,
            "The incoming-webhook URL (a secret: never printed).",
        ),
        PropertySpec::optional(
            "template",
            PropertyKind::String,
            None,
            "Message text with `{{ .column }}`; empty means the record as JSON.",
        ),
        PropertySpec::optional(
            "header",
            PropertyKind::Map,
            Some("{}"),
            "Extra HTTP headers, as a JSON object.",
        ),
        PropertySpec::optional(
            "min_interval",
            PropertyKind::Duration,
            Some("1s"),
            "Least time between two messages (Slack allows about one per second per webhook).",
        ),
        settings::timeout("10s"),
        settings::retries("3"),
        settings::retry_interval("1s"),
        settings::RETRY_BACKOFF,
        settings::RETRY_MAX_INTERVAL,
        tls::SKIP_VERIFY_SERVER,
        tls::CA_CERT,
    ],
};

/// Typed configuration of [`SlackSink`](crate::SlackSink).
///
/// `Debug` never shows the webhook URL.
///
/// ```
/// use sink_slack::SlackConfig;
///
/// let config = SlackConfig::new("https://hooks.slack.com/services/T0/B0/abc".parse().unwrap())
///     .template("{{ .device }} is at {{ .number }}")
///     .unwrap();
/// assert!(!format!("{config:?}").contains("abc"));
/// ```
#[derive(Clone)]
pub struct SlackConfig {
    /// The incoming-webhook URL.
    pub url: Url,
    /// The message text.
    pub template: Payload,
    /// Extra headers.
    pub headers: HeaderMap,
    /// Least time between two messages.
    pub min_interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries for connection errors, timeouts and `5xx`; `429` answers are
    /// waited out however often they come.
    pub retry: RetryPolicy,
    /// Certificate verification.
    pub tls: TlsSettings,
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field("url", &Secret::new(""))
            .field("template", &self.template)
            .field("headers", &self.headers)
            .field("min_interval", &self.min_interval)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("tls", &self.tls)
            .finish()
    }
}

impl SlackConfig {
    /// Defaults for `url`: the record as JSON, one message per second,
    /// 3 retries a second apart (doubling), 10s timeout.
    pub fn new(url: Url) -> Self {
        SlackConfig {
            url,
            template: Payload::Json,
            headers: HeaderMap::new(),
            min_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::new(3, Duration::from_secs(1)).wait_out_rate_limits(true),
            tls: TlsSettings::default(),
        }
    }

    /// Sets the message template (empty: the record as JSON).
    pub fn template(mut self, template: &str) -> Result<Self> {
        self.template = Payload::parse(template)
            .map_err(|reason| Error::config(SPEC.component(), "template", reason))?;
        Ok(self)
    }

    /// Sets the least time between two messages.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// Sets the retry policy (`429` answers are always waited out).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry.wait_out_rate_limits(true);
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let url = settings::read_url(&mut r, "url", true);
        let template: Option<String> = r.optional("template");
        let headers = settings::read_headers(&mut r, "header");
        let min_interval: Duration = r.required("min_interval");
        let timeout = settings::read_timeout(&mut r);
        let retry = settings::read_retry(&mut r).wait_out_rate_limits(true);
        let tls = TlsSettings::read(&mut r);
        let template = match Payload::parse(template.as_deref().unwrap_or("")) {
            Ok(t) => t,
            Err(reason) => {
                r.invalid("template", reason);
                Payload::Json
            }
        };
        r.finish()?;
        let url = url.ok_or_else(|| {
            Error::config(SPEC.component(), "url", "required property is missing")
        })?;
        Ok(SlackConfig {
            url,
            template,
            headers,
            min_interval,
            timeout,
            retry,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://hooks.slack.com/services/T000/B000/s3cretToken";

    #[test]
    fn defaults() {
        let c = SlackConfig::from_properties(&Properties::from_pairs([("url", URL)])).unwrap();
        assert_eq!(c.template, Payload::Json);
        assert_eq!(c.min_interval, Duration::from_secs(1));
        assert!(c.retry.wait_out_rate_limits);
        assert_eq!(c.retry.retries, 3);
        assert!(c.headers.is_empty());
        assert!(!format!("{c:?}").contains("s3cretToken"));
    }

    #[test]
    fn problems_never_show_the_url() {
        let props = Properties::from_json(
            "slack sink",
            json!({"url": "hooks.slack.com/services/s3cretToken", "template": "{{ range .x }}",
                   "header": {"X-A": 1}, "min_intervall": "1s"}),
        )
        .unwrap();
        let err = SlackConfig::from_properties(&props)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("property `url`: the URL is not a valid URL: relative URL without a base"),
            "{err}"
        );
        assert!(
            err.contains("property `template`: template `{{ range .x }}`"),
            "{err}"
        );
        assert!(err.contains("did you mean `min_interval`?"), "{err}");
        assert!(!err.contains("s3cretToken"), "{err}");

        let err = SlackConfig::from_properties(&Properties::from_pairs([(
            "url",
            "ftp://hooks.slack.com/s3cretToken",
        )]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "slack sink: property `url`: the URL must start with http:// or https://, not ftp://"
        );
    }

    #[test]
    fn url_is_required() {
        let err = SlackConfig::from_properties(&Properties::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "slack sink: property `url`: required property is missing"
        );
    }
}
