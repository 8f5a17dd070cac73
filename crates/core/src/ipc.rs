//! The framing of an Arrow IPC stream, read from its message headers alone, wherever its
//! bytes are held; and, from the headers, where the columns of a one-label `shape=columns`
//! answer lie, so that a decoder can read them a chunk at a time without a copy of the
//! whole answer (the wasm client reads them straight out of the caller's JS bytes).

use std::borrow::Cow;
use std::ops::Range;

use arrow_ipc::{Message, MessageHeader};
use arrow_schema::{DataType, Schema};

use crate::cloud::BBox;
use crate::error::{Error, Result};
use crate::metadata::{self, parse_bbox, BBOX_KEY};

/// The end-of-stream marker of the Arrow IPC stream format.
pub const END_OF_STREAM: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

fn cut() -> Error {
    Error::Points("the Arrow stream is cut short".into())
}

/// Walks the messages of a whole Arrow IPC stream of `len` bytes, which `read` gives by
/// range, handing each message with the byte range of its body to `message`; only the
/// framing and the headers are read. A stream without its end marker, or with bytes after
/// it, is refused, so a cut answer is never taken for a whole one.
pub fn walk_stream<'a>(
    len: usize,
    mut read: impl FnMut(Range<usize>) -> Cow<'a, [u8]>,
    mut message: impl FnMut(Message<'_>, Range<usize>) -> Result<()>,
) -> Result<()> {
    if len < END_OF_STREAM.len() || *read(len - END_OF_STREAM.len()..len) != END_OF_STREAM {
        return Err(Error::Points(
            "the Arrow stream does not end with its end-of-stream marker: it was cut short".into(),
        ));
    }
    let mut at = 0usize;
    loop {
        // A message: the continuation marker (absent in old streams), the length of its
        // flatbuffer header, the header, then its body.
        let mut length = word(&mut read, at, len)?;
        at += 4;
        if length == u32::MAX {
            length = word(&mut read, at, len)?;
            at += 4;
        }
        if length == 0 {
            break;
        }
        let header_end = at
            .checked_add(length as usize)
            .filter(|end| *end <= len)
            .ok_or_else(cut)?;
        let header = read(at..header_end);
        let parsed = arrow_ipc::root_as_message(&header)
            .map_err(|e| Error::Points(format!("a bad Arrow message header: {e}")))?;
        let body_length = usize::try_from(parsed.bodyLength()).map_err(|_| cut())?;
        let body_end = header_end
            .checked_add(body_length)
            .filter(|end| *end <= len)
            .ok_or_else(cut)?;
        pocaduck_edge_ipc_check::check_message(&parsed, body_length)?;
        message(parsed, header_end..body_end)?;
        at = body_end;
    }
    if at != len {
        return Err(Error::Points(
            "the Arrow stream has bytes after its end-of-stream marker".into(),
        ));
    }
    Ok(())
}

/// The little-endian `u32` at `at`.
fn word<'a>(
    read: &mut impl FnMut(Range<usize>) -> Cow<'a, [u8]>,
    at: usize,
    len: usize,
) -> Result<u32> {
    let end = at
        .checked_add(4)
        .filter(|end| *end <= len)
        .ok_or_else(cut)?;
    Ok(u32::from_le_bytes(
        (*read(at..end)).try_into().expect("4 bytes"),
    ))
}

/// One record batch of a [`ColumnsLayout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnsBatch {
    /// Its rows.
    pub rows: usize,
    /// Where each dim's int32 values start in the stream's bytes (4-byte aligned).
    pub columns: [usize; 3],
}

/// Where the points of a one-label `shape=columns` answer of three int32 dims lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnsLayout {
    /// The answer's label.
    pub label: u64,
    /// The bounds its metadata gives ([`BBOX_KEY`]): a hint, to be checked against the
    /// values.
    pub bbox_hint: Option<BBox>,
    /// Its record batches, in order.
    pub batches: Vec<ColumnsBatch>,
}

impl ColumnsLayout {
    /// Every row of the answer.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.rows).sum()
    }
}

