//! The `timeplus` sink.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use connector_core::check::{CheckReport, FailureKind};
use connector_core::{Batch, BatchLimits, ChangeKind, Error, Properties, Record, Result, Sink};
use sink_http::check::{check_reachable, classify_probe_status};
use sink_http::reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use sink_http::reqwest::{Method, Url};
use sink_http::{ClientSettings, Dispatcher, Endpoint, HttpClient, Label, Request};

use crate::config::{SPEC, TimeplusConfig};

/// Writes records to a Timeplus/Proton stream with
/// `POST {url}/proton/v1/ingest/streams/{stream_name}` and the body
/// `{"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}`, up to
/// `batch_size` rows per request.
///
/// Records of one request share their columns: a batch whose records have
/// different schemas is sent as one request per run of equal schemas.
/// Values are written as JSON (timestamps as RFC 3339 strings, bytes as
/// base64, decimals as exact strings). With `changelog`, a `_tp_delta`
/// column carries `1` for inserts, upserts and new values and `-1` for
/// deletes and old values.
///
/// A batch is acknowledged when the server accepted every request of it;
/// `4xx` answers reject it with the server's message, connection errors,
/// timeouts and `5xx` are retried.
pub struct TimeplusSink {
    name: String,
    config: TimeplusConfig,
    client: HttpClient,
    ingest: Arc<Endpoint>,
    stream: Endpoint,
    dispatcher: Dispatcher,
}

impl std::fmt::Debug for TimeplusSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeplusSink")
            .field("ingest", &self.ingest)
            .field("config", &self.config)
            .finish()
    }
}

/// `base` with `segments` appended to its path (each percent-encoded).
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

impl TimeplusSink {
    /// A sink from a typed config. Fails on bad TLS settings or
    /// credentials that cannot go in a header.
    pub fn new(config: TimeplusConfig) -> Result<Self> {
        let name = SPEC.component();
        let client = HttpClient::new(
            ClientSettings::new(name.clone())
                .timeout(config.timeout)
                .retry(config.retry.clone())
                .tls(config.tls.clone()),
        )?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &config.api_key {
            let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                Error::config(
                    name.clone(),
                    "api_key",
                    "holds characters not allowed in a header",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        if let Some((user, password)) = &config.basic_auth {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                .map_err(|_| Error::config(name.clone(), "username", "not usable in a header"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let stream = config.stream_name.as_str();
        let ingest = Arc::new(
            Endpoint::new(
                Method::POST,
                join(&config.url, &["proton", "v1", "ingest", "streams", stream]),
            )
            .with_headers(headers.clone()),
        );
        let mut lookup_headers = headers;
        lookup_headers.remove(CONTENT_TYPE);
        let stream = Endpoint::new(
            Method::GET,
            join(
                &config.url,
                &["proton", "v1", "ddl", "streams", "default", stream],
            ),
        )
        .with_headers(lookup_headers);
        Ok(TimeplusSink {
            name,
            dispatcher: Dispatcher::new(config.parallelism),
            config,
            client,
            ingest,
            stream,
        })
    }

    /// A sink from the `timeplus` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        TimeplusConfig::from_properties(props).and_then(TimeplusSink::new)
    }

    /// The configuration in use.
    pub fn config(&self) -> &TimeplusConfig {
        &self.config
    }
}

/// The ingest body for records that share a schema.
///
/// ```
/// use connector_core::{Record, Value};
///
/// let rows = [
///     Record::from_pairs([("id", Value::Int64(1)), ("name", Value::from("a"))]),
///     Record::from_pairs([("id", Value::Int64(2)), ("name", Value::from("b"))]),
/// ];
/// let body = sink_timeplus::ingest_body(&rows, false);
/// assert_eq!(body, br#"{"columns":["id","name"],"data":[[1,"a"],[2,"b"]]}"#);
/// ```
pub fn ingest_body(records: &[Record], changelog: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + records.len() * 48);
    out.extend_from_slice(b"{\"columns\":[");
    if let Some(first) = records.first() {
        for (i, name) in first.schema.names().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut out, name);
        }
        if changelog {
            if !first.schema.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"_tp_delta\"");
        }
    }
    out.extend_from_slice(b"],\"data\":[");
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (j, value) in record.values.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut out, value);
        }
        if changelog {
            if !record.values.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(match record.kind {
                ChangeKind::Delete | ChangeKind::UpdateBefore => b"-1",
                ChangeKind::Insert | ChangeKind::UpdateAfter | ChangeKind::Upsert => b"1",
            });
        }
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
    out
}

