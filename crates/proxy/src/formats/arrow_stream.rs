//! Arrow IPC answers: rows ([`ArrowEncoder`]) and columns ([`ColumnsEncoder`]), each
//! record batch written from the points' own buffers.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array};
use arrow_buffer::{ArrowNativeType, Buffer};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use pocaduck_edge_core::cloud::BBox;
use pocaduck_edge_core::metadata::{format_bbox, BBOX_KEY, LABEL_KEY};
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_vastdb::ipc;

use super::{arrow_schema, internal, FormatError};

/// The end-of-stream marker of an Arrow IPC stream.
const END_OF_STREAM: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Encodes an Arrow IPC stream piece by piece, without copying the points: each record
/// batch goes out as its message header, the label column and the cloud's own values.
/// When the answer holds every point of one label, its schema metadata names their bounds
/// (`pocaduck_edge:bbox`), which lets a decoder re-centre the rows in one pass.
pub struct ArrowEncoder {
    dims: usize,
    /// Encoded bytes not yet taken, in order.
    out: Vec<Bytes>,
    labels: LabelColumns,
}

impl ArrowEncoder {
    /// Starts a stream; the schema message is in the first [`ArrowEncoder::take`]. `bbox`
    /// gives the bounds of the points when the answer holds every point of one label.
    pub fn new(dims: &[String], bbox: Option<&BBox>) -> Self {
        let mut schema = arrow_schema(dims);
        if let Some(bbox) = bbox {
            let mut metadata = schema.metadata().clone();
            metadata.insert(BBOX_KEY.to_string(), format_bbox(bbox));
            schema = Arc::new(schema.as_ref().clone().with_metadata(metadata));
        }
        Self {
            dims: dims.len(),
            out: vec![ipc::schema_message(&schema)],
            labels: LabelColumns::default(),
        }
    }

    /// Appends a record batch of `label`'s points.
    pub fn push(&mut self, label: u64, cloud: PointCloud) -> Result<(), FormatError> {
        if cloud.dims() != self.dims {
            return Err(internal(format!(
                "{}-dim points in a {}-dim answer",
                cloud.dims(),
                self.dims
            )));
        }
        let n = cloud.len();
        self.out.push(batch_header(n, self.dims));
        if n > 0 {
            let labels = self.labels.get(label, n);
            self.out.push(labels);
            self.out.push(owned_bytes(cloud.into_values()));
        }
        Ok(())
    }

    /// The bytes encoded since the last call, in order.
    pub fn take(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.out)
    }

    /// Ends the stream and returns the remaining bytes.
    pub fn finish(mut self) -> Vec<Bytes> {
        self.out.push(Bytes::from_static(&END_OF_STREAM));
        self.take()
    }
}

/// Encodes an Arrow IPC stream of `shape=columns`: one column per dim, named after it, of
/// the type given at the start (int32 or int64), after a `label: uint64` column unless the
/// answer is one label's, which the schema metadata `pocaduck_edge:label` then names (with,
/// when the answer holds every point of the label, their bounds as `pocaduck_edge:bbox`,
/// which lets a decoder re-centre them in one pass). Each column goes out from its own
/// buffer, without a copy.
pub struct ColumnsEncoder {
    types: Vec<DataType>,
    /// The one label of the answer, or `None` when each batch carries a label column.
    single: Option<u64>,
    out: Vec<Bytes>,
    labels: LabelColumns,
}

/// Eight zero bytes, to pad a body buffer to an 8-byte boundary.
const PADDING: [u8; 8] = [0; 8];

/// Rows of a record batch cut from rows by [`ColumnsEncoder::push_cloud`]: each batch's
/// columns are built while its rows are in cache, and a big label goes out batch by batch.
pub const CLOUD_BATCH_ROWS: usize = 1 << 16;

