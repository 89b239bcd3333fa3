//! Turning a partition reader's raw batch into records, on the task that
//! calls `next_batch`.
//!
//! The readers only copy each batch's payloads and keys into one buffer
//! (two allocations per batch); decoding happens here. Records are freed
//! where the sink drops them, usually on the task that asked for the batch:
//! built on the readers' threads instead, nearly every free went to another
//! thread's allocator arena and contended on its lock, which cost the
//! readers half their time (see BENCHMARKS.md). Redelivery is unchanged:
//! the batch's ack was taken by its reader, and a batch dropped here (an
//! error that stops the source) fails it, so its range is read again.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use connector_core::format::{Decoder, MessageMeta, Progress, decode_message};
use connector_core::{Ack, BadRecord, Batch, Header, Position, Record, Result};

/// Makes a decoder for each partition.
pub(crate) type DecoderFactory = Arc<dyn Fn() -> Result<Box<dyn Decoder>> + Send + Sync>;

/// The undecoded messages of one batch of one partition.
pub(crate) struct RawBatch {
    pub partition: i32,
    /// Payloads and keys, back to back.
    pub data: Vec<u8>,
    pub messages: Vec<RawMessage>,
    /// Payload bytes read.
    pub bytes: u64,
    pub ack: Ack,
}

/// One message of a [`RawBatch`].
pub(crate) struct RawMessage {
    pub offset: i64,
    /// Where the payload is in [`RawBatch::data`].
    pub payload: Range<usize>,
    /// Where the key is in [`RawBatch::data`].
    pub key: Option<Range<usize>>,
    /// Microseconds since the epoch.
    pub timestamp: Option<i64>,
    pub headers: Vec<Header>,
}

/// Buffers of decoded batches, handed back to the readers: allocating and
/// freeing them per batch cost more than copying into them (large frees
/// make glibc consolidate its free lists, and they happen on another thread
/// than the allocation).
#[derive(Default)]
pub(crate) struct Spares(Mutex<Vec<(Vec<u8>, Vec<RawMessage>)>>);

/// Spares kept at most; more are freed.
const MAX_SPARES: usize = 16;
/// Buffers larger than this are freed, not kept (a batch of large messages
/// must not pin its memory).
const MAX_SPARE_BYTES: usize = 4 << 20;

impl Spares {
    /// Empty buffers, if any are spare.
    pub fn take(&self) -> Option<(Vec<u8>, Vec<RawMessage>)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn give(&self, mut data: Vec<u8>, mut messages: Vec<RawMessage>) {
        if data.capacity() > MAX_SPARE_BYTES {
            return;
        }
        data.clear();
        messages.clear();
        let mut spares = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if spares.len() < MAX_SPARES {
            spares.push((data, messages));
        }
    }
}

/// The decoders of a source, one per partition (decoders keep state, such
/// as the schemas they resolved).
pub(crate) struct Decoders {
    make: DecoderFactory,
    name: Arc<str>,
    topic: Arc<str>,
    by_partition: HashMap<i32, Box<dyn Decoder>>,
    spares: Arc<Spares>,
}

impl Decoders {
    pub fn new(make: DecoderFactory, name: Arc<str>, topic: Arc<str>) -> Self {
        Decoders {
            make,
            name,
            topic,
            by_partition: HashMap::new(),
            spares: Arc::default(),
        }
    }

    /// Where the readers find the buffers of decoded batches.
    pub fn spares(&self) -> Arc<Spares> {
        self.spares.clone()
    }

    /// Decodes `raw` into a batch under its ack. Undecodable payloads become
    /// bad records; an error that is not about the data (a schema registry
    /// that cannot be reached) drops the batch, which fails its ack.
    pub async fn decode(&mut self, raw: RawBatch) -> Result<Batch> {
        let decoder = match self.by_partition.entry(raw.partition) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert((self.make)()?),
        };
        let RawBatch {
            partition,
            data,
            mut messages,
            bytes,
            ack,
        } = raw;
        // Most messages make one record.
        let mut records = Vec::with_capacity(messages.len());
        let mut bad = Vec::new();
        for message in messages.drain(..) {
            let payload = &data[message.payload];
            let key = message.key.map(|r| &data[r]);
            let position = Position::Offset {
                topic: self.topic.clone(),
                partition,
                offset: message.offset,
            };
            let meta = MessageMeta {
                key,
                timestamp: message.timestamp,
                headers: &message.headers,
                position: Some(&position),
            };
            let start = records.len();
            let decoded = match decoder.decode(payload, &meta, &mut records) {
                Ok(Progress::Done) => Ok(()),
                Ok(Progress::NeedsResolve) => {
                    records.truncate(start);
                    decode_message(&mut **decoder, payload, &meta, &mut records).await
                }
                Err(e) => Err(e.at(&position)),
            };
            match decoded {
                Ok(()) => stamp(
                    &mut records[start..],
                    key,
                    message.timestamp,
                    message.headers,
                    position,
                ),
                Err(e) if e.is_bad_data() => {
                    records.truncate(start);
                    bad.push(BadRecord::undecodable(
                        e.in_component(self.name.to_string()),
                        Bytes::copy_from_slice(payload),
                        Some(position),
                    ));
                }
                Err(e) => return Err(e.in_component(self.name.to_string())),
            }
        }
        self.spares.give(data, messages);
        let mut batch = Batch::with_ack(records, ack);
        batch.bad = bad;
        batch.source_bytes = bytes;
        Ok(batch)
    }
}

/// Fills in the message's key, time, headers and position where the decoder
/// left them unset (as [`connector_core::format::stamp`] does), moving them
/// into the last record rather than cloning.
fn stamp(
    records: &mut [Record],
    key: Option<&[u8]>,
    timestamp: Option<i64>,
    headers: Vec<Header>,
    position: Position,
) {
    let Some((last, rest)) = records.split_last_mut() else {
        return;
    };
    let key = key.map(Bytes::copy_from_slice);
    for record in rest {
        fill(
            record,
            key.clone(),
            timestamp,
            headers.clone(),
            position.clone(),
        );
    }
    fill(last, key, timestamp, headers, position);
}

fn fill(
    record: &mut Record,
    key: Option<Bytes>,
    timestamp: Option<i64>,
    headers: Vec<Header>,
    position: Position,
) {
    if record.key.is_none() {
        record.key = key;
    }
    if record.timestamp.is_none() {
        record.timestamp = timestamp;
    }
    if record.headers.is_empty() {
        record.headers = headers;
    }
    if record.position.is_none() {
        record.position = Some(position);
    }
}
