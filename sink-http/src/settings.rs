//! Properties every HTTP sink has (timeouts, retries, parallelism, TLS,
//! headers, URLs), documented once and read once. The slack and timeplus
//! sinks put these [`PropertySpec`]s in their own specs and read them with
//! the same functions.

use std::collections::BTreeMap;
use std::time::Duration;

use connector_core::Secret;
use connector_core::config::{PropertyKind, PropertyReader, PropertySpec};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::retry::{Backoff, RetryPolicy};

/// `timeout`: per-request timeout.
pub const fn timeout(default: &'static str) -> PropertySpec {
    PropertySpec::optional(
        "timeout",
        PropertyKind::Duration,
        Some(default),
        "Per-request timeout, from sending to the last byte of the answer (also the connect timeout).",
    )
}

/// `retries`: retries after the first try.
pub const fn retries(default: &'static str) -> PropertySpec {
    PropertySpec::optional(
        "retries",
        PropertyKind::Integer,
        Some(default),
        "Retries after the first try, for connection errors, timeouts, 408, 429 and 5xx answers.",
    )
}

/// `retry_interval`: wait before the first retry.
pub const fn retry_interval(default: &'static str) -> PropertySpec {
    PropertySpec::optional(
        "retry_interval",
        PropertyKind::Duration,
        Some(default),
        "Wait before the first retry (at least what a Retry-After header asks for).",
    )
}

/// `retry_backoff`: how waits grow.
pub const RETRY_BACKOFF: PropertySpec = PropertySpec::optional(
    "retry_backoff",
    PropertyKind::Choice(&["exponential", "constant"]),
    Some("exponential"),
    "`exponential`: each wait twice the one before, up to `retry_max_interval`; `constant`: every wait is `retry_interval`.",
);

/// `retry_max_interval`: the longest wait between tries.
pub const RETRY_MAX_INTERVAL: PropertySpec = PropertySpec::optional(
    "retry_max_interval",
    PropertyKind::Duration,
    Some("1m"),
    "Longest wait between two tries with exponential backoff.",
);

/// `paralism` (also `parallelism`): requests in flight.
pub const fn parallelism(default: &'static str) -> PropertySpec {
    PropertySpec::optional(
        "paralism",
        PropertyKind::Integer,
        Some(default),
        "Requests in flight at once; requests for records with the same key still go one after the other, in order.",
    )
    .with_aliases(&["parallelism"])
}

/// The most requests in flight a sink accepts.
pub const MAX_PARALLELISM: usize = 4096;

/// Reads `retries`, `retry_interval`, `retry_backoff` and `retry_max_interval`.
pub fn read_retry(reader: &mut PropertyReader<'_>) -> RetryPolicy {
    let retries: u32 = reader.required("retries");
    let interval: Duration = reader.required("retry_interval");
    let backoff: String = reader.required("retry_backoff");
    let max_interval: Duration = reader.required("retry_max_interval");
    RetryPolicy::new(retries, interval)
        .backoff(Backoff::parse(&backoff).unwrap_or_default())
        .max_interval(max_interval.max(interval))
}

/// Reads `timeout`, which must be above zero.
pub fn read_timeout(reader: &mut PropertyReader<'_>) -> Duration {
    let timeout: Duration = reader.required("timeout");
    if timeout.is_zero() {
        reader.invalid("timeout", "must be longer than 0ms");
    }
    timeout
}

/// Reads `paralism` / `parallelism` (1 to [`MAX_PARALLELISM`]).
pub fn read_parallelism(reader: &mut PropertyReader<'_>) -> usize {
    let n: usize = reader.required("paralism");
    if n == 0 || n > MAX_PARALLELISM {
        reader.invalid(
            "paralism",
            format!("must be between 1 and {MAX_PARALLELISM}, got {n}"),
        );
        return 1;
    }
    n
}

/// Reads an `http`/`https` URL. A secret URL (the Slack webhook) is never
/// quoted in errors.
pub fn read_url(reader: &mut PropertyReader<'_>, name: &'static str, secret: bool) -> Option<Url> {
    let text = if secret {
        let s: Secret = reader.required(name);
        s.expose().to_owned()
    } else {
        reader.required::<String>(name)
    };
    if text.trim().is_empty() {
        if reader.is_set(name) {
            reader.invalid(name, "must not be empty");
        }
        return None; // otherwise reported as missing by the reader
    }
    let shown = if secret {
        "the URL".to_owned()
    } else {
        format!("`{text}`")
    };
    match Url::parse(text.trim()) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            reader.invalid(
                name,
                format!(
                    "{shown} must start with http:// or https://, not {}://",
                    url.scheme()
                ),
            );
            None
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            reader.invalid(name, format!("{shown} has no host"));
            None
        }
        Ok(url) => Some(url),
        Err(e) => {
            reader.invalid(name, format!("{shown} is not a valid URL: {e}"));
            None
        }
    }
}

