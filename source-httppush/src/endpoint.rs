//! One endpoint (path + method): who consumes it, and how a request is
//! answered — authorization, body limits, decoding, admission into each
//! consumer's bounded queue, and the optional wait for delivery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use connector_core::config::format_duration;
use connector_core::format::{Decoder, MessageMeta, decode_message};
use connector_core::{Ack, AckReceiver, AckStatus, Position, Record, Result, Secret};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use subtle::ConstantTimeEq;
use tracing::debug;

use crate::config::{COMPONENT, DecoderFactory, HttpPushConfig, PushMethod};
use crate::queue::{Item, Queue, Refused};
use crate::retain::RetainedRecords;
use crate::stats::Counters;

/// How long a client may take to send its body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings that belong to the endpoint itself: every source sharing it
/// must agree on them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EndpointSettings {
    pub method: PushMethod,
    pub shared: bool,
    pub bearer_token: Option<Secret>,
    pub wait_for_delivery: bool,
    pub delivery_timeout: Duration,
    pub max_body_bytes: usize,
    pub retry_after: Duration,
}

impl EndpointSettings {
    pub(crate) fn of(config: &HttpPushConfig) -> Self {
        EndpointSettings {
            method: config.method,
            shared: config.shared,
            bearer_token: config.bearer_token.clone(),
            wait_for_delivery: config.wait_for_delivery,
            delivery_timeout: config.delivery_timeout,
            max_body_bytes: config.max_body_bytes,
            retry_after: config.retry_after,
        }
    }

    /// The first property on which `other` differs, if any.
    pub(crate) fn differs(&self, other: &EndpointSettings) -> Option<&'static str> {
        if self.bearer_token != other.bearer_token {
            Some("bearer_token")
        } else if self.wait_for_delivery != other.wait_for_delivery {
            Some("wait_for_delivery")
        } else if self.wait_for_delivery && self.delivery_timeout != other.delivery_timeout {
            Some("delivery_timeout")
        } else if self.max_body_bytes != other.max_body_bytes {
            Some("max_body_bytes")
        } else if self.retry_after != other.retry_after {
            Some("retry_after")
        } else {
            None
        }
    }
}

/// Decoders built on demand and reused, so concurrent requests decode in
/// parallel without sharing one decoder.
struct DecoderPool {
    factory: DecoderFactory,
    idle: Mutex<Vec<Box<dyn Decoder>>>,
}

impl DecoderPool {
    fn get(&self) -> Box<dyn Decoder> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        idle.unwrap_or_else(|| (self.factory)())
    }

    fn put(&self, decoder: Box<dyn Decoder>) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(decoder);
    }
}

/// One source's (or table's) share of an endpoint.
pub(crate) struct Consumer {
    pub id: u64,
    decoders: DecoderPool,
    /// Where accepted records wait for the source; `None` for a table,
    /// which only retains.
    pub queue: Option<Arc<Queue>>,
    pub retained: Option<RetainedRecords>,
    pub counters: Arc<Counters>,
    next_seq: AtomicU64,
}

impl Consumer {
    pub(crate) fn new(
        factory: DecoderFactory,
        queue: Option<Arc<Queue>>,
        retained: Option<RetainedRecords>,
        counters: Arc<Counters>,
    ) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(1);
        Consumer {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            decoders: DecoderPool {
                factory,
                idle: Mutex::new(Vec::new()),
            },
            queue,
            retained,
            counters,
            next_seq: AtomicU64::new(0),
        }
    }

    /// Decodes a body into records stamped with the arrival time.
    pub(crate) async fn decode(&self, body: &[u8], arrived: i64) -> Result<Vec<Record>> {
        let mut decoder = self.decoders.get();
        let mut records = Vec::new();
        let meta = MessageMeta {
            timestamp: Some(arrived),
            ..MessageMeta::default()
        };
        let result = decode_message(&mut decoder, body, &meta, &mut records).await;
        self.decoders.put(decoder);
        result.map_err(|e| e.in_component(COMPONENT))?;
        Ok(records)
    }

    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        Counters::add(counter(&self.counters), n);
    }
}

