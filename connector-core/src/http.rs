//! The HTTP client setup shared by the connectors that speak HTTP through
//! reqwest (webhook, Slack, Timeplus, ClickHouse, Livepeer, Ably, the schema
//! registry): rustls from [`TlsSettings`], one user agent, and one way of
//! explaining a request that got no answer.
//!
//! ```
//! use std::time::Duration;
//! use connector_core::http;
//! use connector_core::tls::TlsSettings;
//!
//! let client = http::client_builder("livepeer source", &TlsSettings::default())?
//!     .timeout(Duration::from_secs(10))
//!     .build()
//!     .expect("a client");
//! # drop(client);
//! # Ok::<_, connector_core::Error>(())
//! ```

use crate::check::FailureKind;
use crate::error::{Result, find_cause};
use crate::tls::{TlsSettings, is_plain_text_peer};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("rust-connectors/", env!("CARGO_PKG_VERSION"));

/// A reqwest client builder with TLS from `tls` and the library's user
/// agent; the caller adds its timeouts, pool and redirect policy. Errors
/// (an unreadable CA file) name `component`.
pub fn client_builder(component: &str, tls: &TlsSettings) -> Result<reqwest::ClientBuilder> {
    Ok(client_builder_with(&*tls.client_config(component)?))
}

/// The same with a rustls configuration the caller keeps (for its own
/// TLS probes, say).
pub fn client_builder_with(tls: &rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .user_agent(USER_AGENT)
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    /// TLS, timeout or unreachable.
    pub kind: FailureKind,
    /// The whole cause chain, with a hint when TLS met a plain-HTTP port.
    pub reason: String,
}

/// Classifies a request that failed without an answer. `url_property` is
/// the property holding the URL, named in the hint given when a TLS client
/// met a server that speaks plain HTTP. The reason never quotes the URL.
pub fn transport_failure(err: &reqwest::Error, url_property: &str) -> TransportFailure {
    let mut reason = describe_error(err);
    let kind = if let Some(tls) = find_cause::<rustls::Error>(err) {
        if is_plain_text_peer(tls) {
            reason.push_str(&format!(
                " (the server does not speak TLS here; use an http:// {url_property})"
            ));
        }
        FailureKind::Tls
    } else if err.is_timeout() {
        FailureKind::Timeout
    } else {
        FailureKind::Unreachable
    };
    TransportFailure { kind, reason }
}

/// A reqwest error as one line without the URL (which may hold a secret,
/// like a Slack webhook's): the error and each of its causes, said once.
pub fn describe_error(error: &reqwest::Error) -> String {
    // reqwest's Display appends " for url (...)": cut it.
    let top = error.to_string();
    let top = match top.find(" for url (") {
        Some(at) => top[..at].to_owned(),
        None => top,
    };
    let mut parts = vec![top];
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn tls_to_a_plain_port_is_a_tls_failure_with_a_hint() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        let client = client_builder("test", &TlsSettings::default())
            .unwrap()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let err = client
            .get(format!("https://{addr}/"))
            .send()
            .await
            .unwrap_err();
        let failure = transport_failure(&err, "base_url");
        assert_eq!(failure.kind, FailureKind::Tls, "{}", failure.reason);
        assert!(
            failure.reason.contains("use an http:// base_url"),
            "{}",
            failure.reason
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = client_builder("test", &TlsSettings::default())
            .unwrap()
            .build()
            .unwrap();
        let err = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        let failure = transport_failure(&err, "url");
        assert_eq!(failure.kind, FailureKind::Unreachable);
        assert!(failure.reason.contains("refused"), "{}", failure.reason);
        assert!(
            !failure.reason.contains("127.0.0.1"),
            "no URL: {}",
            failure.reason
        );
    }
}
