//! The `GET ?data` reply: a stream of `[u32 stream_id][u64 next_row_id][one IPC message]`
//! chunks, one stream id per sub-split, with keep-alive (`0xFFFFFFFF`), completed
//! (`0xFFFFFFFE`) and failed (`0xFFFFFFFD` + u64 code + u32) markers. Each projected leaf
//! column arrives as its own small IPC stream; once every leaf of a round has arrived for a
//! sub-split, the round becomes record batches and the sub-split's resume point.
//!
//! [`ReplyDecoder`] is push-based: feed it bytes as they arrive, in pieces cut anywhere, and
//! it hands out record batches as soon as their round is complete: one per batch the server
//! sent when every leaf column was cut at the same rows (as VastDB and the emulator send
//! them), else one per round with each leaf's pieces joined. Memory is bounded by one
//! round per sub-split (the request's `tabular-limit-rows` bounds a round) and by
//! [`Limits`]. Columns whose type has one leaf are supported (scalars, strings, lists and
//! fixed-size lists of scalars), which covers both table layouts the proxy serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{make_array, new_empty_array, Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::SchemaRef;
use bytes::{Buf, BytesMut};

use crate::error::{Error, Result};
use crate::schema::children;

/// The `next_row_id` of a finished sub-split, `2^48 - 1`.
pub const INVALID_ROW_ID: u64 = (1 << 48) - 1;

const KEEP_ALIVE: u32 = 0xFFFF_FFFF;
const COMPLETED: u32 = 0xFFFF_FFFE;
const FAILED: u32 = 0xFFFF_FFFD;
const CONTINUATION: u32 = 0xFFFF_FFFF;
const CHUNK_HEADER: usize = 12;

/// Bounds on what one reply may make the decoder hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest IPC message (metadata and body) accepted.
    pub max_message_bytes: usize,
    /// The most message bytes one sub-split may buffer before its round completes.
    pub max_round_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 256 << 20,
            max_round_bytes: 512 << 20,
        }
    }
}

/// What the decoder hands out.
#[derive(Debug)]
pub enum Event {
    /// Rows of one round of a sub-split, in the response schema (never empty); a round may
    /// come as several batches in a row, always followed by its [`Event::RoundDone`].
    Batch {
        /// The sub-split (stream id).
        sub_split: u32,
        /// The rows.
        batch: RecordBatch,
    },
    /// A sub-split finished a round: resume it at `next_row_id`
    /// ([`INVALID_ROW_ID`] when it has no more rows).
    RoundDone {
        /// The sub-split (stream id).
        sub_split: u32,
        /// Its resume point.
        next_row_id: u64,
    },
}

/// How a reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyEnd {
    /// With the completed marker.
    Completed,
    /// At a clean chunk boundary without the marker (the SDK accepts this; the sub-splits'
    /// resume points say whether more requests are needed).
    Eof,
}

#[derive(Default)]
struct SubSplit {
    /// The IPC stream being received, if one is open.
    stream: Option<OpenStream>,
    /// Leaf arrays of the current round, in order, each in the pieces it arrived in.
    leaves: Vec<Vec<ArrayRef>>,
    /// Rows of a count-only round (no projected column).
    count_rows: usize,
    /// Message bytes buffered in the current round.
    round_bytes: usize,
}

/// A chunk whose header and IPC metadata have arrived, its message still arriving: the
/// message is gathered straight into a buffer aligned for Arrow, so its columns are used
/// where they lie (no second copy to align them).
struct Incoming {
    stream_id: u32,
    next_row_id: u64,
    message: MutableBuffer,
    len: usize,
    is_eos: bool,
}

struct OpenStream {
    /// The stream's schema, which its batches' headers are checked against.
    schema: SchemaRef,
    decoder: StreamDecoder,
    /// Per column of the IPC stream, its pieces so far.
    pieces: Vec<Vec<ArrayRef>>,
    rows: usize,
}

/// Push-based decoder of one `GET ?data` reply.
pub struct ReplyDecoder {
    schema: SchemaRef,
    sub_split_count: u32,
    limits: Limits,
    /// Bytes not yet parsed: chunk headers and IPC metadata (message bodies go to
    /// `incoming`).
    buffer: BytesMut,
    incoming: Option<Incoming>,
    sub_splits: BTreeMap<u32, SubSplit>,
    completed: bool,
}

impl ReplyDecoder {
    /// A decoder for a reply to a query whose projected columns are `schema`, sent with
    /// `sub_split_count` sub-splits.
    pub fn new(schema: SchemaRef, sub_split_count: u32, limits: Limits) -> Result<Self> {
        for field in schema.fields() {
            if leaf_count(field.data_type()) != 1 {
                return Err(Error::UnsupportedType {
                    column: field.name().clone(),
                    data_type: format!(
                        "{} (only columns with a single leaf are re-assembled)",
                        field.data_type()
                    ),
                });
            }
        }
        Ok(Self {
            schema,
            sub_split_count,
            limits,
            buffer: BytesMut::new(),
            incoming: None,
            sub_splits: BTreeMap::new(),
            completed: false,
        })
    }

