//! Data formats: [`Decoder`]s turn payloads into records, [`Encoder`]s turn
//! records into payloads. Every connector reuses them through `data_type`
//! style properties.
//!
//! Codecs are synchronous, so the per-message path costs no allocation of a
//! future. A codec that needs network work first (an Avro decoder meeting an
//! unknown schema id, an encoder registering its schema) returns
//! [`Progress::NeedsResolve`]; the caller awaits [`Decoder::resolve`] and
//! calls again. [`decode_message`] and [`encode_record`] do that dance.
//!
//! Connectors build codecs from their properties through [`FormatConfig`]
//! (see [`config`]) and list the shared property specs of [`props`]:
//!
//! ```
//! use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
//! use connector_core::format::{props, FormatConfig, MessageMeta, decode_message};
//! use connector_core::Properties;
//!
//! static SPEC: ConnectorSpec = ConnectorSpec {
//!     name: "kafka",
//!     role: Role::Source,
//!     description: "Reads a Kafka topic.",
//!     properties: &[
//!         PropertySpec::required("topic", PropertyKind::String, "Topic to read."),
//!         props::DATA_TYPE, // required; `props::DATA_TYPE_DEFAULT_JSON` for sinks
//!         props::SCHEMA_REGISTRY_ADDRESS,
//!         props::SCHEMA_REGISTRY_API_KEY,
//!         props::SCHEMA_REGISTRY_API_SECRET,
//!     ],
//! };
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> connector_core::Result<()> {
//! let props = Properties::from_pairs([("topic", "orders"), ("data_type", "debezium-json")]);
//! let mut reader = PropertyReader::new(&SPEC, &props);
//! let topic: String = reader.required("topic");
//! let format = FormatConfig::read(&mut reader); // problems are reported by finish()
//! reader.finish()?;
//! let mut decoder = format.decoder()?; // Box<dyn Decoder>; a sink calls
//!                                      // format.with_default_subject(format!("{topic}-value")).encoder()
//! let mut records = Vec::new();
//! let meta = MessageMeta { key: Some(b"{\"id\": 1}"), ..MessageMeta::default() };
//! decode_message(&mut decoder, br#"{"op": "c", "after": {"id": 1}}"#, &meta, &mut records).await?;
//! assert_eq!(records.len(), 1);
//! # Ok(()) }
//! ```
//!
//! | `data_type` | module | cargo feature |
//! | --- | --- | --- |
//! | `json` | [`json`] | always |
//! | `text` | [`text`] | always |
//! | `binary` | [`binary`] | always |
//! | `delimited` | [`delimited`] | always |
//! | `avro` | `avro` (+ `registry`) | `avro` |
//! | `protobuf` | `protobuf` | `protobuf` |
//! | `debezium-json`, `debezium-json-upsert` | [`debezium`] over [`json`] | always |
//! | `debezium-avro`, `debezium-avro-upsert` | [`debezium`] over `avro` | `avro` |
//!
//! The envelope ([`Envelope`]: plain, Debezium, Debezium upsert) is
//! separate from the encoding ([`Encoding`]): [`debezium::DebeziumDecoder`]
//! wraps any decoder that yields envelope records. Declared schemas and
//! their conversion rules are in [`declared`], timestamp formats in
//! [`timestamp`], and the Go-style templates sinks use in [`template`]
//! (supported: `{{ .col }}`, `{{.col}}`, nested `{{ .a.b }}`, array
//! indexes, `{{ . }}`, `{{ json .col }}`, `{{-`/`-}}` trimming, and
//! `<no value>` for missing fields; `if`, `range`, pipelines and variables
//! are rejected when the template is parsed).

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::error::Result;
use crate::record::{Header, Position, Record};

#[cfg(feature = "avro")]
pub mod avro;
pub mod binary;
pub mod config;
pub mod debezium;
pub mod declared;
pub mod delimited;
pub mod json;
pub mod props;
#[cfg(feature = "protobuf")]
pub mod protobuf;
#[cfg(feature = "avro")]
pub mod registry;
pub mod template;
pub mod text;
pub mod timestamp;

pub use config::{DataFormat, Encoding, Envelope, FormatConfig, ProtoConfig, RegistryConfig};

/// Whether a codec call finished or needs [`Decoder::resolve`] /
/// [`Encoder::resolve`] first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Progress {
    /// The call did its work.
    Done,
    /// Await `resolve()`, then make the same call again.
    NeedsResolve,
}

/// What a source knows about the message whose payload is decoded.
#[derive(Debug, Default, Clone)]
pub struct MessageMeta<'a> {
    /// Message key.
    pub key: Option<&'a [u8]>,
    /// Message time, microseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Message headers.
    pub headers: &'a [Header],
    /// Where the message came from.
    pub position: Option<&'a Position>,
}

