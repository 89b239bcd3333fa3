//! Connection checks shared by the HTTP sinks: name resolution, TCP, the
//! TLS handshake, and the OAuth2 token endpoint, each a step of a
//! [`CheckReport`]. None of them sends a record.

use std::net::SocketAddr;
use std::time::Duration;

use connector_core::check::{CheckReport, FailureKind};
use connector_core::error::find_cause;
use connector_core::tls;
use reqwest::Url;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use crate::client::HttpClient;

/// Checks that `url` can be reached: resolves the host, connects over TCP
/// and, for `https`, completes a TLS handshake with the client's
/// certificate rules. `shown` is how step names show the server (the Slack
/// sink hides its URL). Returns whether every step passed.
pub async fn check_reachable(
    report: &mut CheckReport,
    client: &HttpClient,
    url: &Url,
    shown: &str,
    timeout: Duration,
) -> bool {
    let Some(host) = url
        .host_str()
        .map(|h| h.trim_matches(['[', ']']).to_owned())
    else {
        report.fail(
            format!("parse {shown}"),
            FailureKind::Invalid,
            "the URL has no host",
        );
        return false;
    };
    let Some(port) = url.port_or_known_default() else {
        report.fail(
            format!("parse {shown}"),
            FailureKind::Invalid,
            format!("no port given and none known for `{}`", url.scheme()),
        );
        return false;
    };

    let mut addresses: Vec<SocketAddr> = Vec::new();
    let resolved = report
        .step(format!("resolve {host}"), timeout, async {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| {
                    (
                        FailureKind::Unreachable,
                        format!("cannot resolve `{host}`: {e}"),
                    )
                })?
                .collect();
            if found.is_empty() {
                return Err((
                    FailureKind::Unreachable,
                    format!("`{host}` has no addresses"),
                ));
            }
            let detail = match found.len() {
                1 => found[0].ip().to_string(),
                n => format!("{} (and {} more)", found[0].ip(), n - 1),
            };
            addresses = found;
            Ok(detail)
        })
        .await;
    if !resolved {
        return false;
    }

    let mut stream = None;
    let connected = report
        .step(format!("connect to {host}:{port}"), timeout, async {
            let mut last = None;
            for address in &addresses {
                match TcpStream::connect(address).await {
                    Ok(s) => {
                        stream = Some(s);
                        return Ok(format!("connected to {address}"));
                    }
                    Err(e) => last = Some(format!("{address}: {e}")),
                }
            }
            Err((
                FailureKind::Unreachable,
                last.unwrap_or_else(|| "no address to connect to".into()),
            ))
        })
        .await;
    if !connected {
        return false;
    }
    let Some(stream) = stream else { return false };

    if url.scheme() != "https" {
        return true;
    }
    report
        .step(format!("TLS handshake with {host}"), timeout, async {
            let name = ServerName::try_from(host.clone()).map_err(|e| {
                (
                    FailureKind::Invalid,
                    format!("`{host}` is not a valid TLS server name: {e}"),
                )
            })?;
            let connector = tokio_rustls::TlsConnector::from(client.tls_config().clone());
            let tls = connector.connect(name, stream).await.map_err(|e| {
                let mut reason = e.to_string();
                if find_cause::<rustls::Error>(&e).is_some_and(tls::is_plain_text_peer) {
                    reason.push_str(" (is the server speaking plain HTTP? try an http:// URL)");
                }
                (FailureKind::Tls, reason)
            })?;
            let (_, session) = tls.get_ref();
            let version = session
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("TLS")
                .replace('_', ".")
                .replace("TLSv", "TLS ");
            Ok(match session.alpn_protocol() {
                Some(alpn) => format!("{version}, ALPN {}", String::from_utf8_lossy(alpn)),
                None => version,
            })
        })
        .await
}

/// Fetches an OAuth2 token when the client has OAuth2 credentials (no step
/// otherwise). Returns whether it worked or was not needed.
pub async fn check_oauth2(
    report: &mut CheckReport,
    client: &HttpClient,
    timeout: Duration,
) -> bool {
    let Some(token_url) = client.token_url().map(str::to_owned) else {
        return true;
    };
    report
        .step(
            format!("fetch an OAuth2 token from {token_url}"),
            timeout,
            async {
                client
                    .check_token()
                    .await
                    .map(|_| "token received".to_owned())
            },
        )
        .await
}

/// How a connection check reads the status of a request that sent no
/// data: `404`/`410` mean the endpoint does not exist, `401`/`403` that the
/// credentials were refused, `5xx` that the server is not able to serve;
/// anything else proves the endpoint is there.
pub fn classify_probe_status(
    status: reqwest::StatusCode,
    body: &str,
) -> Result<String, (FailureKind, String)> {
    let answered = if body.is_empty() {
        format!("answered {status}")
    } else {
        format!("answered {status}: {body}")
    };
    match status.as_u16() {
        404 | 410 => Err((FailureKind::NotFound, answered)),
        401 | 403 => Err((FailureKind::AuthRefused, answered)),
        500..=599 => Err((FailureKind::Unreachable, answered)),
        _ => Ok(answered),
    }
}
