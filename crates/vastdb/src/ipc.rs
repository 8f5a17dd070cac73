//! Arrow IPC bodies of the protocol: the framed schema message of create-table and the
//! one-batch stream of insert, written with arrow-rs; and the pieces of a record-batch
//! message whose body is sent from buffers where they lie (query replies, and the proxy's
//! Arrow answers, which are framed the same way).

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamWriter};
use arrow_schema::Schema;
use bytes::Bytes;

use crate::error::{Error, Result};

/// One IPC-framed schema message (continuation, length, flatbuffer, padding) and no EOS,
/// as `pyarrow.Schema.serialize()` writes it.
pub fn schema_message(schema: &Schema) -> Bytes {
    let options = IpcWriteOptions::default();
    let generator = IpcDataGenerator::default();
    let mut tracker = DictionaryTracker::new(false);
    let encoded = generator.schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &options);
    let mut out = Vec::with_capacity(encoded.ipc_message.len() + 8);
    arrow_ipc::writer::write_message(&mut out, encoded, &options)
        .expect("writing to a Vec cannot fail");
    Bytes::from(out)
}

/// An IPC stream: the schema, `batch` and the end-of-stream marker.
pub fn stream(batch: &RecordBatch) -> Result<Bytes> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(ipc_error)?;
    writer.write(batch).map_err(ipc_error)?;
    Ok(Bytes::from(writer.into_inner().map_err(ipc_error)?))
}

/// The IPC message of a record batch of `rows` rows up to its body: continuation marker,
/// length, and the flatbuffer with `nodes` and `buffers` (offsets in a body of `body_len`
/// bytes), padded so that the body that follows starts on an 8-byte boundary.
pub fn batch_header(
    rows: i64,
    nodes: &[arrow_ipc::FieldNode],
    buffers: &[arrow_ipc::Buffer],
    body_len: i64,
) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let nodes = fbb.create_vector(nodes);
    let buffers = fbb.create_vector(buffers);
    let mut batch = arrow_ipc::RecordBatchBuilder::new(&mut fbb);
    batch.add_length(rows);
    batch.add_nodes(nodes);
    batch.add_buffers(buffers);
    let batch = batch.finish();
    let mut message = arrow_ipc::MessageBuilder::new(&mut fbb);
    message.add_version(arrow_ipc::MetadataVersion::V5);
    message.add_header_type(arrow_ipc::MessageHeader::RecordBatch);
    message.add_header(batch.as_union_value());
    message.add_bodyLength(body_len);
    let message = message.finish();
    fbb.finish(message, None);
    let meta = fbb.finished_data();
    // The 8-byte prefix keeps the body aligned when the metadata is a multiple of 8.
    let padded = meta.len().next_multiple_of(8);
    let mut out = Vec::with_capacity(8 + padded);
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&(padded as u32).to_le_bytes());
    out.extend_from_slice(meta);
    out.resize(8 + padded, 0);
    out
}

/// The bytes of an Arrow buffer, shared with it (no copy).
pub fn buffer_bytes(buffer: Buffer) -> Bytes {
    struct Shared(Buffer);
    impl AsRef<[u8]> for Shared {
        fn as_ref(&self) -> &[u8] {
            self.0.as_slice()
        }
    }
    Bytes::from_owner(Shared(buffer))
}

fn ipc_error(source: arrow_schema::ArrowError) -> Error {
    Error::Malformed {
        what: "Arrow IPC body",
        reason: source.to_string(),
    }
}
