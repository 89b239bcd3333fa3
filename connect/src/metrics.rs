//! The Prometheus endpoint of `connect run --metrics-addr`: the pipeline's
//! counters in the text exposition format at `/metrics`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use connector_core::{Metrics, MetricsSnapshot};

/// (name, type, help, value).
type Sample = (&'static str, &'static str, &'static str, f64);

fn samples(m: &MetricsSnapshot, uptime: f64) -> [Sample; 12] {
    [
        (
            "connect_records_in_total",
            "counter",
            "Records read from the source, bad ones included.",
            m.records_in as f64,
        ),
        (
            "connect_bytes_in_total",
            "counter",
            "Bytes read from the source (payload sizes, or estimated record sizes).",
            m.bytes_in as f64,
        ),
        (
            "connect_records_out_total",
            "counter",
            "Records the sinks acknowledged as delivered.",
            m.records_out as f64,
        ),
        (
            "connect_bytes_out_total",
            "counter",
            "Estimated size of the delivered records.",
            m.bytes_out as f64,
        ),
        (
            "connect_bad_records_total",
            "counter",
            "Records that could not be decoded, were refused by a step, or were rejected by a sink.",
            m.bad_records as f64,
        ),
        (
            "connect_dead_lettered_total",
            "counter",
            "Bad records written to the dead-letter sink.",
            m.dead_lettered as f64,
        ),
        (
            "connect_batches_delivered_total",
            "counter",
            "Batches the sinks delivered.",
            m.batches_delivered as f64,
        ),
        (
            "connect_batches_failed_total",
            "counter",
            "Batches the sinks failed to deliver (the source delivers them again).",
            m.batches_failed as f64,
        ),
        (
            "connect_batches_rejected_total",
            "counter",
            "Batches the sinks rejected as bad data.",
            m.batches_rejected as f64,
        ),
        (
            "connect_batches_in_flight",
            "gauge",
            "Batches handed to the sinks and not yet acknowledged.",
            m.batches_in_flight as f64,
        ),
        (
            "connect_records_in_flight",
            "gauge",
            "Records in the batches in flight.",
            m.records_in_flight as f64,
        ),
        (
            "connect_uptime_seconds",
            "gauge",
            "Seconds since the pipeline started.",
            uptime,
        ),
    ]
}

/// The exposition text for one pipeline.
pub fn render(pipeline: &str, m: &MetricsSnapshot, uptime: f64) -> String {
    let label = pipeline
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let mut out = String::with_capacity(2048);
    for (name, kind, help, value) in samples(m, uptime) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{pipeline=\"{label}\"}} {value}");
    }
    out
}

/// Binds `addr` and serves `/metrics` until the task is aborted. Returns
/// the bound address (port 0 picks one) and the server task.
pub async fn serve(
    addr: SocketAddr,
    pipeline: String,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let started = Instant::now();
    let pipeline = Arc::new(pipeline);
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            let pipeline = pipeline.clone();
            async move {
                let body = render(
                    &pipeline,
                    &metrics.snapshot(),
                    started.elapsed().as_secs_f64(),
                );
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    body,
                )
                    .into_response()
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let m = MetricsSnapshot {
            records_in: 5,
            batches_in_flight: 2,
            ..MetricsSnapshot::default()
        };
        let text = render("a\"b", &m, 1.5);
        assert!(text.contains("# TYPE connect_records_in_total counter\nconnect_records_in_total{pipeline=\"a\\\"b\"} 5\n"), "{text}");
        assert!(text.contains("connect_batches_in_flight{pipeline=\"a\\\"b\"} 2\n"));
        assert!(text.contains("connect_uptime_seconds{pipeline=\"a\\\"b\"} 1.5\n"));
        assert_eq!(text.lines().count(), 36);
    }
}