/// Splits `records` into runs that share a schema.
fn schema_runs(records: &[Record]) -> impl Iterator<Item = &[Record]> {
    records.chunk_by(|a, b| Arc::ptr_eq(&a.schema, &b.schema) || a.schema == b.schema)
}

#[async_trait]
impl Sink for TimeplusSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: self.config.batch_size,
            max_wait: self.config.batch_wait,
        }
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        let (records, ack) = batch.into_parts();
        for run in schema_runs(&records) {
            for chunk in run.chunks(self.config.batch_size) {
                let request = Request {
                    endpoint: self.ingest.clone(),
                    body: Bytes::from(ingest_body(chunk, self.config.changelog)),
                    label: Label::Records {
                        count: chunk.len(),
                        first: chunk[0].position.clone(),
                    },
                };
                let keys: Vec<Bytes> = chunk.iter().filter_map(|r| r.key.clone()).collect();
                let client = self.client.clone();
                let ack = ack.clone();
                self.dispatcher
                    .submit(keys, async move {
                        client.send(&request).await.resolve(ack);
                    })
                    .await;
            }
        }
        ack.delivered();
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.dispatcher.wait_idle().await;
        Ok(())
    }

    /// Reaches the server (DNS, TCP, TLS), then looks the stream up with an
    /// authenticated `GET {url}/proton/v1/ddl/streams/default/{stream_name}`,
    /// which ingests nothing.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.name.clone());
        let base = self.config.url.clone();
        let shown = sink_http::redact_url(&base);
        if !check_reachable(&mut report, &self.client, &base, &shown, timeout).await {
            return report;
        }
        let client = self.client.clone();
        let stream = self.stream.clone();
        let name = self.config.stream_name.clone();
        report
            .step(
                format!(
                    "look up stream `{name}` ({} {})",
                    stream.method, stream.display
                ),
                timeout,
                async move {
                    let (status, body) = client
                        .probe(Method::GET, &stream, Bytes::new(), false)
                        .await?;
                    if status.is_success() {
                        return Ok(format!("stream `{name}` exists"));
                    }
                    match classify_probe_status(status, &body) {
                        Ok(answered) => Err((FailureKind::Invalid, answered)),
                        Err(failure) => Err(failure),
                    }
                },
            )
            .await;
        report
    }
}

impl Drop for TimeplusSink {
    fn drop(&mut self) {
        self.client.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::Value;

    #[test]
    fn paths_are_joined_and_encoded() {
        let base = Url::parse("https://tp.example.com/ws1/?x=1").unwrap();
        assert_eq!(
            join(&base, &["proton", "v1", "ingest", "streams", "my stream/1"]).as_str(),
            "https://tp.example.com/ws1/proton/v1/ingest/streams/my%20stream%2F1"
        );
        let base = Url::parse("http://localhost:3218").unwrap();
        assert_eq!(
            join(&base, &["proton", "v1", "ingest", "streams", "s"]).as_str(),
            "http://localhost:3218/proton/v1/ingest/streams/s"
        );
    }

    #[test]
    fn changelog_rows_carry_the_delta() {
        let a = Record::from_pairs([("id", Value::Int64(1))]);
        let rows = [
            a.clone(),
            a.clone().with_kind(ChangeKind::UpdateBefore),
            a.clone().with_kind(ChangeKind::UpdateAfter),
            a.with_kind(ChangeKind::Delete),
        ];
        let body: serde_json::Value = serde_json::from_slice(&ingest_body(&rows, true)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"columns": ["id", "_tp_delta"], "data": [[1, 1], [1, -1], [1, 1], [1, -1]]})
        );
    }

    #[test]
    fn runs_split_on_schema_changes() {
        let a = Record::from_pairs([("x", Value::Int64(1))]);
        let b = Record::from_pairs([("y", Value::Int64(1))]);
        let same_shape_other_arc = Record::from_pairs([("x", Value::Int64(2))]);
        let records = vec![a.clone(), same_shape_other_arc, b, a];
        let sizes: Vec<usize> = schema_runs(&records).map(<[Record]>::len).collect();
        assert_eq!(sizes, [2, 1, 1]);
    }
}