/// Sets positions `first_seq + i` on a request's records.
pub(crate) fn number(records: &mut [Record], first_seq: u64) {
    for (i, record) in records.iter_mut().enumerate() {
        record.position = Some(Position::Sequence(first_seq + i as u64));
    }
}

/// An endpoint and its consumers (one, or several when shared).
pub(crate) struct Route {
    pub path: String,
    pub settings: EndpointSettings,
    pub consumers: Vec<Arc<Consumer>>,
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(given.trim().as_bytes().ct_eq(token.expose().as_bytes()))
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Route {
    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64 + Copy) {
        for c in &self.consumers {
            c.count(counter, 1);
        }
    }

    fn too_large(&self) -> Response {
        self.count(|c| &c.too_large);
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than the limit of {} bytes",
                self.settings.max_body_bytes
            ),
        )
    }

    /// Answers one request for this endpoint.
    pub(crate) async fn handle(&self, request: Request<Body>) -> Response {
        self.count(|c| &c.requests);
        let settings = &self.settings;
        if let Some(token) = &settings.bearer_token
            && !authorized(request.headers(), token)
        {
            self.count(|c| &c.unauthorized);
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (send `Authorization: Bearer <token>`)",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"httppush\""),
            );
            return response;
        }
        if let Some(encoding) = request.headers().get(header::CONTENT_ENCODING)
            && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Encoding `{}` is not supported; send the body uncompressed",
                    String::from_utf8_lossy(encoding.as_bytes())
                ),
            );
        }
        let declared_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_length.is_some_and(|n| n > settings.max_body_bytes as u64) {
            return self.too_large();
        }
        let limited = Limited::new(request.into_body(), settings.max_body_bytes);
        let body = match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return self.too_large();
            }
            Ok(Err(e)) => {
                debug!(path = %self.path, error = %e, "reading a request body failed");
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                );
            }
            Err(_) => {
                return text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {}",
                        format_duration(BODY_READ_TIMEOUT)
                    ),
                );
            }
        };
        self.accept(body).await
    }

    /// Decodes `body` for every consumer, admits it into every queue (all
    /// or none), and answers.
    async fn accept(&self, body: Bytes) -> Response {
        let arrived = now_micros();
        let bytes = body.len().max(1);
        // The common case, one consumer, without the bookkeeping of several.
        if let [consumer] = self.consumers.as_slice() {
            let records = match consumer.decode(&body, arrived).await {
                Ok(records) => records,
                Err(e) => return self.bad_request(&e),
            };
            let queued = consumer.queue.is_some() && !records.is_empty();
            if queued
                && let Some(queue) = &consumer.queue
                && let Err(refused) = queue.reserve(records.len(), bytes)
            {
                return self.refuse(refused);
            }
            let (responder, outcome) = self.responder(queued);
            self.enqueue(consumer, records, &body, bytes, arrived, responder);
            return self.answer(outcome).await;
        }

        let mut decoded = Vec::with_capacity(self.consumers.len());
        for consumer in &self.consumers {
            match consumer.decode(&body, arrived).await {
                Ok(records) => decoded.push(records),
                Err(e) => return self.bad_request(&e),
            }
        }
        // Room for the records in every queue, or in none: a client told to
        // retry must not leave a copy behind in some of them.
        let mut reserved: Vec<(&Queue, usize)> = Vec::with_capacity(self.consumers.len());
        for (consumer, records) in self.consumers.iter().zip(&decoded) {
            let Some(queue) = consumer.queue.as_deref() else {
                continue;
            };
            if records.is_empty() {
                continue;
            }
            if let Err(refused) = queue.reserve(records.len(), bytes) {
                for (queue, n) in reserved {
                    queue.release(n, bytes);
                }
                return self.refuse(refused);
            }
            reserved.push((queue, records.len()));
        }
        let (responder, outcome) = self.responder(!reserved.is_empty());
        // One responder handle per queued item: clones for all but the
        // last, which takes the original (an unresolved extra handle would
        // count as a failure).
        let mut handles_left = reserved.len();
        let mut responder = responder;
        for (consumer, records) in self.consumers.iter().zip(decoded) {
            let queued = consumer.queue.is_some() && !records.is_empty();
            let handle = if queued {
                handles_left -= 1;
                if handles_left == 0 {
                    responder.take()
                } else {
                    responder.clone()
                }
            } else {
                None
            };
            self.enqueue(consumer, records, &body, bytes, arrived, handle);
        }
        self.answer(outcome).await
    }

    fn bad_request(&self, e: &connector_core::Error) -> Response {
        self.count(|c| &c.bad_requests);
        debug!(path = %self.path, error = %e, "request body does not decode");
        text(StatusCode::BAD_REQUEST, e.to_string())
    }

    /// With `wait_for_delivery` and records queued: the handle the batch
    /// resolves, and the outcome the answer waits for.
    fn responder(&self, queued: bool) -> (Option<Ack>, Option<AckReceiver>) {
        if self.settings.wait_for_delivery && queued {
            let (ack, rx) = Ack::channel();
            (Some(ack), Some(rx))
        } else {
            (None, None)
        }
    }

    /// Counts and retains the accepted records and queues them (room was
    /// reserved) for the consumer's source.
    fn enqueue(
        &self,
        consumer: &Consumer,
        mut records: Vec<Record>,
        body: &Bytes,
        bytes: usize,
        arrived: i64,
        responder: Option<Ack>,
    ) {
        let n = records.len() as u64;
        consumer.count(|c| &c.accepted_requests, 1);
        consumer.count(|c| &c.accepted_records, n);
        if let Some(retained) = &consumer.retained {
            retained.extend(&records);
        }
        let Some(queue) = &consumer.queue else {
            return;
        };
        if records.is_empty() {
            return;
        }
        let first_seq = consumer.next_seq.fetch_add(n, Ordering::Relaxed);
        number(&mut records, first_seq);
        queue.push(Item {
            count: records.len(),
            records: Some(records),
            // The client resends after a failure when it waits; otherwise
            // the body is kept to deliver again, as a copy: the received
            // body is a slice of the connection's read buffer, which it
            // would keep alive whole.
            body: if responder.is_some() {
                Bytes::new()
            } else {
                Bytes::copy_from_slice(body)
            },
            bytes,
            arrived,
            first_seq,
            responder,
        });
    }

    /// `200 ok` at once, or after the outcome of delivery.
    async fn answer(&self, outcome: Option<AckReceiver>) -> Response {
        let Some(outcome) = outcome else {
            return text(StatusCode::OK, "ok");
        };
        let settings = &self.settings;
        match tokio::time::timeout(settings.delivery_timeout, outcome).await {
            Ok(AckStatus::Delivered) => {
                self.count(|c| &c.delivered_requests);
                text(StatusCode::OK, "ok")
            }
            Ok(status) => {
                self.count(|c| &c.failed_requests);
                let reason = status
                    .error()
                    .map_or_else(|| "unknown error".to_owned(), |e| e.to_string());
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("records not delivered: {reason}"),
                )
            }
            Err(_) => {
                self.count(|c| &c.timed_out_requests);
                text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "delivery not confirmed within {}; the records may still be delivered",
                        format_duration(settings.delivery_timeout)
                    ),
                )
            }
        }
    }

    fn refuse(&self, refused: Refused) -> Response {
        match refused {
            Refused::Full => {
                self.count(|c| &c.busy);
                let secs = self.settings.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let mut response = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "the pipeline behind `{}` is full; retry after {secs}s",
                        self.path
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                response
            }
            Refused::Closed => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the endpoint `{}` is shutting down", self.path),
            ),
        }
    }
}

/// 404 for a path no source serves.
pub(crate) fn not_found(path: &str) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!("no endpoint at `{}`", path.escape_debug()),
    )
}

/// 405 for a method the path does not accept, with `Allow`.
pub(crate) fn method_not_allowed(method: &str, path: &str, allowed: &[PushMethod]) -> Response {
    let allow = allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "`{method}` is not allowed at `{}`; use {allow}",
            path.escape_debug()
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}