/// The [`ColumnsLayout`] of a whole Arrow IPC stream of `len` bytes that `read` gives by
/// range, from its headers alone: `Ok(None)` when it is not a one-label answer of three
/// non-null int32 columns with at least one point, stored plainly (another shape, nulls,
/// compression, dictionaries, big-endian), which the general decoder then reads or
/// refuses; an error when its framing is broken.
pub fn columns_layout<'a>(
    len: usize,
    read: impl FnMut(Range<usize>) -> Cow<'a, [u8]>,
) -> Result<Option<ColumnsLayout>> {
    let mut layout: Option<ColumnsLayout> = None;
    let mut plain = true;
    walk_stream(len, read, |message, body| {
        if !plain {
            return Ok(());
        }
        match message.header_type() {
            MessageHeader::Schema => match message.header_as_schema() {
                Some(fb) => {
                    plain = fb.endianness() == arrow_ipc::Endianness::Little;
                    layout = one_label_layout(&pocaduck_edge_ipc_check::schema(fb)?);
                    plain &= layout.is_some();
                }
                None => plain = false,
            },
            MessageHeader::RecordBatch => match (
                layout.as_mut(),
                message
                    .header_as_record_batch()
                    .and_then(|fb| plain_batch(&fb, &body)),
            ) {
                (Some(layout), Some(batch)) => layout.batches.push(batch),
                _ => plain = false,
            },
            _ => plain = false,
        }
        Ok(())
    })?;
    Ok(layout.filter(|l| plain && l.rows() > 0))
}

/// A layout without batches yet when `schema` is a one-label answer's of three non-null
/// int32 dims.
fn one_label_layout(schema: &Schema) -> Option<ColumnsLayout> {
    let fields = schema.fields();
    if fields.len() != 3
        || fields
            .iter()
            .any(|f| f.name() == "label" || f.is_nullable() || *f.data_type() != DataType::Int32)
    {
        return None;
    }
    let label = metadata::label(schema.metadata())?.ok()?;
    Some(ColumnsLayout {
        label,
        bbox_hint: schema
            .metadata()
            .get(BBOX_KEY)
            .and_then(|t| parse_bbox(t, 3)),
        batches: Vec::new(),
    })
}

