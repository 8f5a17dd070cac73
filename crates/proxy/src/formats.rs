//! Response encoders. Arrow is the stable program format: one IPC stream whose schema is
//! `label: uint64, points: fixed_size_list<int64>[D]` (the list's values are the `N × D`
//! row-major int64 points, so a client can view them without copying), one record batch per
//! piece of a label, with the dim names in the schema metadata `pocaduck_edge:dims`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Int32Array, Int64Array, RecordBatch, UInt64Array};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use pocaduck_edge_core::PointCloud;

use crate::error::ApiError;

/// The Arrow schema of point responses with these dim names.
pub fn arrow_schema(dims: &[String]) -> SchemaRef {
    let item = Arc::new(Field::new("item", DataType::Int64, false));
    let metadata = HashMap::from([("pocaduck_edge:dims".to_string(), dims.join(","))]);
    Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("label", DataType::UInt64, false),
            Field::new(
                "points",
                DataType::FixedSizeList(item, dims.len() as i32),
                false,
            ),
        ],
        metadata,
    ))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("encoding the response: {e}"))
}

/// Encodes an Arrow IPC stream piece by piece.
pub struct ArrowEncoder {
    writer: StreamWriter<Vec<u8>>,
    schema: SchemaRef,
}

impl ArrowEncoder {
    /// Starts a stream; the schema message is in the first [`ArrowEncoder::take`].
    pub fn new(dims: &[String]) -> Result<Self, ApiError> {
        let schema = arrow_schema(dims);
        let writer = StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?;
        Ok(Self { writer, schema })
    }

    /// Appends a record batch of `label`'s points.
    pub fn push(&mut self, label: u64, cloud: PointCloud) -> Result<(), ApiError> {
        let n = cloud.len();
        // The message is about the size of its two buffers: allocate it once, not by doubling.
        self.writer
            .get_mut()
            .reserve(n * 8 * (1 + cloud.dims()) + 1024);
        let DataType::FixedSizeList(item, size) = self.schema.field(1).data_type().clone() else {
            unreachable!("arrow_schema builds a fixed-size list")
        };
        let values = Int64Array::from(cloud.into_values());
        let points =
            FixedSizeListArray::try_new(item, size, Arc::new(values), None).map_err(internal)?;
        let labels = UInt64Array::from(vec![label; n]);
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![Arc::new(labels), Arc::new(points)],
        )
        .map_err(internal)?;
        self.writer.write(&batch).map_err(internal)
    }

    /// The bytes encoded since the last call.
    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.writer.get_mut()))
    }

    /// Ends the stream and returns the remaining bytes.
    pub fn finish(mut self) -> Result<Bytes, ApiError> {
        self.writer.finish().map_err(internal)?;
        Ok(self.take())
    }
}

/// One label's points as a NumPy `.npy` file, `(N, D)` little-endian int64.
pub fn npy(cloud: &PointCloud) -> Bytes {
    let mut header = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({}, {}), }}",
        cloud.len(),
        cloud.dims()
    );
    // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in \n.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + cloud.values().len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in cloud.values() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Bytes::from(out)
}

/// One label as JSON: `{"label": "…", "dims": D, "count": N, "points": [[…], …]}`.
pub fn json_label(label: u64, cloud: &PointCloud) -> serde_json::Value {
    let points: Vec<&[i64]> = cloud.rows().collect();
    serde_json::json!({"label": label.to_string(), "dims": cloud.dims(), "count": cloud.len(), "points": points})
}

/// Several labels as JSON: `{"dims": D, "labels": [<json_label>, …]}`.
pub fn json_many(dims: usize, labels: &[(u64, PointCloud)]) -> Bytes {
    let items: Vec<serde_json::Value> = labels.iter().map(|(l, c)| json_label(*l, c)).collect();
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({"dims": dims, "labels": items}))
            .expect("JSON values serialise"),
    )
}

/// Labels as one Parquet file: `label: uint64` and one column per dim (int32 when every
/// value fits, else int64), zstd with byte-stream-split coordinates, no statistics.
pub fn parquet(dims: &[String], labels: &[(u64, PointCloud)]) -> Result<Bytes, ApiError> {
    let narrow = labels
        .iter()
        .all(|(_, c)| c.values().iter().all(|v| i32::try_from(*v).is_ok()));
    let coord = if narrow {
        DataType::Int32
    } else {
        DataType::Int64
    };
    let mut fields = vec![Field::new("label", DataType::UInt64, false)];
    fields.extend(dims.iter().map(|d| Field::new(d, coord.clone(), false)));
    let schema = Arc::new(Schema::new(fields));
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(internal)?))
        // A one-off answer: no statistics or page index to pay for on the wire.
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_encoding(ColumnPath::from("label"), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(ColumnPath::from("label"), false);
    for d in dims {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(d.as_str()), false)
            .set_column_encoding(ColumnPath::from(d.as_str()), Encoding::BYTE_STREAM_SPLIT);
    }
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.build())).map_err(internal)?;
    for (label, cloud) in labels {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(UInt64Array::from(vec![*label; cloud.len()]))];
        for d in 0..dims.len() {
            let values = cloud.rows().map(|r| r[d]);
            columns.push(if narrow {
                Arc::new(Int32Array::from_iter_values(values.map(|v| v as i32)))
            } else {
                Arc::new(Int64Array::from_iter_values(values))
            });
        }
        writer
            .write(&RecordBatch::try_new(schema.clone(), columns).map_err(internal)?)
            .map_err(internal)?;
    }
    Ok(Bytes::from(writer.into_inner().map_err(internal)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let cloud = PointCloud::new(3, vec![1, -2, 3, 4, 5, 1 << 60]).unwrap();
        let bytes = npy(&cloud);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        let data = &bytes[10 + header_len..];
        assert_eq!(data.len(), 6 * 8);
        assert_eq!(
            i64::from_le_bytes(data[40..48].try_into().unwrap()),
            1 << 60
        );
    }

    #[test]
    fn arrow_stream_round_trips() {
        let dims = vec!["x".to_string(), "y".into(), "z".into()];
        let mut enc = ArrowEncoder::new(&dims).unwrap();
        enc.push(
            u64::MAX,
            PointCloud::new(3, vec![1, 2, 3, -4, 5, 6]).unwrap(),
        )
        .unwrap();
        let mut bytes = enc.take().to_vec();
        bytes.extend_from_slice(&enc.finish().unwrap());
        let reader =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 1);
        let labels = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        assert_eq!(labels.values().to_vec(), vec![u64::MAX, u64::MAX]);
        let points = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let values = points
            .values()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(values.values().to_vec(), vec![1, 2, 3, -4, 5, 6]);
        assert_eq!(points.len(), 2);
    }
}
