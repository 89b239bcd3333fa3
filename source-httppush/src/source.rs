//! The `httppush` source, and the retain-only table.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connector_core::check::{CheckReport, FailureKind};
use connector_core::format::{Decoder, MessageMeta, decode_message};
use connector_core::schema::Schema;
use connector_core::{Ack, Batch, Error, Properties, Result, Source};
use tracing::warn;

use crate::config::{COMPONENT, HttpPushConfig};
use crate::endpoint::{Consumer, EndpointSettings, number};
use crate::queue::Queue;
use crate::retain::RetainedRecords;
use crate::server::{self, AddressState, Registration};
use crate::stats::{Counters, EndpointCounters, EndpointStats};
use crate::tls;

/// Receives records that HTTP clients push to an endpoint.
///
/// Every source of the process configured with the same address shares one
/// server, which starts with the first source ([`HttpPushSource::start`],
/// or the first [`next_batch`](Source::next_batch)) and stops, releasing
/// the port, when the last one is closed or dropped. See the
/// [crate docs](crate) for the answers clients get.
pub struct HttpPushSource {
    config: HttpPushConfig,
    settings: EndpointSettings,
    consumer: Arc<Consumer>,
    queue: Arc<Queue>,
    /// Decodes bodies again after a failed delivery.
    redecoder: Box<dyn Decoder>,
    registration: Option<Registration>,
    schema: Option<Arc<Schema>>,
}

impl std::fmt::Debug for HttpPushSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPushSource")
            .field("endpoint", &self.config.endpoint)
            .field("method", &self.config.method)
            .field("address", &self.config.server.addr)
            .field("started", &self.registration.is_some())
            .finish()
    }
}

impl HttpPushSource {
    /// A source for `config`; nothing listens until it is started.
    pub fn new(config: HttpPushConfig) -> Result<Self> {
        config.validate()?;
        let factory = config.format.factory()?;
        let counters = Arc::new(Counters::default());
        let queue = Arc::new(Queue::new(
            config.max_pending_records,
            config.max_pending_bytes,
            counters.clone(),
        ));
        let retained = (config.retain_size > 0).then(|| RetainedRecords::new(config.retain_size));
        let redecoder = factory();
        let consumer = Arc::new(Consumer::new(
            factory,
            Some(queue.clone()),
            retained,
            counters,
        ));
        Ok(HttpPushSource {
            settings: EndpointSettings::of(&config),
            schema: config.format.schema(),
            config,
            consumer,
            queue,
            redecoder,
            registration: None,
        })
    }

    /// A source from the properties of [`SPEC`](crate::SPEC).
    pub fn from_properties(props: &Properties) -> Result<Self> {
        HttpPushSource::new(HttpPushConfig::from_properties(props)?)
    }

    /// The configuration.
    pub fn config(&self) -> &HttpPushConfig {
        &self.config
    }

    /// Registers the endpoint, starting the shared server if this is its
    /// first source, and returns the address it listens on. Does nothing
    /// more when already started.
    pub async fn start(&mut self) -> Result<SocketAddr> {
        if let Some(registration) = &self.registration {
            return Ok(registration.local_addr());
        }
        let registration = server::register(
            &self.config.server,
            &self.config.endpoint,
            &self.settings,
            self.consumer.clone(),
        )
        .await?;
        let addr = registration.local_addr();
        tracing::info!(
            endpoint = %self.config.endpoint,
            method = %self.config.method,
            address = %addr,
            "httppush source registered"
        );
        self.registration = Some(registration);
        Ok(addr)
    }

    /// The address the server listens on, once started (with port `0`
    /// configured, the port the system chose).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.registration.as_ref().map(Registration::local_addr)
    }

    /// A URL that reaches the endpoint from this machine, once started.
    pub fn url(&self) -> Option<String> {
        self.local_addr()
            .map(|addr| endpoint_url(addr, &self.config))
    }

    /// The last `retain_size` records received, when `retain_size` is set.
    pub fn retained(&self) -> Option<RetainedRecords> {
        self.consumer.retained.clone()
    }

    /// What the endpoint has answered so far.
    pub fn stats(&self) -> EndpointStats {
        self.counters().snapshot()
    }

    /// A handle that reads [`stats`](Self::stats) while the source runs
    /// inside a pipeline.
    pub fn counters(&self) -> EndpointCounters {
        EndpointCounters::new(self.consumer.counters.clone(), Some(self.queue.clone()))
    }

    /// Decodes the front body again when its first delivery failed.
    async fn redecode_front(&mut self) {
        let Some((seq, body, arrived, backoff)) = self.queue.front_to_redecode() else {
            return;
        };
        if !backoff.is_zero() {
            tokio::time::sleep(backoff).await;
        }
        let meta = MessageMeta {
            timestamp: Some(arrived),
            ..MessageMeta::default()
        };
        let mut records = Vec::new();
        match decode_message(&mut self.redecoder, &body, &meta, &mut records).await {
            Ok(()) => {
                number(&mut records, seq);
                self.queue.refill(seq, Some(records));
            }
            Err(e) => {
                // The body decoded when it arrived; a decoder that now
                // refuses it cannot be helped by retrying.
                warn!(
                    endpoint = %self.config.endpoint,
                    error = %e.in_component(COMPONENT),
                    "dropping a body that no longer decodes for redelivery"
                );
                self.queue.refill(seq, None);
            }
        }
    }
}

