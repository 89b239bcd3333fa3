//! Typed configuration and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{DataFormat, FormatConfig, props};
use connector_core::{Properties, Result, Secret};
use url::Url;

/// Livepeer Studio's API.
pub const DEFAULT_BASE_URL: &str = "https://livepeer.studio/api";

/// The properties of the `livepeer` source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "livepeer",
    role: Role::Source,
    description: "Polls Livepeer Studio's realtime viewership API (`GET {base_url}/data/views/now`); one record per metric in each answer.",
    properties: &[
        PropertySpec::required(
            "interval",
            PropertyKind::Duration,
            "Time between polls, e.g. `300s`.",
        ),
        PropertySpec::required(
            "api_key",
            PropertyKind::Secret,
            "Livepeer Studio API key, sent as `Authorization: Bearer <api_key>`.",
        ),
        props::data_type(&["json", "text"], None),
        props::SCHEMA,
        PropertySpec::optional(
            "base_url",
            PropertyKind::Url,
            Some(DEFAULT_BASE_URL),
            "API base URL (for tests and self-hosted Livepeer).",
        ),
        PropertySpec::optional(
            "playback_id",
            PropertyKind::String,
            None,
            "Only metrics of this playback ID (`playbackId` query parameter).",
        ),
        PropertySpec::optional(
            "creator_id",
            PropertyKind::String,
            None,
            "Only metrics of this creator ID (`creatorId` query parameter).",
        ),
        PropertySpec::optional(
            "breakdown_by",
            PropertyKind::List,
            None,
            "Fields to break the metrics down by, e.g. `playbackId, device, browser, country` (`breakdownBy[]`).",
        ),
        PropertySpec::optional(
            "timeout",
            PropertyKind::Duration,
            Some("10s"),
            "Longest wait for one API answer.",
        ),
    ],
};

/// Typed configuration of [`LivepeerSource`](crate::LivepeerSource).
///
/// ```
/// use source_livepeer::LivepeerConfig;
/// use std::time::Duration;
///
/// let config = LivepeerConfig::new("my-api-key", Duration::from_secs(300))
///     .breakdown_by(["playbackId", "country"]);
/// assert_eq!(config.endpoint().unwrap().as_str(),
///     "https://livepeer.studio/api/data/views/now?breakdownBy%5B%5D=playbackId&breakdownBy%5B%5D=country");
/// ```
#[derive(Debug, Clone)]
pub struct LivepeerConfig {
    /// Time between polls.
    pub interval: Duration,
    /// API key (Bearer token).
    pub api_key: Secret,
    /// How each metric becomes a record (`json` or `text`, optional schema).
    pub format: FormatConfig,
    /// API base URL.
    pub base_url: Url,
    /// `playbackId` filter.
    pub playback_id: Option<String>,
    /// `creatorId` filter.
    pub creator_id: Option<String>,
    /// `breakdownBy[]` fields.
    pub breakdown_by: Vec<String>,
    /// Longest wait for one answer.
    pub timeout: Duration,
}

