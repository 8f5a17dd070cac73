//! The server side of [`crate::deframe`]: a query reply written as VastDB writes it, one IPC
//! stream per leaf column and per round, chunk headers carrying the sub-split and the resume
//! point, then the completed marker. The emulator and the tests use it.

use arrow_array::RecordBatch;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_schema::{Schema, SchemaRef};
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// One round of `sub_split`, as the pieces of bytes to send in order: for each column of
/// `schema`, a chunk with its schema, one per batch with its rows, and one with the end of
/// stream; `next_row_id` goes on each. Each column's rows are sent as the IPC encoder wrote
/// them, without another copy. Without columns (a count-only query) the round is one stream
/// with an empty schema and batches that carry row counts.
pub fn round_pieces(
    sub_split: u32,
    next_row_id: u64,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<Bytes>> {
    let options = IpcWriteOptions::default();
    let generator = IpcDataGenerator::default();
    let columns: Vec<Vec<RecordBatch>> = if schema.fields().is_empty() {
        vec![batches.to_vec()]
    } else {
        (0..schema.fields().len())
            .map(|i| batches.iter().map(|b| b.project(&[i])).collect())
            .collect::<std::result::Result<_, _>>()
            .map_err(encode_error)?
    };
    let mut pieces = Vec::new();
    let mut head = BytesMut::new();
    for (i, column) in columns.iter().enumerate() {
        let mut tracker = DictionaryTracker::new(false);
        let column_schema = if schema.fields().is_empty() {
            Schema::empty()
        } else {
            schema.project(&[i]).map_err(encode_error)?
        };
        let encoded = generator.schema_to_bytes_with_dictionary_tracker(
            &column_schema,
            &mut tracker,
            &options,
        );
        chunk(&mut head, sub_split, next_row_id, |w| {
            arrow_ipc::writer::write_message(w, encoded, &options).map(|_| ())
        })?;
        for batch in column {
            let (_, mut encoded) = generator
                .encode(batch, &mut tracker, &options, &mut Default::default())
                .map_err(encode_error)?;
            // The message's prefix and metadata, then its body (already padded) as it is.
            let body = std::mem::take(&mut encoded.arrow_data);
            chunk(&mut head, sub_split, next_row_id, |w| {
                arrow_ipc::writer::write_message(w, encoded, &options).map(|_| ())
            })?;
            if !body.is_empty() {
                pieces.push(head.split().freeze());
                pieces.push(Bytes::from(body));
            }
        }
        chunk(&mut head, sub_split, next_row_id, |w| {
            std::io::Write::write_all(w, &EOS).map_err(Into::into)
        })?;
    }
    pieces.push(head.freeze());
    Ok(pieces)
}

fn chunk(
    out: &mut BytesMut,
    sub_split: u32,
    next_row_id: u64,
    message: impl FnOnce(
        &mut bytes::buf::Writer<&mut BytesMut>,
    ) -> std::result::Result<(), arrow_schema::ArrowError>,
) -> Result<()> {
    out.put_u32_le(sub_split);
    out.put_u64_le(next_row_id);
    let mut writer = out.writer();
    message(&mut writer).map_err(encode_error)
}

/// A keep-alive marker.
pub fn keep_alive() -> Bytes {
    Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])
}

/// The completed marker that ends a reply.
pub fn completed() -> Bytes {
    Bytes::from_static(&[0xfe, 0xff, 0xff, 0xff])
}

/// The failed marker with the server's error code.
pub fn failed(code: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(16);
    out.put_u32_le(0xFFFF_FFFD);
    out.put_u64_le(code);
    out.put_u32_le(0);
    out.freeze()
}

fn encode_error(source: arrow_schema::ArrowError) -> Error {
    Error::Malformed {
        what: "reply batch",
        reason: source.to_string(),
    }
}
