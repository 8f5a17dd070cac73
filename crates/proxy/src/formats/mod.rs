//! Response encoders. Arrow is the stable program format: one IPC stream whose schema is
//! `label: uint64, points: fixed_size_list<int64>[D]` (the list's values are the `N × D`
//! row-major int64 points, so a client can view them without copying), one record batch per
//! piece of a label, with the dim names in the schema metadata `pocaduck_edge:dims`; or, with
//! `shape=columns`, one integer column per dim as stored ([`ColumnsEncoder`]).

mod arrow_stream;
mod counted;
mod parquet_file;

pub use arrow_stream::{ArrowEncoder, ColumnsEncoder, CLOUD_BATCH_ROWS};
pub use counted::{JsonEncoder, NpyEncoder};
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
    let mut out = counted::npy_header(cloud.len() as u64, cloud.dims());
    out.reserve(cloud.values().len() * 8);
    for v in cloud.values() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Bytes::from(out)
}

/// Labels as JSON, whole: one label's `{"count": N, "dims": D, "label": "…", "points":
/// [[…], …]}`, or, when `many`, `{"dims": D, "labels": [<one label's object>, …]}`.
pub fn json(dims: usize, labels: &[(u64, PointCloud)], many: bool) -> Result<Bytes, FormatError> {
    let counts = labels.iter().map(|(l, c)| (*l, c.len() as u64)).collect();
    let mut encoder = JsonEncoder::new(dims, counts, many);
    let mut out = encoder.take().to_vec();
    for (label, cloud) in labels {
        encoder.push(*label, cloud)?;
        out.extend_from_slice(&encoder.take());
    }
    out.extend_from_slice(&encoder.finish()?);
    Ok(Bytes::from(out))
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