impl LivepeerConfig {
    /// Polls Livepeer Studio every `interval`, metrics as JSON records.
    pub fn new(api_key: impl Into<Secret>, interval: Duration) -> Self {
        LivepeerConfig {
            interval,
            api_key: api_key.into(),
            format: FormatConfig::new(DataFormat::JSON).with_component(SPEC.component()),
            base_url: Url::parse(DEFAULT_BASE_URL).expect("valid default URL"),
            playback_id: None,
            creator_id: None,
            breakdown_by: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Uses another API base URL.
    pub fn base_url(mut self, url: Url) -> Self {
        self.base_url = url;
        self
    }

    /// Each metric as one `raw` text column (its JSON text) instead of columns.
    pub fn text(mut self) -> Self {
        self.format = FormatConfig::new(DataFormat::TEXT).with_component(SPEC.component());
        self
    }

    /// Breaks the metrics down by these fields.
    pub fn breakdown_by<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.breakdown_by = fields.into_iter().map(Into::into).collect();
        self
    }

    /// The URL polled: `{base_url}/data/views/now` with the filters.
    pub fn endpoint(&self) -> std::result::Result<Url, String> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| format!("`{}` cannot be a base URL", self.base_url))?
            .pop_if_empty()
            .extend(["data", "views", "now"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(id) = &self.playback_id {
                query.append_pair("playbackId", id);
            }
            if let Some(id) = &self.creator_id {
                query.append_pair("creatorId", id);
            }
            for field in &self.breakdown_by {
                query.append_pair("breakdownBy[]", field);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let interval: Duration = r.required("interval");
        let api_key: Secret = r.required("api_key");
        let format = FormatConfig::read(&mut r);
        let base_url: String = r.required("base_url");
        let playback_id = r
            .optional::<String>("playback_id")
            .filter(|s| !s.is_empty());
        let creator_id = r.optional::<String>("creator_id").filter(|s| !s.is_empty());
        let breakdown_by: Vec<String> = r.optional("breakdown_by").unwrap_or_default();
        let timeout: Duration = r.required("timeout");
        if interval.is_zero() && r.is_set("interval") {
            r.invalid("interval", "must be more than 0");
        }
        if timeout.is_zero() {
            r.invalid("timeout", "must be more than 0");
        }
        if api_key.is_empty() && r.is_set("api_key") {
            r.invalid("api_key", "must not be empty");
        }
        let base_url = match Url::parse(&base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            Ok(u) => {
                r.invalid(
                    "base_url",
                    format!("expected an http or https URL, got `{}`", u.scheme()),
                );
                None
            }
            Err(e) => {
                r.invalid("base_url", format!("`{base_url}` is not a URL: {e}"));
                None
            }
        };
        r.finish()?;
        let config = LivepeerConfig {
            interval,
            api_key,
            format,
            base_url: base_url.expect("checked above"),
            playback_id,
            creator_id,
            breakdown_by,
            timeout,
        };
        // Surfaces a decoder that cannot be built (e.g. a bad schema) now.
        config.format.decoder()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_properties() {
        let props = Properties::from_pairs([
            ("interval", "300s"),
            ("api_key", "secret-key"),
            ("data_type", "text"),
            ("playback_id", "abc123"),
            ("breakdown_by", "device,country"),
        ]);
        let c = LivepeerConfig::from_properties(&props).unwrap();
        assert_eq!(c.interval, Duration::from_secs(300));
        assert_eq!(c.format.data_format, DataFormat::TEXT);
        assert_eq!(
            c.endpoint().unwrap().as_str(),
            "https://livepeer.studio/api/data/views/now?playbackId=abc123&breakdownBy%5B%5D=device&breakdownBy%5B%5D=country"
        );
        assert!(!format!("{c:?}").contains("secret-key"));
    }

    #[test]
    fn base_url_with_or_without_trailing_slash() {
        let props = Properties::from_pairs([
            ("interval", "1s"),
            ("api_key", "k"),
            ("data_type", "json"),
            ("base_url", "http://127.0.0.1:8080/api/"),
        ]);
        let c = LivepeerConfig::from_properties(&props).unwrap();
        assert_eq!(
            c.endpoint().unwrap().as_str(),
            "http://127.0.0.1:8080/api/data/views/now"
        );
    }

    #[test]
    fn problems_are_named() {
        let props = Properties::from_pairs([
            ("interval", "often"),
            ("data_type", "avro"),
            ("base_url", "ftp://x"),
            ("apikey", "k"),
        ]);
        let err = LivepeerConfig::from_properties(&props)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("livepeer source: invalid configuration:"),
            "{err}"
        );
        assert!(
            err.contains("property `interval`: `often` is not a duration"),
            "{err}"
        );
        assert!(
            err.contains("property `api_key`: required property is missing"),
            "{err}"
        );
        assert!(
            err.contains("property `data_type`: expected one of `json`, `text`, got `avro`"),
            "{err}"
        );
        assert!(
            err.contains("property `base_url`: expected an http or https URL, got `ftp`"),
            "{err}"
        );
        assert!(
            err.contains("property `apikey`: unknown property; did you mean `api_key`?"),
            "{err}"
        );
    }
}