impl ColumnsEncoder {
    /// Starts a stream of `dims` columns of `types` (each int32 or int64); `single` names the
    /// answer's one label, so no label column is sent, and `bbox` gives the bounds of its
    /// points when the answer holds every one of them.
    pub fn new(
        dims: &[String],
        types: Vec<DataType>,
        single: Option<u64>,
        bbox: Option<&BBox>,
    ) -> Result<Self, FormatError> {
        if types.len() != dims.len()
            || types
                .iter()
                .any(|t| !matches!(t, DataType::Int32 | DataType::Int64))
        {
            return Err(internal(format!(
                "column types {types:?} for dims {dims:?}"
            )));
        }
        let mut metadata = HashMap::from([("pocaduck_edge:dims".to_string(), dims.join(","))]);
        let mut fields = Vec::new();
        match single {
            Some(label) => {
                metadata.insert(LABEL_KEY.to_string(), label.to_string());
                if let Some(bbox) = bbox {
                    metadata.insert(BBOX_KEY.to_string(), format_bbox(bbox));
                }
            }
            None => fields.push(Field::new("label", DataType::UInt64, false)),
        }
        fields.extend(
            dims.iter()
                .zip(&types)
                .map(|(d, t)| Field::new(d, t.clone(), false)),
        );
        let schema = Schema::new_with_metadata(fields, metadata);
        Ok(Self {
            types,
            single,
            out: vec![ipc::schema_message(&schema)],
            labels: LabelColumns::default(),
        })
    }

    /// The column type of each dim.
    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Appends a record batch of `label`'s points, one array per dim; an integer array of
    /// another type is widened where the answer's column is int64.
    pub fn push_columns(&mut self, label: u64, columns: Vec<ArrayRef>) -> Result<(), FormatError> {
        if columns.len() != self.types.len() {
            return Err(internal(format!(
                "{} columns in a {}-dim answer",
                columns.len(),
                self.types.len()
            )));
        }
        if self.single.is_some_and(|l| l != label) {
            return Err(internal(format!("label {label} in another label's answer")));
        }
        let n = columns.first().map_or(0, |c| c.len());
        let mut values = Vec::with_capacity(columns.len());
        for (column, wanted) in columns.into_iter().zip(&self.types) {
            if column.len() != n || column.null_count() > 0 {
                return Err(internal("dim columns of unequal lengths or with nulls"));
            }
            let column = match (column.data_type(), wanted) {
                (have, wanted) if have == wanted => column,
                (have, DataType::Int64) if have.is_integer() => {
                    pocaduck_edge_core::columns::int64_column(&column).map_err(internal)?
                }
                (have, wanted) => {
                    return Err(internal(format!("a {have} column where {wanted} is sent")))
                }
            };
            let data = column.to_data();
            let width = column
                .data_type()
                .primitive_width()
                .expect("int32 or int64");
            values.push(data.buffers()[0].slice_with_length(data.offset() * width, n * width));
        }
        let mut bodies = Vec::new();
        if self.single.is_none() {
            bodies.push(self.labels.get(label, n));
        }
        bodies.extend(values.into_iter().map(ipc::buffer_bytes));
        let mut nodes = Vec::new();
        let mut buffers = Vec::new();
        let mut offset = 0usize;
        let mut body = Vec::with_capacity(bodies.len() * 2);
        for bytes in bodies {
            let len = bytes.len();
            nodes.push(arrow_ipc::FieldNode::new(n as i64, 0));
            // No validity buffer, then the values.
            buffers.push(arrow_ipc::Buffer::new(offset as i64, 0));
            buffers.push(arrow_ipc::Buffer::new(offset as i64, len as i64));
            let padded = len.next_multiple_of(8);
            body.push(bytes);
            if padded > len {
                body.push(Bytes::from_static(&PADDING[..padded - len]));
            }
            offset += padded;
        }
        let header = ipc::batch_header(n as i64, &nodes, &buffers, offset as i64);
        self.out.push(Bytes::from(header));
        self.out.extend(body.into_iter().filter(|b| !b.is_empty()));
        Ok(())
    }

    /// Appends `label`'s points from `N × D` rows, each dim's values in the answer's type
    /// (the caller's rows come from columns of those types), as record batches of at most
    /// [`CLOUD_BATCH_ROWS`] rows (one, empty, for no rows).
    pub fn push_cloud(&mut self, label: u64, cloud: &PointCloud) -> Result<(), FormatError> {
        let dims = cloud.dims();
        if dims != self.types.len() {
            return Err(internal(format!(
                "{dims}-dim points in a {}-dim answer",
                self.types.len()
            )));
        }
        let values = cloud.values();
        let step = CLOUD_BATCH_ROWS * dims;
        let mut start = 0;
        loop {
            let rows = &values[start..(start + step).min(values.len())];
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(dims);
            for (d, t) in self.types.iter().enumerate() {
                let values = rows.chunks_exact(dims).map(|r| r[d]);
                columns.push(if t == &DataType::Int64 {
                    Arc::new(Int64Array::from_iter_values(values))
                } else {
                    let narrow: Result<Vec<i32>, _> = values.map(i32::try_from).collect();
                    Arc::new(Int32Array::from(narrow.map_err(|_| {
                        internal(format!("a value of dim {d} does not fit its int32 column"))
                    })?))
                });
            }
            self.push_columns(label, columns)?;
            start += rows.len();
            if start >= values.len() {
                return Ok(());
            }
        }
    }

