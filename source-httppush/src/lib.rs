//! The `httppush` source: HTTP clients push records to an endpoint.
//!
//! All httppush sources of a process configured with the same address
//! (`http_server_ip`, `http_server_port`, default `0.0.0.0:10081`) share
//! one HTTP/1.1 + HTTP/2 server, HTTPS when `certfile` and `keyfile` are
//! set (rustls). The server starts with the first source and stops,
//! releasing its port, when the last one is closed or dropped; endpoints
//! come and go while it runs. Each source serves one `endpoint` (URL path)
//! with one `method` (`POST` or `PUT`) and decodes each request body as
//! one message in its `format` (`json` objects or arrays of objects,
//! `text`, `binary`, `delimited`, `protobuf`, or a decoder supplied in code
//! with [`HttpPushConfig::with_decoder`]), with an optional declared
//! `schema` and event-time `timestamp` field.
//!
//! Answers:
//!
//! | status | when |
//! | --- | --- |
//! | `200` `ok` | accepted (queued; or delivered, with `wait_for_delivery`) |
//! | `400` | the body does not decode; the body of the answer says why (format, position, field) and nothing of it is kept |
//! | `401` | `bearer_token` is set and the request lacks it |
//! | `404` | no source serves the path |
//! | `405` | the path is served with another method (`Allow` lists it) |
//! | `413` | the body is over `max_body_bytes` |
//! | `415` | the body is compressed (`Content-Encoding`) |
//! | `429` | `max_pending_records`/`max_pending_bytes` reached: the pipeline is behind; `Retry-After` says when to retry, nothing was kept |
//! | `500` | with `wait_for_delivery`: the sink failed or rejected the records |
//! | `503` | the source is shutting down |
//! | `504` | with `wait_for_delivery`: no outcome within `delivery_timeout` (the records may still arrive) |
//!
//! Records accepted with `200` are the source's responsibility until the
//! sink delivered them: without `wait_for_delivery`, a batch the sink
//! fails is delivered again (after a backoff). Everything accepted and not
//! yet delivered counts against the pending limits, so memory stays
//! bounded and a slow pipeline shows as `429`s instead of growth.
//!
//! With `shared`, several sources serve one endpoint and each gets every
//! record; a request is admitted into all of them or none. `retain_size`
//! keeps the last N records for lookup ([`HttpPushSource::retained`]), and
//! [`HttpPushTable`] is a retain-only consumer for scan-table use.
//!
//! Cargo feature `protobuf` (on by default) enables `format = protobuf`
//! (`proto_file`, `proto_message`, compiled at run time); without it,
//! such a configuration is refused with an error that names the feature.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use connector_core::{Source, Value};
//! use source_httppush::{HttpPushConfig, HttpPushSource};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let config = HttpPushConfig::new("/api/data").with_address("127.0.0.1:0".parse()?);
//! let mut source = HttpPushSource::new(config)?;
//! let addr = source.start().await?; // port 0: the system chose one
//!
//! // Any HTTP client works (curl -d '[...]' http://127.0.0.1:PORT/api/data);
//! // here the request is written by hand.
//! let body = r#"[{"device": "d1", "temperature": 21.5}, {"device": "d2", "temperature": 19}]"#;
//! let mut client = tokio::net::TcpStream::connect(addr).await?;
//! let request = format!(
//!     "POST /api/data HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
//!     body.len()
//! );
//! client.write_all(request.as_bytes()).await?;
//! let mut answer = vec![0; 512];
//! let n = client.read(&mut answer).await?;
//! assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200 OK"));
//!
//! let batch = source.next_batch().await?.expect("the pushed records");
//! assert_eq!(batch.len(), 2);
//! assert_eq!(batch.records[1].get("device"), Some(&Value::from("d2")));
//! batch.delivered();
//! source.close().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod config;
mod endpoint;
mod queue;
mod retain;
mod server;
mod source;
mod stats;
mod tls;

pub use config::{
    BodyFormat, COMPONENT, DecoderFactory, HttpPushConfig, HttpServerConfig, PushMethod, SPEC,
    TlsFiles,
};
pub use retain::RetainedRecords;
pub use source::{HttpPushSource, HttpPushTable};
pub use stats::{EndpointCounters, EndpointStats};