    /// Whether the completed marker has been seen.
    pub fn is_completed(&self) -> bool {
        self.completed
    }

    /// Feeds the next bytes of the reply; complete rounds are appended to `events`.
    pub fn push(&mut self, mut data: &[u8], events: &mut Vec<Event>) -> Result<()> {
        if self.completed {
            return Ok(()); // whatever follows the completed marker is ignored
        }
        if let Some(incoming) = &mut self.incoming {
            let take = (incoming.len - incoming.message.len()).min(data.len());
            incoming.message.extend_from_slice(&data[..take]);
            data = &data[take..];
            if incoming.message.len() < incoming.len {
                return Ok(());
            }
            self.deliver(events)?;
        }
        self.buffer.extend_from_slice(data);
        while !self.completed && self.incoming.is_none() && self.next_chunk(events)? {}
        if self.completed {
            self.buffer.clear();
        }
        Ok(())
    }

    /// Ends the reply: an error if it stopped inside a chunk, an IPC stream or a round.
    pub fn finish(&self) -> Result<ReplyEnd> {
        if self.completed {
            return Ok(ReplyEnd::Completed);
        }
        if let Some(incoming) = &self.incoming {
            return Err(Error::Truncated(format!(
                "{} of the {} bytes of an IPC message",
                incoming.message.len(),
                incoming.len
            )));
        }
        if !self.buffer.is_empty() {
            return Err(Error::Truncated(format!(
                "{} bytes of an unfinished chunk",
                self.buffer.len()
            )));
        }
        for (id, sub_split) in &self.sub_splits {
            if sub_split.stream.is_some() || !sub_split.leaves.is_empty() {
                return Err(Error::Truncated(format!(
                    "sub-split {id} ended inside a round"
                )));
            }
        }
        Ok(ReplyEnd::Eof)
    }

    /// Decodes one chunk if the buffer holds all of it; false when more bytes are needed.
    fn next_chunk(&mut self, events: &mut Vec<Event>) -> Result<bool> {
        let Some(stream_id) = read_u32(&self.buffer, 0) else {
            return Ok(false);
        };
        match stream_id {
            KEEP_ALIVE => {
                self.buffer.advance(4);
                return Ok(true);
            }
            COMPLETED => {
                self.completed = true;
                return Ok(true);
            }
            FAILED => {
                return match read_u64(&self.buffer, 4) {
                    Some(code) => Err(Error::QueryFailed { code }),
                    None => Ok(false),
                };
            }
            _ => {}
        }
        if stream_id >= self.sub_split_count {
            return Err(Error::Malformed {
                what: "query reply",
                reason: format!(
                    "stream id {stream_id} beyond the {} sub-splits requested",
                    self.sub_split_count
                ),
            });
        }
        let Some(next_row_id) = read_u64(&self.buffer, 4) else {
            return Ok(false);
        };
        let Some(extent) = self.message_extent(stream_id)? else {
            return Ok(false);
        };
        self.buffer.advance(CHUNK_HEADER);
        let have = extent.len.min(self.buffer.len());
        let mut message = MutableBuffer::with_capacity(extent.len);
        message.extend_from_slice(&self.buffer[..have]);
        self.buffer.advance(have);
        self.incoming = Some(Incoming {
            stream_id,
            next_row_id,
            message,
            len: extent.len,
            is_eos: extent.is_eos,
        });
        if have < extent.len {
            return Ok(false);
        }
        self.deliver(events)?;
        Ok(true)
    }

    /// Decodes the message gathered in `incoming`.
    fn deliver(&mut self, events: &mut Vec<Event>) -> Result<()> {
        let done = self.incoming.take().expect("a message was gathered");
        let bytes = Buffer::from(done.message);
        self.on_message(done.stream_id, done.next_row_id, bytes, done.is_eos, events)
    }

