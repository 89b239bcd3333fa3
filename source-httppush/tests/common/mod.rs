//! Helpers shared by the httppush integration tests: addresses, HTTP
//! clients, and a source running inside a pipeline.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use connector_core::memory::{CollectSink, Collected};
use connector_core::pipeline::PipelineHandle;
use connector_core::{Pipeline, Record, Value};
use source_httppush::{EndpointCounters, HttpPushConfig, HttpPushSource, RetainedRecords};

/// How long tests wait for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(20);

/// A loopback address on a free port: each test gets its own server.
pub fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], testkit::free_port()))
}

fn install_crypto() {
    let _ =
        rustls::crypto::CryptoProvider::install_default(rustls::crypto::ring::default_provider());
}

/// A plain-HTTP client (keep-alive, HTTP/1.1).
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("build the HTTP client")
}

/// A client that trusts exactly `ca_pem` (a self-signed server certificate).
pub fn tls_client(ca_pem: &str) -> reqwest::Client {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("PEM certificate")).expect("add root");
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .timeout(WAIT)
        .tls_backend_preconfigured(tls)
        .build()
        .expect("build the HTTPS client")
}

/// Sends `body` with `method` and returns the status, the `Retry-After`
/// header and the answer's body.
pub async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Option<String>, String) {
    let response = client
        .request(method, url)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.text().await.unwrap())
}

/// POSTs `body` and returns the status and the answer's body.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let (status, _, text) = send(client, reqwest::Method::POST, url, body).await;
    (status, text)
}

/// A source running in a pipeline that collects what it delivers.
pub struct Running {
    pub url: String,
    pub addr: SocketAddr,
    pub counters: EndpointCounters,
    pub retained: Option<RetainedRecords>,
    pub collected: Collected,
    pub pipeline: PipelineHandle,
}

impl Running {
    /// Waits until `n` records were delivered.
    pub async fn wait_for(&self, n: usize) -> Vec<Record> {
        assert!(
            self.collected.wait_for(n, WAIT).await,
            "expected {n} records, got {}",
            self.collected.len()
        );
        self.collected.records()
    }

    /// Stops the pipeline (the source closes) and waits for it.
    pub async fn stop(self) {
        self.pipeline.stop();
        self.pipeline.join().await.expect("pipeline ends cleanly");
    }
}

/// Starts a source for `config` (its endpoint is live on return) and runs
/// it into a collecting sink that delivers everything.
pub async fn run(config: HttpPushConfig) -> Running {
    run_with(config, |sink| sink).await
}

/// Like [`run`], with the sink adjusted by `adjust` (delays, outcomes).
pub async fn run_with(
    config: HttpPushConfig,
    adjust: impl FnOnce(CollectSink) -> CollectSink,
) -> Running {
    let mut source = HttpPushSource::new(config).expect("valid config");
    let addr = source.start().await.expect("server starts");
    let url = source.url().expect("started");
    let counters = source.counters();
    let retained = source.retained();
    let (sink, collected) = CollectSink::new();
    let pipeline = Pipeline::new(source).to(adjust(sink)).spawn();
    Running {
        url,
        addr,
        counters,
        retained,
        collected,
        pipeline,
    }
}

/// A config for `endpoint` on a fresh loopback port.
pub fn config(endpoint: &str) -> HttpPushConfig {
    HttpPushConfig::new(endpoint).with_address(local())
}

/// Whether the port can be bound again (the server released it).
pub fn port_is_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// The string value of `field`.
pub fn string(record: &Record, field: &str) -> String {
    match record.get(field) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("field `{field}` is {other:?}"),
    }
}