/// `http(s)://host:port/path`, with a loopback host for a wildcard address.
fn endpoint_url(addr: SocketAddr, config: &HttpPushConfig) -> String {
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        other => other.to_string(),
    };
    format!("{scheme}://{host}{}", config.endpoint)
}

#[async_trait]
impl Source for HttpPushSource {
    fn name(&self) -> &str {
        COMPONENT
    }

    fn schema(&self) -> Option<Arc<Schema>> {
        self.schema.clone()
    }

    /// The records of the requests accepted since the last call, up to
    /// `batch_size` (waits for the next request when none is queued).
    async fn next_batch(&mut self) -> Result<Option<Batch>> {
        self.start().await?;
        loop {
            self.redecode_front().await;
            let items = self.queue.take(self.config.batch_size);
            if items.is_empty() {
                self.queue.wait().await;
                continue;
            }
            let mut records = Vec::with_capacity(items.iter().map(|i| i.count).sum());
            let mut bytes = 0u64;
            let mut items = items;
            for item in &mut items {
                records.extend(item.records.take().unwrap_or_default());
                bytes += item.body.len() as u64;
            }
            let queue = self.queue.clone();
            let ack = Ack::new(move |status| queue.settle(items, &status));
            let mut batch = Batch::with_ack(records, ack);
            batch.source_bytes = bytes;
            return Ok(Some(batch));
        }
    }

    /// Leaves the endpoint (the server stops if this was its last source)
    /// and drops what was not handed out yet: waiting clients get `500`.
    async fn close(&mut self) -> Result<()> {
        if let Some(registration) = self.registration.take() {
            registration.close().await;
        }
        let lost = self.queue.close();
        if lost > 0 {
            warn!(
                endpoint = %self.config.endpoint,
                records = lost,
                "httppush source closed with accepted records not yet handed to the pipeline"
            );
        }
        Ok(())
    }

    /// Checks the TLS files, that the address can be listened on (or is
    /// already served by this process), and that the endpoint is free or
    /// shareable. Nothing is bound for longer than the check.
    async fn check(&mut self, timeout: Duration) -> CheckReport {
        let consumer_id = self.registration.as_ref().map(|_| self.consumer.id);
        check(&self.config, &self.settings, consumer_id, timeout).await
    }
}

impl Drop for HttpPushSource {
    fn drop(&mut self) {
        // Leave the endpoint before failing what is queued, so no request
        // is admitted into a queue nobody reads.
        self.registration = None;
        self.queue.close();
    }
}

/// The connection check shared by the source and the table.
pub(crate) async fn check(
    config: &HttpPushConfig,
    settings: &EndpointSettings,
    consumer_id: Option<u64>,
    timeout: Duration,
) -> CheckReport {
    let mut report = CheckReport::new(COMPONENT);
    let addr = config.server.addr;
    if let Some(files) = &config.server.tls {
        let step = format!(
            "load TLS certificate `{}` and key `{}`",
            files.certfile.display(),
            files.keyfile.display()
        );
        let loaded = report
            .step(step, timeout, async {
                tls::load(files)
                    .map(|l| format!("{} certificate(s) in the chain", l.certificates))
                    .map_err(|e| (e.kind, e.reason))
            })
            .await;
        if !loaded {
            return report;
        }
    }
    let (state, endpoint) = server::inspect(addr, &config.endpoint, settings, consumer_id);
    let listen_step = format!("listen on {addr}");
    let listening = report
        .step(listen_step, timeout, async {
            match &state {
                AddressState::Ours {
                    local_addr,
                    tls,
                    endpoints,
                } => {
                    if *tls != config.server.tls {
                        return Err((
                            FailureKind::Invalid,
                            format!(
                                "this process already serves {addr} {} for other sources",
                                if tls.is_some() {
                                    "with HTTPS"
                                } else {
                                    "with plain HTTP"
                                }
                            ),
                        ));
                    }
                    Ok(format!(
                        "already served by this process on {local_addr} ({endpoints} endpoint(s))"
                    ))
                }
                AddressState::Free => match server::bind(addr) {
                    Ok(listener) => {
                        let bound = listener.local_addr().map_or(addr, |a| a);
                        drop(listener);
                        Ok(format!("{bound} can be bound"))
                    }
                    Err(e) => {
                        let kind = match e.kind() {
                            std::io::ErrorKind::PermissionDenied => FailureKind::PermissionDenied,
                            std::io::ErrorKind::AddrNotAvailable => FailureKind::Unreachable,
                            _ => FailureKind::Invalid,
                        };
                        Err((kind, server::bind_reason(&e)))
                    }
                },
            }
        })
        .await;
    if !listening {
        return report;
    }
    let endpoint_step = format!("serve {} {}", config.method, config.endpoint);
    report
        .step(endpoint_step, timeout, async {
            match endpoint {
                None => Ok("free".to_owned()),
                Some(Ok(true)) => Ok("registered by this source".to_owned()),
                Some(Ok(false)) => Ok("shared with other sources of this process".to_owned()),
                Some(Err(Error::Config { reason, .. })) => Err((FailureKind::Invalid, reason)),
                Some(Err(e)) => Err((FailureKind::Invalid, e.to_string())),
            }
        })
        .await;
    report
}