/// Turns one payload into zero or more records.
pub trait Decoder: Send {
    /// Format name for errors, e.g. `json`.
    fn format(&self) -> &'static str;

    /// Appends the records of `payload` to `out`. On error nothing is
    /// appended. Errors name the format and, where the payload has an inner
    /// structure, the line or element; the caller adds the message position.
    fn decode(
        &mut self,
        payload: &[u8],
        meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress>;

    /// Does the network work a previous call asked for.
    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Turns one record into one payload.
pub trait Encoder: Send {
    /// Format name for errors, e.g. `json`.
    fn format(&self) -> &'static str;

    /// MIME type of the payloads, for HTTP sinks.
    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }

    /// Appends the payload of `record` to `out`. On error `out` is left as it was.
    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress>;

    /// Does the network work a previous call asked for.
    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl<D: Decoder + ?Sized> Decoder for Box<D> {
    fn format(&self) -> &'static str {
        (**self).format()
    }
    fn decode(
        &mut self,
        payload: &[u8],
        meta: &MessageMeta<'_>,
        out: &mut Vec<Record>,
    ) -> Result<Progress> {
        (**self).decode(payload, meta, out)
    }
    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        (**self).resolve()
    }
}

impl<E: Encoder + ?Sized> Encoder for Box<E> {
    fn format(&self) -> &'static str {
        (**self).format()
    }
    fn content_type(&self) -> &'static str {
        (**self).content_type()
    }
    fn encode(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<Progress> {
        (**self).encode(record, out)
    }
    fn resolve(&mut self) -> BoxFuture<'_, Result<()>> {
        (**self).resolve()
    }
}

/// How many times a codec may ask for `resolve` on one call before the
/// caller gives up (a codec that keeps asking is broken).
const MAX_RESOLVES: usize = 4;

/// Decodes one message: runs the decoder (resolving as it asks), then stamps
/// the new records with the message's key, time, headers and position where
/// the decoder did not set them. Errors get the message position added.
pub async fn decode_message<D: Decoder + ?Sized>(
    decoder: &mut D,
    payload: &[u8],
    meta: &MessageMeta<'_>,
    out: &mut Vec<Record>,
) -> Result<()> {
    let start = out.len();
    let mut resolves = 0;
    loop {
        let progress = decoder
            .decode(payload, meta, out)
            .map_err(|e| match meta.position {
                Some(p) => e.at(p),
                None => e,
            })?;
        match progress {
            Progress::Done => break,
            Progress::NeedsResolve if resolves < MAX_RESOLVES => {
                resolves += 1;
                out.truncate(start);
                decoder.resolve().await?;
            }
            Progress::NeedsResolve => {
                out.truncate(start);
                let err = crate::Error::decode(
                    decoder.format(),
                    "",
                    "decoder kept asking to resolve the same payload",
                );
                return Err(match meta.position {
                    Some(p) => err.at(p),
                    None => err,
                });
            }
        }
    }
    stamp(&mut out[start..], meta);
    Ok(())
}

/// Fills in message metadata the decoder left unset.
pub fn stamp(records: &mut [Record], meta: &MessageMeta<'_>) {
    if meta.key.is_none()
        && meta.timestamp.is_none()
        && meta.headers.is_empty()
        && meta.position.is_none()
    {
        return;
    }
    let key = meta.key.map(Bytes::copy_from_slice);
    for record in records {
        if record.key.is_none() {
            record.key.clone_from(&key);
        }
        if record.timestamp.is_none() {
            record.timestamp = meta.timestamp;
        }
        if record.headers.is_empty() && !meta.headers.is_empty() {
            record.headers = meta.headers.to_vec();
        }
        if record.position.is_none() {
            record.position = meta.position.cloned();
        }
    }
}

/// Encodes one record, resolving as the encoder asks.
pub async fn encode_record<E: Encoder + ?Sized>(
    encoder: &mut E,
    record: &Record,
    out: &mut Vec<u8>,
) -> Result<()> {
    for _ in 0..=MAX_RESOLVES {
        match encoder.encode(record, out)? {
            Progress::Done => return Ok(()),
            Progress::NeedsResolve => encoder.resolve().await?,
        }
    }
    Err(crate::Error::encode(
        encoder.format(),
        record
            .position
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
        "encoder kept asking to resolve the same record",
    ))
}

/// How encode errors name a record: its source position, if known.
pub(crate) fn record_position(record: &Record) -> String {
    record
        .position
        .as_ref()
        .map_or_else(|| "(no position)".to_owned(), ToString::to_string)
}