    /// The length of the IPC message after the chunk header, once the buffer holds its
    /// metadata (the body may still be arriving).
    fn message_extent(&self, stream_id: u32) -> Result<Option<Extent>> {
        let at = CHUNK_HEADER;
        let Some(first) = read_u32(&self.buffer, at) else {
            return Ok(None);
        };
        let (prefix, meta_len) = if first == CONTINUATION {
            match read_u32(&self.buffer, at + 4) {
                Some(len) => (8, len as usize),
                None => return Ok(None),
            }
        } else {
            (4, first as usize)
        };
        if meta_len == 0 {
            return Ok(Some(Extent {
                len: prefix,
                is_eos: true,
            }));
        }
        if meta_len > self.limits.max_message_bytes {
            return Err(self.too_large(stream_id, meta_len));
        }
        let meta_start = at + prefix;
        let Some(meta) = self.buffer.get(meta_start..meta_start + meta_len) else {
            return Ok(None);
        };
        let malformed = |reason: String| Error::Malformed {
            what: "IPC message in a query reply",
            reason: format!("sub-split {stream_id}: {reason}"),
        };
        let message = arrow_ipc::root_as_message(meta).map_err(|e| malformed(e.to_string()))?;
        let body_len = message.bodyLength();
        let body_len = usize::try_from(body_len)
            .ok()
            .filter(|len| meta_len + len <= self.limits.max_message_bytes)
            .ok_or_else(|| self.too_large(stream_id, body_len.max(0) as usize))?;
        // arrow-ipc's decoder trusts a verified header: check what it would panic on.
        pocaduck_edge_ipc_check::check_message(&message, body_len)
            .map_err(|e| malformed(e.to_string()))?;
        Ok(Some(Extent {
            len: prefix + meta_len + body_len,
            is_eos: false,
        }))
    }

    fn too_large(&self, stream_id: u32, len: usize) -> Error {
        Error::LimitExceeded(format!(
            "an IPC message of {len} bytes in sub-split {stream_id} (limit {})",
            self.limits.max_message_bytes
        ))
    }

    fn on_message(
        &mut self,
        stream_id: u32,
        next_row_id: u64,
        bytes: Buffer,
        is_eos: bool,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let ipc = |source| Error::Ipc {
            sub_split: stream_id,
            source,
        };
        let sub_split = self.sub_splits.entry(stream_id).or_default();
        sub_split.round_bytes += bytes.len();
        if sub_split.round_bytes > self.limits.max_round_bytes {
            return Err(Error::LimitExceeded(format!(
                "sub-split {stream_id} buffered {} bytes in one round (limit {})",
                sub_split.round_bytes, self.limits.max_round_bytes
            )));
        }
        let Some(stream) = sub_split.stream.as_mut() else {
            // A new IPC stream must open with its schema.
            let schema = (!is_eos)
                .then(|| stream_schema(&bytes))
                .flatten()
                .ok_or_else(|| Error::Malformed {
                    what: "query reply",
                    reason: format!(
                        "sub-split {stream_id}: an IPC stream that does not start with a schema"
                    ),
                })?;
            let mut decoder = StreamDecoder::new();
            feed(&mut decoder, bytes).map_err(ipc)?;
            sub_split.stream = Some(OpenStream {
                schema: schema.clone(),
                decoder,
                // The stream's columns are leaves of the response schema.
                pieces: vec![Vec::new(); schema.fields().len()],
                rows: 0,
            });
            return Ok(());
        };
        if !is_eos {
            check_batch_columns(&stream.schema, &bytes).map_err(|e| Error::Malformed {
                what: "IPC message in a query reply",
                reason: format!("sub-split {stream_id}: {e}"),
            })?;
        }
        // A message whose body is empty is only decoded when the next bytes arrive, so the
        // end-of-stream marker goes to the decoder too.
        for batch in feed(&mut stream.decoder, bytes).map_err(ipc)? {
            stream.rows += batch.num_rows();
            for (pieces, column) in stream.pieces.iter_mut().zip(batch.columns()) {
                pieces.push(column.clone());
            }
        }
        if !is_eos {
            return Ok(());
        }
        // End of this IPC stream: each of its columns is the round's next leaf.
        let stream = sub_split.stream.take().expect("checked above");
        sub_split.leaves.extend(stream.pieces);
        sub_split.count_rows += stream.rows;
        let leaves_needed = self.schema.fields().len();
        if sub_split.leaves.len() < leaves_needed {
            return Ok(());
        }
        let round = std::mem::take(sub_split);
        for batch in assemble(&self.schema, stream_id, round)? {
            if batch.num_rows() > 0 {
                events.push(Event::Batch {
                    sub_split: stream_id,
                    batch,
                });
            }
        }
        events.push(Event::RoundDone {
            sub_split: stream_id,
            next_row_id,
        });
        Ok(())
    }
}

/// Feeds whole messages to a stream decoder and returns the batches it completes.
fn feed(
    decoder: &mut StreamDecoder,
    mut buffer: Buffer,
) -> std::result::Result<Vec<RecordBatch>, arrow_schema::ArrowError> {
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        match decoder.decode(&mut buffer)? {
            Some(batch) => batches.push(batch),
            None => break,
        }
    }
    Ok(batches)
}