/// A retain-only consumer of an endpoint (scan-table use): it keeps the
/// last `retain_size` records for lookup and feeds no pipeline, so it
/// never answers `429`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> connector_core::Result<()> {
/// use source_httppush::{HttpPushConfig, HttpPushTable};
///
/// let config = HttpPushConfig::new("/prices")
///     .with_address("127.0.0.1:0".parse().unwrap())
///     .with_retain_size(1000);
/// let table = HttpPushTable::start(config).await?;
/// println!("POST price updates to http://{}/prices", table.local_addr());
/// assert!(table.records().is_empty());
/// table.close().await;
/// # Ok(()) }
/// ```
pub struct HttpPushTable {
    config: HttpPushConfig,
    settings: EndpointSettings,
    consumer: Arc<Consumer>,
    records: RetainedRecords,
    registration: Option<Registration>,
}

impl std::fmt::Debug for HttpPushTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPushTable")
            .field("endpoint", &self.config.endpoint)
            .field("records", &self.records)
            .finish()
    }
}

impl HttpPushTable {
    /// Registers the endpoint (starting the shared server if needed).
    /// `retain_size` must be at least 1.
    pub async fn start(config: HttpPushConfig) -> Result<Self> {
        config.validate()?;
        if config.retain_size == 0 {
            return Err(Error::config(
                COMPONENT,
                "retain_size",
                "a table keeps the last `retain_size` records; set it to at least 1",
            ));
        }
        let factory = config.format.factory()?;
        let records = RetainedRecords::new(config.retain_size);
        let consumer = Arc::new(Consumer::new(
            factory,
            None,
            Some(records.clone()),
            Arc::new(Counters::default()),
        ));
        let settings = EndpointSettings::of(&config);
        let registration = server::register(
            &config.server,
            &config.endpoint,
            &settings,
            consumer.clone(),
        )
        .await?;
        Ok(HttpPushTable {
            config,
            settings,
            consumer,
            records,
            registration: Some(registration),
        })
    }

    /// A table from the properties of [`SPEC`](crate::SPEC).
    pub async fn from_properties(props: &Properties) -> Result<Self> {
        HttpPushTable::start(HttpPushConfig::from_properties(props)?).await
    }

    /// The records kept, for lookup.
    pub fn records(&self) -> &RetainedRecords {
        &self.records
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.registration
            .as_ref()
            .map_or(self.config.server.addr, Registration::local_addr)
    }

    /// A URL that reaches the endpoint from this machine.
    pub fn url(&self) -> String {
        endpoint_url(self.local_addr(), &self.config)
    }

    /// What the endpoint has answered so far.
    pub fn stats(&self) -> EndpointStats {
        self.counters().snapshot()
    }

    /// A handle that reads [`stats`](Self::stats) from elsewhere.
    pub fn counters(&self) -> EndpointCounters {
        EndpointCounters::new(self.consumer.counters.clone(), None)
    }

    /// The connection check (see [`Source::check`]).
    pub async fn check(&self, timeout: Duration) -> CheckReport {
        let consumer_id = self.registration.as_ref().map(|_| self.consumer.id);
        check(&self.config, &self.settings, consumer_id, timeout).await
    }

    /// Leaves the endpoint; when this was the server's last consumer, waits
    /// until the port is released.
    pub async fn close(mut self) {
        if let Some(registration) = self.registration.take() {
            registration.close().await;
        }
    }
}
