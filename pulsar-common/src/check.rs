//! The connection check both connectors run ("test connection"): fetch the
//! OAuth2 token, reach the broker, do the TLS handshake, authenticate with
//! a `CONNECT` command, then look up the topic with the configured auth.
//!
//! The handshake is done here rather than through the `pulsar` client
//! because the client reports refused credentials and TLS errors only as
//! "fatal error when connecting"; the check must say which step failed and
//! what the broker answered.

use std::time::Duration;

use bytes::BytesMut;
use connector_core::check::{CheckReport, FailureKind};
use pulsar::message::proto::{self, BaseCommand, base_command::Type as CommandType};
use pulsar::message::{Codec, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder as _, Encoder as _};

use crate::auth::{Auth, TokenSource};
use crate::client::{PulsarClient, classify, classify_server, describe, server_message};
use crate::config::ConnectionConfig;

/// Runs the steps of a connection check, each within `timeout`, stopping
/// at the first failure. With `lookup`, the topic is looked up too.
pub async fn check_connection(
    config: &ConnectionConfig,
    component: &str,
    timeout: Duration,
    lookup: bool,
) -> CheckReport {
    let mut report = CheckReport::new(component.to_owned());
    let mut provider = config.auth.provider();
    let mut auth_data = None;
    if let Some(provider) = provider.as_mut() {
        let step = match &config.auth {
            Auth::OAuth2(oauth) => format!("fetch OAuth2 token from {}", oauth.issuer_url),
            Auth::Token(TokenSource::File(path)) => format!("read token file {}", path.display()),
            _ => "read token".to_owned(),
        };
        let ok = report
            .step(step, timeout, async {
                let data = provider.data().await.map_err(|e| (e.kind, e.reason))?;
                let detail = match &config.auth {
                    Auth::OAuth2(_) => format!("got a token ({} bytes)", data.len()),
                    _ => String::new(),
                };
                auth_data = Some(data);
                Ok(detail)
            })
            .await;
        if !ok {
            return report;
        }
    }

    let address = config.address();
    let mut tcp = None;
    if !report
        .step(format!("connect to {address}"), timeout, async {
            let stream = TcpStream::connect(&address)
                .await
                .map_err(|e| (FailureKind::Unreachable, e.to_string()))?;
            let _ = stream.set_nodelay(true);
            tcp = Some(stream);
            Ok("TCP connection open".to_owned())
        })
        .await
    {
        return report;
    }
    let Some(tcp) = tcp else { return report };

    let auth = auth_data.map(|data| ("token".to_owned(), data));
    let handshake_step = match &config.auth {
        Auth::None => "open a Pulsar session (no authentication)".to_owned(),
        Auth::Token(_) => "authenticate with the token".to_owned(),
        Auth::OAuth2(_) => "authenticate with the OAuth2 token".to_owned(),
    };
    if config.is_tls() {
        let host = config
            .broker_url
            .host_str()
            .unwrap_or("localhost")
            .to_owned();
        let mut tls_stream = None;
        let ok = report
            .step(format!("TLS handshake with {host}"), timeout, async {
                let tls = crate::tls::client_config(config.tls_trust_certs_file.as_deref())
                    .map_err(|e| (FailureKind::Tls, e))?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| (FailureKind::Tls, format!("`{host}`: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| (FailureKind::Tls, e.to_string()))?;
                let version = stream
                    .get_ref()
                    .1
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                tls_stream = Some(stream);
                Ok(version)
            })
            .await;
        let Some(stream) = tls_stream.filter(|_| ok) else {
            return report;
        };
        if !report
            .step(handshake_step, timeout, handshake(stream, auth))
            .await
        {
            return report;
        }
    } else if !report
        .step(handshake_step, timeout, handshake(tcp, auth))
        .await
    {
        return report;
    }

    if lookup {
        let topic = config.topic.clone();
        report
            .step(format!("look up topic {topic}"), timeout, async {
                let client = crate::client::build(config, timeout)
                    .await
                    .map_err(|e| failure(&e))?;
                look_up(&client, &topic).await
            })
            .await;
    }
    report
}

fn failure(e: &pulsar::Error) -> (FailureKind, String) {
    (classify(e).0, describe(e))
}

async fn look_up(client: &PulsarClient, topic: &str) -> Result<String, (FailureKind, String)> {
    let partitions = client
        .lookup_partitioned_topic_number(topic)
        .await
        .map_err(|e| failure(&e))?;
    let first = if partitions > 0 {
        format!("{topic}-partition-0")
    } else {
        topic.to_owned()
    };
    let broker = client.lookup_topic(first).await.map_err(|e| failure(&e))?;
    Ok(if partitions > 0 {
        format!("{partitions} partitions, served by {}", broker.url)
    } else {
        format!("served by {}", broker.url)
    })
}

/// Sends `CONNECT` and waits for `CONNECTED`; says what the broker answered.
async fn handshake<S>(
    mut stream: S,
    auth: Option<(String, Vec<u8>)>,
) -> Result<String, (FailureKind, String)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (auth_method_name, auth_data) = match auth {
        Some((method, data)) => (Some(method), Some(data)),
        None => (None, None),
    };
    let connect = Message {
        command: BaseCommand {
            r#type: CommandType::Connect as i32,
            connect: Some(proto::CommandConnect {
                client_version: format!("connectors-check-{}", env!("CARGO_PKG_VERSION")),
                auth_method_name,
                auth_data: auth_data.clone(),
                protocol_version: Some(12),
                ..Default::default()
            }),
            ..Default::default()
        },
        payload: None,
    };
    let mut out = BytesMut::new();
    Codec
        .encode(connect, &mut out)
        .map_err(|e| (FailureKind::Invalid, format!("encode CONNECT: {e}")))?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| (FailureKind::Unreachable, format!("send CONNECT: {e}")))?;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if buf.len() >= 4 {
            let size = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            // Pulsar frames are at most a few MiB: anything else is another protocol.
            if size > (64 << 20) {
                return Err((
                    FailureKind::Invalid,
                    format!("not a Pulsar broker: it answered {}", printable(&buf)),
                ));
            }
        }
        match Codec.decode(&mut buf) {
            Ok(Some(Message { command, .. })) => {
                if let Some(connected) = command.connected {
                    let protocol = connected
                        .protocol_version
                        .map(|v| format!(", protocol v{v}"))
                        .unwrap_or_default();
                    return Ok(format!("broker {}{protocol}", connected.server_version));
                }
                if let Some(error) = command.error {
                    let server = proto::ServerError::try_from(error.error).ok();
                    return Err((
                        classify_server(server).0,
                        server_message(server, Some(&error.message)),
                    ));
                }
                if command.auth_challenge.is_some() {
                    // Multi-step auth: answer with the same credentials.
                    let response = Message {
                        command: BaseCommand {
                            r#type: CommandType::AuthResponse as i32,
                            auth_response: Some(proto::CommandAuthResponse {
                                client_version: Some(format!(
                                    "connectors-check-{}",
                                    env!("CARGO_PKG_VERSION")
                                )),
                                response: Some(proto::AuthData {
                                    auth_method_name: Some("token".into()),
                                    auth_data: auth_data.clone(),
                                }),
                                protocol_version: Some(12),
                            }),
                            ..Default::default()
                        },
                        payload: None,
                    };
                    let mut out = BytesMut::new();
                    Codec.encode(response, &mut out).map_err(|e| {
                        (FailureKind::Invalid, format!("encode AUTH_RESPONSE: {e}"))
                    })?;
                    stream.write_all(&out).await.map_err(|e| {
                        (FailureKind::Unreachable, format!("send AUTH_RESPONSE: {e}"))
                    })?;
                    continue;
                }
                let kind = CommandType::try_from(command.r#type)
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_else(|_| command.r#type.to_string());
                return Err((
                    FailureKind::Invalid,
                    format!("expected CONNECTED, the broker answered {kind}"),
                ));
            }
            Ok(None) => {}
            Err(e) => {
                return Err((
                    FailureKind::Invalid,
                    format!("not a Pulsar broker: cannot decode its answer ({e})"),
                ));
            }
        }
        let n = stream.read_buf(&mut buf).await.map_err(|e| {
            (
                FailureKind::Unreachable,
                format!("connection lost before CONNECTED: {e}"),
            )
        })?;
        if n == 0 {
            return Err((
                FailureKind::Invalid,
                if buf.is_empty() {
                    "the server closed the connection without answering CONNECT (not a Pulsar broker?)".to_owned()
                } else {
                    format!("not a Pulsar broker: it answered {}", printable(&buf))
                },
            ));
        }
    }
}

fn printable(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("`{}`", text.trim())
}