/// Reads a map property of extra headers, checking every name and value.
/// Values of headers that usually carry credentials are marked sensitive,
/// so `Debug` output and logs leave them out.
pub fn read_headers(reader: &mut PropertyReader<'_>, name: &'static str) -> HeaderMap {
    let map: BTreeMap<String, String> = reader.required(name);
    let mut headers = HeaderMap::new();
    for (key, value) in map {
        let header = match HeaderName::from_bytes(key.trim().as_bytes()) {
            Ok(h) => h,
            Err(_) => {
                reader.invalid(name, format!("`{key}` is not a valid header name"));
                continue;
            }
        };
        let mut value = match HeaderValue::from_str(value.trim()) {
            Ok(v) => v,
            Err(_) => {
                reader.invalid(
                    name,
                    format!("the value of header `{key}` holds characters not allowed in a header"),
                );
                continue;
            }
        };
        if is_sensitive_header(&header) {
            value.set_sensitive(true);
        }
        headers.insert(header, value);
    }
    headers
}

/// Whether a header usually carries credentials.
///
/// ```
/// use reqwest::header::HeaderName;
/// assert!(sink_http::is_sensitive_header(&HeaderName::from_static("x-api-key")));
/// assert!(!sink_http::is_sensitive_header(&HeaderName::from_static("x-request-source")));
/// ```
pub fn is_sensitive_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "key",
        "token",
        "secret",
        "auth",
        "password",
        "signature",
        "session",
    ]
    .iter()
    .any(|word| n.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::Properties;
    use connector_core::config::{ConnectorSpec, Role};

    static SPEC: ConnectorSpec = ConnectorSpec {
        name: "test",
        role: Role::Sink,
        description: "test",
        properties: &[
            PropertySpec::required("url", PropertyKind::Url, "URL."),
            PropertySpec::optional("secret_url", PropertyKind::Secret, None, "URL."),
            PropertySpec::optional("header", PropertyKind::Map, Some("{}"), "Headers."),
            parallelism("1"),
        ],
    };

    #[test]
    fn urls_are_checked() {
        let props = Properties::from_pairs([
            ("url", "ftp://x.org/a"),
            ("secret_url", "not a url with s3cret"),
        ]);
        let mut r = PropertyReader::new(&SPEC, &props);
        assert!(read_url(&mut r, "url", false).is_none());
        assert!(read_url(&mut r, "secret_url", true).is_none());
        let err = r.finish().unwrap_err().to_string();
        assert!(
            err.contains(
                "property `url`: `ftp://x.org/a` must start with http:// or https://, not ftp://"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "property `secret_url`: the URL is not a valid URL: relative URL without a base"
            ),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn headers_are_checked_and_marked() {
        let props = Properties::from_pairs([("url", "http://x")]).with(
            "header",
            serde_json::json!({"X-Api-Key": "k1", "X-Trace": "on", "bad name": "x", "X-Nl": "a\nb"}),
        );
        let mut r = PropertyReader::new(&SPEC, &props);
        let _ = read_url(&mut r, "url", false);
        let headers = read_headers(&mut r, "header");
        assert!(headers["x-api-key"].is_sensitive());
        assert!(!headers["x-trace"].is_sensitive());
        assert!(!format!("{headers:?}").contains("k1"));
        let err = r.finish().unwrap_err().to_string();
        assert!(
            err.contains("`bad name` is not a valid header name"),
            "{err}"
        );
        assert!(
            err.contains("the value of header `X-Nl` holds characters"),
            "{err}"
        );
    }

    #[test]
    fn parallelism_bounds_and_alias() {
        for (value, ok) in [("0", false), ("8", true), ("5000", false)] {
            let props = Properties::from_pairs([("url", "http://x"), ("parallelism", value)]);
            let mut r = PropertyReader::new(&SPEC, &props);
            let _ = read_url(&mut r, "url", false);
            let n = read_parallelism(&mut r);
            assert_eq!(r.finish().is_ok(), ok, "{value}");
            if ok {
                assert_eq!(n, 8);
            }
        }
    }
}