/// The schema of an IPC schema message (continuation, length, flatbuffer).
fn stream_schema(message: &[u8]) -> Option<SchemaRef> {
    let at = if read_u32(message, 0)? == CONTINUATION {
        8
    } else {
        4
    };
    let message = arrow_ipc::root_as_message(message.get(at..)?).ok()?;
    let schema = message.header_as_schema()?;
    pocaduck_edge_ipc_check::schema(schema).ok().map(Arc::new)
}

/// Checks a batch message's columns against the stream's schema
/// ([`pocaduck_edge_ipc_check::check_columns`]); other messages pass.
fn check_batch_columns(
    schema: &SchemaRef,
    message: &[u8],
) -> std::result::Result<(), pocaduck_edge_ipc_check::Malformed> {
    let at = if read_u32(message, 0) == Some(CONTINUATION) {
        8
    } else {
        4
    };
    let Some(batch) = message
        .get(at..)
        .and_then(|m| arrow_ipc::root_as_message(m).ok())
        .and_then(|m| m.header_as_record_batch())
    else {
        return Ok(());
    };
    pocaduck_edge_ipc_check::check_columns(schema, &batch)
}

struct Extent {
    len: usize,
    is_eos: bool,
}

/// Builds the round's record batches, giving each leaf the table's type (the server's IPC
/// types are used only for their buffer layout, as the SDK does): one batch per piece when
/// every leaf was cut at the same rows, else one with each leaf's pieces joined.
fn assemble(schema: &SchemaRef, sub_split: u32, round: SubSplit) -> Result<Vec<RecordBatch>> {
    let malformed = |reason: String| Error::Malformed {
        what: "query reply",
        reason: format!("sub-split {sub_split}: {reason}"),
    };
    if round.leaves.len() != schema.fields().len() {
        return Err(malformed(format!(
            "{} leaf columns for {} projected columns",
            round.leaves.len(),
            schema.fields().len()
        )));
    }
    let Some(first) = round.leaves.first() else {
        let options = RecordBatchOptions::new().with_row_count(Some(round.count_rows));
        let batch = RecordBatch::try_new_with_options(Arc::clone(schema), vec![], &options)
            .map_err(|e| malformed(e.to_string()))?;
        return Ok(vec![batch]);
    };
    let cuts = |pieces: &[ArrayRef]| pieces.iter().map(|a| a.len()).collect::<Vec<_>>();
    let aligned = round.leaves.iter().all(|l| cuts(l) == cuts(first)) && !first.is_empty();
    let rows: Vec<Vec<ArrayRef>> = if aligned {
        (0..first.len())
            .map(|i| round.leaves.iter().map(|l| Arc::clone(&l[i])).collect())
            .collect()
    } else {
        let joined = round
            .leaves
            .iter()
            .zip(schema.fields())
            .map(|(pieces, field)| join(pieces, field.data_type()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|source| Error::Ipc { sub_split, source })?;
        vec![joined]
    };
    rows.into_iter()
        .map(|leaves| {
            let columns = leaves
                .into_iter()
                .zip(schema.fields())
                .map(|(leaf, field)| typed(leaf, field).map_err(&malformed))
                .collect::<Result<Vec<_>>>()?;
            RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| malformed(e.to_string()))
        })
        .collect()
}

/// One array of a leaf's pieces.
fn join(
    pieces: &[ArrayRef],
    data_type: &arrow_schema::DataType,
) -> std::result::Result<ArrayRef, arrow_schema::ArrowError> {
    match pieces {
        [] => Ok(new_empty_array(data_type)),
        [one] => Ok(Arc::clone(one)),
        _ => {
            let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
            arrow_select::concat::concat(&refs)
        }
    }
}

/// `leaf` with the type of `field`, its buffers as they are.
fn typed(leaf: ArrayRef, field: &arrow_schema::Field) -> std::result::Result<ArrayRef, String> {
    if leaf.data_type() == field.data_type() {
        return Ok(leaf);
    }
    let data = leaf
        .to_data()
        .into_builder()
        .data_type(field.data_type().clone())
        .build()
        .map_err(|e| {
            format!(
                "column {:?} arrived as {}, not {}: {e}",
                field.name(),
                leaf.data_type(),
                field.data_type()
            )
        })?;
    Ok(make_array(data))
}

fn leaf_count(data_type: &arrow_schema::DataType) -> usize {
    let children = children(data_type);
    if children.is_empty() {
        1
    } else {
        children.iter().map(|c| leaf_count(c.data_type())).sum()
    }
}

fn read_u32(buffer: &[u8], at: usize) -> Option<u32> {
    let bytes = buffer.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
}

fn read_u64(buffer: &[u8], at: usize) -> Option<u64> {
    let bytes = buffer.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
}
