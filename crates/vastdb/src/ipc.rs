//! Arrow IPC bodies of the protocol: the framed schema message of create-table and the
//! one-batch stream of insert, written with arrow-rs.

use arrow_array::RecordBatch;
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

fn ipc_error(source: arrow_schema::ArrowError) -> Error {
    Error::Malformed {
        what: "Arrow IPC body",
        reason: source.to_string(),
    }
}
