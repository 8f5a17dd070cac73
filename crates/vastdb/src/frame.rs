//! The server side of [`crate::deframe`]: a query reply written as VastDB writes it, one IPC
//! stream per leaf column and per round, chunk headers carrying the sub-split and the resume
//! point, then the completed marker. The emulator and the tests use it.

use arrow_array::{Array, RecordBatch};
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_schema::{Schema, SchemaRef};
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::ipc;

const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// One round of `sub_split`, as the pieces of bytes to send in order: for each column of
/// `schema`, a chunk with its schema, one per batch with its rows, and one with the end of
/// stream; `next_row_id` goes on each. A fixed-width column without nulls is sent from its
/// own buffer (no copy), any other column as the IPC encoder wrote it. Without columns (a
/// count-only query) the round is one stream with an empty schema and batches that carry
/// row counts.
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
            if let Some((header, body)) = borrowed_message(batch) {
                chunk(&mut head, sub_split, next_row_id, |w| {
                    std::io::Write::write_all(w, &header).map_err(Into::into)
                })?;
                pieces.push(head.split().freeze());
                pieces.extend(body);
                continue;
            }
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

/// The record-batch message of a one-column batch whose column is fixed-width without
/// nulls: its header and its body, the column's values where they lie, then padding to 8
/// bytes. `None` for any other batch.
fn borrowed_message(batch: &RecordBatch) -> Option<(Vec<u8>, Vec<Bytes>)> {
    let [column] = batch.columns() else {
        return None;
    };
    let width = column.data_type().primitive_width()?;
    if column.null_count() > 0 || column.is_empty() {
        return None;
    }
    let data = column.to_data();
    let [buffer] = data.buffers() else {
        return None;
    };
    let values = buffer.slice_with_length(data.offset() * width, data.len() * width);
    let (len, padded) = (values.len(), values.len().next_multiple_of(8));
    // Validity (none: no nulls), then the values.
    let header = ipc::batch_header(
        data.len() as i64,
        &[arrow_ipc::FieldNode::new(data.len() as i64, 0)],
        &[
            arrow_ipc::Buffer::new(0, 0),
            arrow_ipc::Buffer::new(0, len as i64),
        ],
        padded as i64,
    );
    let mut body = vec![ipc::buffer_bytes(values)];
    if padded > len {
        body.push(Bytes::from(vec![0u8; padded - len]));
    }
    Some((header, body))
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_array::{Int16Array, Int32Array, StringArray};
    use arrow_schema::{DataType, Field};
    use std::sync::Arc;

    /// The IPC stream of each leaf column in a round's pieces (chunk headers taken out).
    fn leaf_streams(pieces: &[Bytes]) -> Vec<Vec<u8>> {
        let bytes: Vec<u8> = pieces.concat();
        let (mut streams, mut current, mut at) = (Vec::new(), Vec::new(), 0);
        while at < bytes.len() {
            at += 12; // stream id, next row id
            let meta = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let message = if meta == 0 {
                8
            } else {
                let fb = arrow_ipc::root_as_message(&bytes[at + 8..at + 8 + meta]).unwrap();
                8 + meta + fb.bodyLength() as usize
            };
            current.extend_from_slice(&bytes[at..at + message]);
            at += message;
            if meta == 0 {
                streams.push(std::mem::take(&mut current));
            }
        }
        streams
    }

    #[test]
    fn fixed_width_columns_go_out_from_their_own_buffers_and_read_back_equal() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int16, false),
            Field::new("b", DataType::Int32, true),
            Field::new("c", DataType::Utf8, false),
        ]));
        let a = Int16Array::from_iter_values(0..1001);
        let b = Int32Array::from_iter_values(-500..501);
        let c = StringArray::from_iter_values((0..1001).map(|i| i.to_string()));
        let whole =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(a), Arc::new(b), Arc::new(c)])
                .unwrap();
        // Odd lengths at odd offsets: the bodies need padding, and the values lie mid-buffer.
        let batches = [whole.slice(3, 5), whole.slice(100, 333)];
        let pieces = round_pieces(0, 7, &schema, &batches).unwrap();
        let b_values = batches[1]
            .column(1)
            .as_primitive::<Int32Type>()
            .values()
            .as_ptr() as usize;
        assert!(
            pieces.iter().any(|p| p.as_ptr() as usize == b_values),
            "int32 values sent where they lie"
        );
        let streams = leaf_streams(&pieces);
        assert_eq!(streams.len(), 3);
        for (i, stream) in streams.iter().enumerate() {
            let reader =
                arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None)
                    .unwrap();
            let read: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
            assert_eq!(read.len(), 2);
            for (got, sent) in read.iter().zip(&batches) {
                assert_eq!(got.column(0).as_ref(), sent.column(i).as_ref());
            }
        }
        // A column with nulls goes through the encoder, and its nulls survive.
        let with_null = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("b", DataType::Int32, true)])),
            vec![Arc::new(Int32Array::from(vec![Some(1), None, Some(3)]))],
        )
        .unwrap();
        let pieces =
            round_pieces(0, 7, &with_null.schema(), std::slice::from_ref(&with_null)).unwrap();
        let stream = &leaf_streams(&pieces)[0];
        let mut reader =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None).unwrap();
        assert_eq!(reader.next().unwrap().unwrap(), with_null);
    }
}