/// Where a batch's three int32 columns lie when it has no nulls, no compression and its
/// values buffers hold every row within `body`, 4-byte aligned.
fn plain_batch(fb: &arrow_ipc::RecordBatch<'_>, body: &Range<usize>) -> Option<ColumnsBatch> {
    if fb.compression().is_some() {
        return None;
    }
    let rows = usize::try_from(fb.length()).ok()?;
    let nodes = fb.nodes()?;
    let buffers = fb.buffers()?;
    if nodes.len() != 3
        || buffers.len() != 6
        || nodes
            .iter()
            .any(|n| n.null_count() != 0 || usize::try_from(n.length()).ok() != Some(rows))
    {
        return None;
    }
    let mut columns = [0usize; 3];
    for (slot, values) in columns.iter_mut().zip(buffers.iter().skip(1).step_by(2)) {
        let offset = usize::try_from(values.offset()).ok()?;
        let length = usize::try_from(values.length()).ok()?;
        let start = body.start.checked_add(offset)?;
        if length < rows.checked_mul(4)? || start.checked_add(length)? > body.end || start % 4 != 0
        {
            return None;
        }
        *slot = start;
    }
    Some(ColumnsBatch { rows, columns })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, UInt64Array};
    use arrow_schema::Field;

    use super::*;
    use crate::metadata::LABEL_KEY;

    /// An IPC stream of `batches` of columns named x, y, z (and `label` when `labelled`),
    /// with `metadata` on the schema; each batch a column per dim.
    fn stream(batches: &[Vec<ArrayRef>], metadata: &[(&str, &str)], nullable: bool) -> Vec<u8> {
        let names = ["x", "y", "z"];
        let first = &batches[0];
        let offset = first.len() - 3;
        let mut fields: Vec<Field> = Vec::new();
        if offset == 1 {
            fields.push(Field::new("label", DataType::UInt64, false));
        }
        fields.extend(
            first[offset..]
                .iter()
                .zip(names)
                .map(|(c, n)| Field::new(n, c.data_type().clone(), nullable)),
        );
        let metadata: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        let mut out = Vec::new();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).unwrap();
        for columns in batches {
            let batch = RecordBatch::try_new(schema.clone(), columns.clone()).unwrap();
            writer.write(&batch).unwrap();
        }
        writer.finish().unwrap();
        drop(writer);
        out
    }

    fn int32(values: &[i32]) -> ArrayRef {
        Arc::new(Int32Array::from(values.to_vec()))
    }

    fn layout_of(bytes: &[u8]) -> Result<Option<ColumnsLayout>> {
        columns_layout(bytes.len(), |r| Cow::Borrowed(&bytes[r]))
    }

    /// The int32 values of `rows` rows at byte `at`.
    fn values_at(bytes: &[u8], at: usize, rows: usize) -> Vec<i32> {
        bytes[at..at + rows * 4]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    const ONE: (&str, &str) = (LABEL_KEY, "18446744073709551615");

    #[test]
    fn a_one_label_columns_answer_is_located_from_its_headers() {
        let a = [vec![1, -2, 3], vec![i32::MIN, 5, 6], vec![7, 8, i32::MAX]];
        let b = [vec![10], vec![11], vec![-12]];
        let batches = [
            a.iter().map(|c| int32(c)).collect::<Vec<_>>(),
            b.iter().map(|c| int32(c)).collect(),
        ];
        let hint = (BBOX_KEY, "-2,-2147483648,-12,10,11,2147483647");
        let bytes = stream(&batches, &[ONE, hint], false);
        let layout = layout_of(&bytes).unwrap().expect("a plain columns answer");
        assert_eq!(layout.label, u64::MAX);
        assert_eq!(
            layout.bbox_hint,
            Some(BBox {
                min: vec![-2, i32::MIN as i64, -12],
                max: vec![10, 11, i32::MAX as i64],
            })
        );
        assert_eq!(layout.rows(), 4);
        let rows: Vec<usize> = layout.batches.iter().map(|b| b.rows).collect();
        assert_eq!(rows, [3, 1]);
        for (batch, expected) in layout.batches.iter().zip([&a, &b]) {
            for (at, column) in batch.columns.iter().zip(expected.iter()) {
                assert_eq!(&values_at(&bytes, *at, batch.rows), column);
            }
        }
        // No hint, or one that does not parse: located all the same, without a hint.
        for metadata in [
            &[ONE][..],
            &[ONE, (BBOX_KEY, "1,2,3")],
            &[ONE, (BBOX_KEY, "9,0,0,1,1,1")],
        ] {
            let layout = layout_of(&stream(&batches, metadata, false))
                .unwrap()
                .unwrap();
            assert_eq!((layout.rows(), layout.bbox_hint), (4, None));
        }
    }

    #[test]
    fn other_answers_are_left_to_the_general_decoder() {
        let xyz = || vec![int32(&[1, 2]), int32(&[3, 4]), int32(&[5, 6])];
        let wide: ArrayRef = Arc::new(Int64Array::from(vec![3i64, 4]));
        let labels: ArrayRef = Arc::new(UInt64Array::from(vec![1u64, 1]));
        let with_nulls = int32(&[1, 2]).slice(0, 2);
        let nullable = Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "an int64 dim",
                stream(&[vec![int32(&[1, 2]), wide, int32(&[5, 6])]], &[ONE], false),
            ),
            (
                "a label column",
                stream(&[[vec![labels], xyz()].concat()], &[], false),
            ),
            ("no label in the metadata", stream(&[xyz()], &[], false)),
            ("a bad label", stream(&[xyz()], &[(LABEL_KEY, "-1")], false)),
            (
                "nullable dims",
                stream(
                    &[vec![with_nulls, int32(&[3, 4]), int32(&[5, 6])]],
                    &[ONE],
                    true,
                ),
            ),
            (
                "a null",
                stream(
                    &[vec![nullable, int32(&[3, 4]), int32(&[5, 6])]],
                    &[ONE],
                    true,
                ),
            ),
            (
                "no points",
                stream(&[vec![int32(&[]), int32(&[]), int32(&[])]], &[ONE], false),
            ),
        ];
        for (what, bytes) in cases {
            assert_eq!(layout_of(&bytes).unwrap(), None, "{what}");
        }
    }

    #[test]
    fn a_broken_stream_is_an_error() {
        let bytes = stream(
            &[vec![int32(&[1]), int32(&[2]), int32(&[3])]],
            &[ONE],
            false,
        );
        let cut = &bytes[..bytes.len() - 1];
        assert!(layout_of(cut)
            .unwrap_err()
            .to_string()
            .contains("end-of-stream"));
        let mut after = bytes.clone();
        after.extend_from_slice(&END_OF_STREAM);
        assert!(layout_of(&after).unwrap_err().to_string().contains("after"));
        // The end marker after a message cut short: the body runs past the end.
        let mut short = bytes[..bytes.len() - 8 - 16].to_vec();
        short.extend_from_slice(&END_OF_STREAM);
        assert!(layout_of(&short).is_err());
    }
}
