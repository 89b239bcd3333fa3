//! Typed configuration and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::{Properties, Result, Secret};
use url::Url;

/// Ably's realtime host.
pub const DEFAULT_BASE_URL: &str = "https://realtime.ably.io";

/// The properties of the `ably` source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "ably",
    role: Role::Source,
    description: "Subscribes to an Ably channel with server-sent events (`GET {base_url}/sse?channels=<channel>&v=1.2`); one record per message.",
    properties: &[
        PropertySpec::required(
            "api_key",
            PropertyKind::Secret,
            "Ably API key `appId.keyId:secret`, sent as HTTP Basic auth.",
        ),
        PropertySpec::required("channel", PropertyKind::String, "Channel to subscribe to."),
        PropertySpec::optional(
            "base_url",
            PropertyKind::Url,
            Some(DEFAULT_BASE_URL),
            "Realtime endpoint base URL (for tests and dedicated clusters).",
        ),
        PropertySpec::optional(
            "rewind",
            PropertyKind::Integer,
            None,
            "On the first connection, also receive up to this many recent messages (Ably keeps about two minutes).",
        ),
        PropertySpec::optional(
            "timeout",
            PropertyKind::Duration,
            Some("10s"),
            "Longest wait for connecting and for the stream's first answer.",
        ),
        PropertySpec::optional(
            "idle_timeout",
            PropertyKind::Duration,
            Some("60s"),
            "Reconnect (resuming) when nothing, not even a keepalive, arrives for this long.",
        ),
    ],
};

/// Typed configuration of [`AblySource`](crate::AblySource).
///
/// ```
/// use source_ably::AblyConfig;
///
/// let config = AblyConfig::new("app.key:secret", "sensors");
/// assert_eq!(config.stream_url(None).unwrap().as_str(),
///     "https://realtime.ably.io/sse?channels=sensors&v=1.2");
/// assert_eq!(config.stream_url(Some("abc:1-0")).unwrap().as_str(),
///     "https://realtime.ably.io/sse?channels=sensors&v=1.2&lastEvent=abc%3A1-0");
/// ```
#[derive(Debug, Clone)]
pub struct AblyConfig {
    /// `appId.keyId:secret`.
    pub api_key: Secret,
    /// Channel to subscribe to.
    pub channel: String,
    /// Realtime endpoint base URL.
    pub base_url: Url,
    /// Recent messages to receive on the first connection.
    pub rewind: Option<u32>,
    /// Longest wait for connecting.
    pub timeout: Duration,
    /// Silence after which the stream is reopened.
    pub idle_timeout: Duration,
}

impl AblyConfig {
    /// Subscribes to `channel` on Ably's realtime service.
    pub fn new(api_key: impl Into<Secret>, channel: impl Into<String>) -> Self {
        AblyConfig {
            api_key: api_key.into(),
            channel: channel.into(),
            base_url: Url::parse(DEFAULT_BASE_URL).expect("valid default URL"),
            rewind: None,
            timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }

    /// Uses another base URL.
    pub fn base_url(mut self, url: Url) -> Self {
        self.base_url = url;
        self
    }

    /// The key name (`appId.keyId`) and secret of `api_key`.
    pub fn key_parts(&self) -> Option<(&str, &str)> {
        let (name, secret) = self.api_key.expose().split_once(':')?;
        (name.contains('.') && !secret.is_empty()).then_some((name, secret))
    }

    /// The stream URL, resuming after `last_event` when given.
    pub fn stream_url(&self, last_event: Option<&str>) -> std::result::Result<Url, String> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| format!("`{}` cannot be a base URL", self.base_url))?
            .pop_if_empty()
            .push("sse");
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("channels", &self.channel)
                .append_pair("v", "1.2");
            match last_event {
                Some(id) => {
                    query.append_pair("lastEvent", id);
                }
                None => {
                    if let Some(n) = self.rewind {
                        query.append_pair("rewind", &n.to_string());
                    }
                }
            }
        }
        Ok(url)
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let api_key: Secret = r.required("api_key");
        let channel: String = r.required("channel");
        let base_url: String = r.required("base_url");
        let rewind: Option<u32> = r.optional("rewind");
        let timeout: Duration = r.required("timeout");
        let idle_timeout: Duration = r.required("idle_timeout");
        let mut config = AblyConfig::new(api_key, channel);
        if r.is_set("api_key") && config.key_parts().is_none() {
            r.invalid(
                "api_key",
                "expected `appId.keyId:secret`, as Ably shows API keys",
            );
        }
        if config.channel.is_empty() && r.is_set("channel") {
            r.invalid("channel", "must not be empty");
        }
        if rewind.is_some_and(|n| n > 100) {
            r.invalid("rewind", "at most 100 (Ably's limit)");
        }
        for (name, value) in [("timeout", timeout), ("idle_timeout", idle_timeout)] {
            if value.is_zero() {
                r.invalid(name, "must be more than 0");
            }
        }
        match Url::parse(&base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => config.base_url = u,
            Ok(u) => r.invalid(
                "base_url",
                format!("expected an http or https URL, got `{}`", u.scheme()),
            ),
            Err(e) => r.invalid("base_url", format!("`{base_url}` is not a URL: {e}")),
        }
        r.finish()?;
        config.rewind = rewind;
        config.timeout = timeout;
        config.idle_timeout = idle_timeout;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_properties_and_hides_the_key() {
        let props = Properties::from_pairs([
            ("api_key", "xVLyHw.h6hu7A:JrJGxkV7AKpO2Fly"),
            ("channel", "foo?bar"),
            ("rewind", "10"),
        ]);
        let c = AblyConfig::from_properties(&props).unwrap();
        assert_eq!(c.key_parts(), Some(("xVLyHw.h6hu7A", "JrJGxkV7AKpO2Fly")));
        assert_eq!(
            c.stream_url(None).unwrap().as_str(),
            "https://realtime.ably.io/sse?channels=foo%3Fbar&v=1.2&rewind=10"
        );
        assert!(!format!("{c:?}").contains("JrJGxkV7AKpO2Fly"));
    }

    #[test]
    fn problems_are_named_without_the_key() {
        let props = Properties::from_pairs([
            ("api_key", "not-a-key-secret"),
            ("rewind", "500"),
            ("base_url", "ws://x"),
        ]);
        let err = AblyConfig::from_properties(&props).unwrap_err().to_string();
        assert!(
            err.contains("property `channel`: required property is missing"),
            "{err}"
        );
        assert!(
            err.contains("property `api_key`: expected `appId.keyId:secret`"),
            "{err}"
        );
        assert!(err.contains("property `rewind`: at most 100"), "{err}");
        assert!(
            err.contains("property `base_url`: expected an http or https URL, got `ws`"),
            "{err}"
        );
        assert!(!err.contains("not-a-key-secret"), "{err}");
    }
}
