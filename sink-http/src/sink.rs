//! The `http` sink.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use connector_core::check::CheckReport;
use connector_core::{Ack, Batch, BatchLimits, Properties, Record, Result, Sink};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;

use crate::body::BatchFormat;
use crate::check::{check_oauth2, check_reachable, classify_probe_status};
use crate::client::{ClientSettings, Endpoint, HttpClient, Label, Request};
use crate::config::{HttpSinkConfig, SPEC};
use crate::inflight::Dispatcher;

/// Sends records to an HTTP endpoint: one request per record (or per
/// `batch_size` records with a batch format), up to `paralism` requests in
/// flight, records with the same key strictly in order.
///
/// [`Sink::send`] returns once every request of the batch is under way (it
/// waits while the limit of requests in flight is reached); the batch's ack
/// resolves when all of them ended: delivered when every request got a
/// `2xx`, failed when one ran out of retries (the source delivers the batch
/// again), rejected when the server refused one with a `4xx`.
/// [`Sink::flush`] waits for every request in flight.
///
/// Dropping the sink without [`Sink::close`] stops its waiting requests;
/// their batches resolve as failed.
///
/// In a [`Pipeline`](connector_core::Pipeline), records arrive in batches
/// and each batch stays in flight until all of its requests ended: with
/// small batches (a slow source), give the pipeline at least `paralism`
/// batches in flight (`Pipeline::max_in_flight`) or the pipeline, not the
/// sink, limits the requests in flight.
pub struct HttpSink {
    name: String,
    config: HttpSinkConfig,
    client: HttpClient,
    endpoint: Arc<Endpoint>,
    dispatcher: Dispatcher,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("endpoint", &self.endpoint)
            .field("dispatcher", &self.dispatcher)
            .finish()
    }
}

impl HttpSink {
    /// A sink from a typed config. Fails on bad TLS settings.
    pub fn new(config: HttpSinkConfig) -> Result<Self> {
        let name = SPEC.component();
        let client = HttpClient::new(
            ClientSettings::new(name.clone())
                .timeout(config.timeout)
                .retry(config.retry.clone())
                .tls(config.tls.clone())
                .oauth2(config.oauth2.clone()),
        )?;
        // The content type first, so a Content-Type in the user's headers wins.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(CONTENT_TYPE, config.content_type.clone());
        for (header, value) in &config.headers {
            headers.insert(header.clone(), value.clone());
        }
        let endpoint = Arc::new(
            Endpoint::new(config.method.clone(), config.url.clone()).with_headers(headers),
        );
        Ok(HttpSink {
            name,
            dispatcher: Dispatcher::new(config.parallelism),
            config,
            client,
            endpoint,
        })
    }

    /// A sink from the `http` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        HttpSinkConfig::from_properties(props).and_then(HttpSink::new)
    }

    /// The configuration in use.
    pub fn config(&self) -> &HttpSinkConfig {
        &self.config
    }

    /// The client, e.g. to read [`HttpClient::tokens_fetched`].
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Requests under way (running, or waiting for a slot or their key).
    pub fn in_flight(&self) -> usize {
        self.dispatcher.in_flight()
    }

    async fn submit(&mut self, keys: Vec<Bytes>, request: Request, ack: Ack) {
        let client = self.client.clone();
        self.dispatcher
            .submit(keys, async move {
                client.send(&request).await.resolve(ack);
            })
            .await;
    }
}

#[async_trait]
impl Sink for HttpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batch_limits(&self) -> BatchLimits {
        match self.config.batch_format {
            BatchFormat::None => BatchLimits::default(),
            _ => BatchLimits {
                max_records: self.config.batch_size,
                max_wait: self.config.batch_wait,
            },
        }
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        let (records, ack) = batch.into_parts();
        match self.config.batch_format {
            BatchFormat::None => {
                for (index, record) in records.iter().enumerate() {
                    let body = self.config.payload.render(record);
                    let request = Request {
                        endpoint: self.endpoint.clone(),
                        body: Bytes::from(body),
                        label: Label::Record {
                            index,
                            position: record.position.clone(),
                        },
                    };
                    let keys = record.key.iter().cloned().collect();
                    self.submit(keys, request, ack.clone()).await;
                }
            }
            format => {
                for chunk in records.chunks(self.config.batch_size) {
                    let refs: Vec<&Record> = chunk.iter().collect();
                    let body = format.body(&self.config.payload, &refs);
                    let request = Request {
                        endpoint: self.endpoint.clone(),
                        body: Bytes::from(body),
                        label: Label::Records {
                            count: chunk.len(),
                            first: chunk[0].position.clone(),
                        },
                    };
                    let keys = chunk.iter().filter_map(|r| r.key.clone()).collect();
                    self.submit(keys, request, ack.clone()).await;
                }
            }
        }
        // This handle's part is done; the requests' clones decide the outcome.
        ack.delivered();
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.dispatcher.wait_idle().await;
        Ok(())
    }

    /// Resolves the host, connects, completes the TLS handshake (for
    /// `https`), fetches an OAuth2 token when enabled, and sends an
    /// `OPTIONS` request without a body: a `404` there means the endpoint
    /// does not exist, a `401`/`403` that the credentials were refused.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(self.name.clone());
        let url = self.config.url.clone();
        let shown = self.endpoint.display.clone();
        if !check_reachable(&mut report, &self.client, &url, &shown, timeout).await {
            return report;
        }
        if !check_oauth2(&mut report, &self.client, timeout).await {
            return report;
        }
        let client = self.client.clone();
        let endpoint = self.endpoint.clone();
        report
            .step(
                format!("OPTIONS {shown} (no record sent)"),
                timeout,
                async move {
                    let (status, body) = client
                        .probe(Method::OPTIONS, &endpoint, Bytes::new(), true)
                        .await?;
                    classify_probe_status(status, &body)
                },
            )
            .await;
        report
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.client.shutdown();
    }
}
