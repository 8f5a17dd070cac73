//! The dataset writer: labels in ascending order in, an edge-layout dataset out through a
//! [`FileSink`] (the host decides where files go: a directory, an object store, memory).

mod blocks;
mod dataset;
mod encoders;
mod hashing;
mod label_index;
mod memory;
mod points_file;

use std::io::Write;

use parquet::basic::ZstdLevel;

use crate::error::{Error, Result};

pub use dataset::DatasetWriter;
pub use memory::MemorySink;

/// Where the writer puts files: `create` returns a writer for a path relative to the
/// dataset (`/`-separated). Hosts implement it; this crate does no IO itself.
pub trait FileSink {
    /// Opens `path` for writing.
    fn create(&mut self, path: &str) -> std::io::Result<Box<dyn Write + Send>>;
}

/// The zstd level of points files unless told otherwise: fast to write (higher levels save up
/// to a quarter of the bytes at many times the cost, through the `parquet` crate's streaming
/// zstd, and read no faster).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The size of coarse levels unless told otherwise: a level of detail of up to a million
/// points reads at most twice that many.
pub const DEFAULT_COARSE_POINTS: u64 = 1 << 20;

/// The stride of the coarse level of a label of `points` points, for labels of more than
/// 4 × `coarse_points` points (none when `coarse_points` is 0): the largest power of two
/// that leaves more than `coarse_points` points, so the level holds between `coarse_points`
/// and twice that many.
pub fn coarse_stride(points: u64, coarse_points: u64) -> Option<u64> {
    if coarse_points == 0 || points <= coarse_points.saturating_mul(4) {
        return None;
    }
    let mut stride = 4u64;
    while points.div_ceil(stride * 2) > coarse_points {
        stride *= 2;
    }
    Some(stride)
}

/// Tuning of the layout.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per row group (labels smaller than this never straddle two row groups).
    pub row_group_rows: usize,
    /// Rows after which a new points file starts (at a label boundary).
    pub file_rows: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// Labels of more than 4 × this many points get a coarse level of more than this many
    /// points (see [`coarse_stride`]); 0 writes none.
    pub coarse_points: u64,
    /// Voxel size in nm per dim, recorded in the manifest.
    pub voxel_size_nm: Option<Vec<f64>>,
    /// Recorded in the manifest: origin, licence, citation.
    pub attribution: Option<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 32 * 1024,
            file_rows: 16 << 20,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            coarse_points: DEFAULT_COARSE_POINTS,
            voxel_size_nm: None,
            attribution: None,
        }
    }
}

/// How many points of a label came from one PoCADuck block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCount {
    /// The block id as PoCADuck stored it.
    pub block_id: String,
    /// Points (rows) of the label in that block, duplicates included.
    pub point_count: u64,
}

fn zstd_level(level: i32) -> Result<ZstdLevel> {
    ZstdLevel::try_new(level).map_err(|e| Error::Write {
        path: String::new(),
        message: e.to_string(),
    })
}

fn write_error(path: &str, e: std::io::Error) -> Error {
    Error::Write {
        path: path.into(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_strides_leave_between_one_and_two_levels_worth_of_points() {
        for coarse_points in [1u64, 3, 100, 1 << 20] {
            for points in (0..5000).chain([4 * coarse_points, 4 * coarse_points + 1, 97_000_000]) {
                let got = coarse_stride(points, coarse_points);
                // The largest power of two from 4 up leaving more than `coarse_points`.
                let expected = (points > 4 * coarse_points).then(|| {
                    (2..64)
                        .map(|k| 1u64 << k)
                        .take_while(|s| points.div_ceil(*s) > coarse_points)
                        .last()
                        .unwrap()
                });
                assert_eq!(got, expected, "{points} points, level {coarse_points}");
            }
        }
        assert_eq!(coarse_stride(97_000_000, 1 << 20), Some(64));
        assert_eq!(coarse_stride(u64::MAX, 0), None);
        assert_eq!(coarse_stride(u64::MAX, u64::MAX), None);
    }
}