    /// The bytes encoded since the last call, in order.
    pub fn take(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.out)
    }

    /// Ends the stream and returns the remaining bytes.
    pub fn finish(mut self) -> Vec<Bytes> {
        self.out.push(Bytes::from_static(&END_OF_STREAM));
        self.take()
    }
}

/// Label columns of a stream: the last one built (a label repeated), sliced for each batch
/// of that label.
#[derive(Default)]
struct LabelColumns(Option<(u64, Bytes)>);

impl LabelColumns {
    /// `n` copies of `label`, little-endian.
    fn get(&mut self, label: u64, n: usize) -> Bytes {
        match &self.0 {
            Some((l, column)) if *l == label && column.len() >= n * 8 => column.slice(..n * 8),
            _ => {
                let column = owned_bytes(vec![label; n]);
                self.0 = Some((label, column.clone()));
                column
            }
        }
    }
}

/// The little-endian bytes of `values`, without copying them.
fn owned_bytes<T: ArrowNativeType>(values: Vec<T>) -> Bytes {
    ipc::buffer_bytes(Buffer::from_vec(values))
}

/// The IPC message of a record batch of `rows` points in the schema of [`arrow_schema`],
/// up to its body (the label values, then the `rows × dims` point values; no validity
/// buffers).
fn batch_header(rows: usize, dims: usize) -> Bytes {
    let n = rows as i64;
    let (labels, points) = (n * 8, n * dims as i64 * 8);
    let header = ipc::batch_header(
        n,
        // Label, points, the points' int64 child.
        &[
            arrow_ipc::FieldNode::new(n, 0),
            arrow_ipc::FieldNode::new(n, 0),
            arrow_ipc::FieldNode::new(n * dims as i64, 0),
        ],
        // Label validity and values, list validity, child validity and values.
        &[
            arrow_ipc::Buffer::new(0, 0),
            arrow_ipc::Buffer::new(0, labels),
            arrow_ipc::Buffer::new(labels, 0),
            arrow_ipc::Buffer::new(labels, 0),
            arrow_ipc::Buffer::new(labels, points),
        ],
        labels + points,
    );
    Bytes::from(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_array::{Array, FixedSizeListArray, RecordBatch, UInt64Array};
    use arrow_schema::SchemaRef;
    use pocaduck_edge_core::columns::int64_column;

    #[test]
    fn arrow_stream_round_trips() {
        let dims = vec!["x".to_string(), "y".into(), "z".into()];
        // Pieces as a streamed answer sends them: a label in several batches (its label
        // column reused, then grown), another label, an empty piece.
        let pieces: Vec<(u64, Vec<i64>)> = vec![
            (u64::MAX, vec![1, 2, 3, -4, 5, 6]),
            (u64::MAX, vec![i64::MIN, 0, i64::MAX]),
            (u64::MAX, vec![7, 8, 9, 10, 11, 12, 13, 14, 15]),
            ((1 << 53) + 1, vec![-1, -2, -3]),
            (5, vec![]),
        ];
        let mut enc = ArrowEncoder::new(&dims, None);
        let mut bytes: Vec<u8> = enc.take().concat();
        for (label, values) in &pieces {
            enc.push(*label, PointCloud::new(3, values.clone()).unwrap())
                .unwrap();
            bytes.extend(enc.take().concat());
        }
        bytes.extend(enc.finish().concat());
        let reader =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        assert_eq!(reader.schema(), arrow_schema(&dims));
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let item = Arc::new(Field::new("item", DataType::Int64, false));
        let expected: Vec<RecordBatch> = pieces
            .iter()
            .map(|(label, values)| {
                let points = FixedSizeListArray::new(
                    item.clone(),
                    3,
                    Arc::new(Int64Array::from(values.clone())),
                    None,
                );
                let labels = UInt64Array::from(vec![*label; values.len() / 3]);
                RecordBatch::try_new(
                    arrow_schema(&dims),
                    vec![Arc::new(labels), Arc::new(points)],
                )
                .unwrap()
            })
            .collect();
        assert_eq!(batches, expected);
    }

    /// A columns stream's batches, read back by arrow-rs's own reader.
    fn read_columns(enc: ColumnsEncoder, head: Vec<u8>) -> (SchemaRef, Vec<RecordBatch>) {
        let mut bytes = head;
        bytes.extend(enc.finish().concat());
        let reader =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        let schema = reader.schema();
        (schema, reader.map(|b| b.unwrap()).collect())
    }

    #[test]
    fn one_label_columns_stream_without_a_label_column() {
        let dims = vec!["x".to_string(), "y".into(), "z".into()];
        let label = (1u64 << 53) + 3;
        let types = vec![DataType::Int32, DataType::Int64, DataType::Int32];
        let bbox = BBox {
            min: vec![-2, i64::MIN, -12],
            max: vec![i32::MAX as i64, 6, 11],
        };
        let mut enc = ColumnsEncoder::new(&dims, types.clone(), Some(label), Some(&bbox)).unwrap();
        let mut head = enc.take().concat();
        // Odd lengths, so each int32 buffer needs padding before the next; an int32 array
        // widened into the int64 column; a sliced array; an empty piece.
        let x: ArrayRef = Arc::new(Int32Array::from(vec![1, -2, i32::MAX]));
        let y: ArrayRef = Arc::new(Int32Array::from(vec![i32::MIN, 5, 6]));
        let z: ArrayRef = Arc::new(Int32Array::from(vec![7, 8, 9, 10]));
        enc.push_columns(label, vec![x, y, z.slice(1, 3)]).unwrap();
        let wide: ArrayRef = Arc::new(Int64Array::from(vec![i64::MIN]));
        let one = |v: i32| -> ArrayRef { Arc::new(Int32Array::from(vec![v])) };
        enc.push_columns(label, vec![one(11), wide, one(-12)])
            .unwrap();
        enc.push_cloud(label, &PointCloud::empty(3)).unwrap();
        head.extend(enc.take().concat());
        let (schema, batches) = read_columns(enc, head);
        assert_eq!(schema.metadata()["pocaduck_edge:label"], label.to_string());
        assert_eq!(
            schema.metadata()["pocaduck_edge:bbox"],
            "-2,-9223372036854775808,-12,2147483647,6,11"
        );
        let fields: Vec<(String, DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let expected: Vec<(String, DataType)> = dims.iter().cloned().zip(types).collect();
        assert_eq!(fields, expected);
        let column = |b: usize, c: usize| int64_column(batches[b].column(c)).unwrap();
        let values = |b: usize, c: usize| -> Vec<i64> {
            column(b, c)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        assert_eq!(batches.len(), 3);
        assert_eq!(values(0, 0), vec![1, -2, i32::MAX as i64]);
        assert_eq!(values(0, 1), vec![i32::MIN as i64, 5, 6]);
        assert_eq!(values(0, 2), vec![8, 9, 10]);
        assert_eq!(
            [values(1, 0), values(1, 1), values(1, 2)],
            [vec![11], vec![i64::MIN], vec![-12]]
        );
        assert_eq!(batches[2].num_rows(), 0);
    }

    #[test]
    fn many_label_columns_streams_carry_a_label_column() {
        let dims = vec!["x".to_string(), "y".into()];
        let mut enc = ColumnsEncoder::new(&dims, vec![DataType::Int64; 2], None, None).unwrap();
        let mut head = enc.take().concat();
        enc.push_cloud(u64::MAX, &PointCloud::new(2, vec![1, 2, 3, 4]).unwrap())
            .unwrap();
        enc.push_cloud(7, &PointCloud::new(2, vec![i64::MAX, -5]).unwrap())
            .unwrap();
        head.extend(enc.take().concat());
        let (schema, batches) = read_columns(enc, head);
        assert!(!schema.metadata().contains_key("pocaduck_edge:label"));
        let labels: Vec<u64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(labels, vec![u64::MAX, u64::MAX, 7]);
        let y = batches[1]
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(y.values().to_vec(), vec![-5]);
    }

    #[test]
    fn a_big_cloud_goes_out_in_batches_of_its_rows() {
        let dims = vec!["x".to_string(), "y".into(), "z".into()];
        let rows = 2 * CLOUD_BATCH_ROWS + 5;
        let values: Vec<i64> = (0..rows as i64 * 3).map(|v| v * 7 - 1_000_000).collect();
        let label = 42;
        let mut enc =
            ColumnsEncoder::new(&dims, vec![DataType::Int32; 3], Some(label), None).unwrap();
        let mut head = enc.take().concat();
        enc.push_cloud(label, &PointCloud::new(3, values.clone()).unwrap())
            .unwrap();
        head.extend(enc.take().concat());
        let (_, batches) = read_columns(enc, head);
        let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(sizes, vec![CLOUD_BATCH_ROWS, CLOUD_BATCH_ROWS, 5]);
        let mut back = Vec::new();
        for batch in &batches {
            let column = |c: usize| {
                batch
                    .column(c)
                    .as_primitive::<Int32Type>()
                    .values()
                    .to_vec()
            };
            let (x, y, z) = (column(0), column(1), column(2));
            for i in 0..batch.num_rows() {
                back.extend([x[i], y[i], z[i]].map(i64::from));
            }
        }
        assert_eq!(back, values);
    }

    #[test]
    fn a_value_beyond_an_int32_column_is_refused_naming_its_dim() {
        let dims = vec!["x".to_string(), "y".into()];
        let mut enc = ColumnsEncoder::new(&dims, vec![DataType::Int32; 2], Some(1), None).unwrap();
        let cloud = PointCloud::new(2, vec![1, 2, 3, i64::from(i32::MAX) + 1]).unwrap();
        let e = enc.push_cloud(1, &cloud).unwrap_err().to_string();
        assert!(e.contains("dim 1 does not fit its int32 column"), "{e}");
        let cloud = PointCloud::new(2, vec![i64::from(i32::MIN) - 1, 0]).unwrap();
        let e = enc.push_cloud(1, &cloud).unwrap_err().to_string();
        assert!(e.contains("dim 0 does not fit"), "{e}");
    }

    #[test]
    fn columns_that_do_not_fit_the_answer_are_refused() {
        let dims = vec!["x".to_string()];
        assert!(ColumnsEncoder::new(&dims, vec![DataType::Float32], None, None).is_err());
        assert!(ColumnsEncoder::new(&dims, vec![DataType::Int32; 2], None, None).is_err());
        let mut enc = ColumnsEncoder::new(&dims, vec![DataType::Int32], Some(1), None).unwrap();
        // An int64 value where int32 is sent; another label in a one-label answer; nulls.
        let big = PointCloud::new(1, vec![1 << 40]).unwrap();
        assert!(enc.push_cloud(1, &big).is_err());
        assert!(enc
            .push_cloud(2, &PointCloud::new(1, vec![1]).unwrap())
            .is_err());
        let nulls: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
        assert!(enc.push_columns(1, vec![nulls]).is_err());
        let wide: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(enc.push_columns(1, vec![wide]).is_err());
    }

    #[test]
    fn a_whole_label_rows_stream_names_its_bounds() {
        let dims = vec!["x".to_string(), "y".into()];
        let bbox = BBox {
            min: vec![i64::MIN, -5],
            max: vec![3, i64::MAX],
        };
        let mut enc = ArrowEncoder::new(&dims, Some(&bbox));
        let mut bytes: Vec<u8> = enc.take().concat();
        let values = vec![i64::MIN, i64::MAX, 3, -5];
        enc.push(7, PointCloud::new(2, values).unwrap()).unwrap();
        bytes.extend(enc.take().concat());
        bytes.extend(enc.finish().concat());
        let reader =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        let schema = reader.schema();
        assert_eq!(
            schema.metadata()["pocaduck_edge:bbox"],
            format!("{},-5,3,{}", i64::MIN, i64::MAX)
        );
        assert_eq!(schema.metadata()["pocaduck_edge:dims"], "x,y");
        assert_eq!(schema.fields(), arrow_schema(&dims).fields());
        assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 2);
    }

    #[test]
    fn arrow_pieces_of_the_wrong_dims_are_refused() {
        let dims = vec!["x".to_string(), "y".into(), "z".into()];
        let mut enc = ArrowEncoder::new(&dims, None);
        let flat = PointCloud::new(2, vec![1, 2]).unwrap();
        assert!(enc.push(1, flat).is_err());
    }
}
