//! Response encoders. Arrow is the stable program format: one IPC stream whose schema is
//! `label: uint64, points: fixed_size_list<int64>[D]` (the list's values are the `N × D`
//! row-major int64 points, so a client can view them without copying), one record batch per
//! piece of a label, with the dim names in the schema metadata `pocaduck_edge:dims`; or, with
//! `shape=columns`, one integer column per dim as stored ([`ColumnsEncoder`]).

mod arrow_stream;
mod parquet_file;

pub use arrow_stream::{ArrowEncoder, ColumnsEncoder, CLOUD_BATCH_ROWS};
pub use parquet_file::{parquet, ParquetEncoder};

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use pocaduck_edge_core::PointCloud;

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

/// An answer could not be encoded (a fault of ours, or stored bytes that do not fit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encoding the answer: {0}")]
pub struct FormatError(String);

fn internal(e: impl std::fmt::Display) -> FormatError {
    FormatError(e.to_string())
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

/// Answers of at most this many points are compressed at [`SMALL_ANSWER_ZSTD_LEVEL`]: they
/// encode in well under a millisecond at any level, and bytes on the wire dominate.
pub const SMALL_ANSWER_POINTS: u64 = 1 << 16;
/// The zstd level of small answers (the sample's level: a quarter fewer bytes than 3).
pub const SMALL_ANSWER_ZSTD_LEVEL: i32 = 14;
/// The zstd level of the rows a Parquet answer encodes: fast for big answers.
pub const ANSWER_ZSTD_LEVEL: i32 = 3;

/// The zstd level of a Parquet answer of about `points` points.
pub fn answer_zstd_level(points: u64) -> i32 {
    if points <= SMALL_ANSWER_POINTS {
        SMALL_ANSWER_ZSTD_LEVEL
    } else {
        ANSWER_ZSTD_LEVEL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
