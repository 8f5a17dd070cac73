//! The data model: a point cloud is `N × D` int64 values, row-major, with `D` explicit.

mod bbox;
mod column;
mod packed;
mod recentring;
mod sort;

use crate::error::{Error, Result};

pub use bbox::{bbox_of, bbox_of_pieces, BBox};
pub use column::{
    columns_bbox, interleave, interleave_into, min_max, xyz_bbox, xyz_interleave_into, Column,
};
pub use packed::PackedRows;
pub use recentring::{recentre, recentre_pieces, Recentred, Recentring};
pub use sort::row_before;

/// `N × D` int64 points in row-major order. `D` (the number of dims) is explicit and never
/// guessed from the data's length.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PointCloud {
    dims: usize,
    data: Vec<i64>,
}

impl PointCloud {
    /// Wraps `data` as rows of `dims` values.
    pub fn new(dims: usize, data: Vec<i64>) -> Result<Self> {
        if dims == 0 {
            return Err(Error::Points("a point cloud needs at least one dim".into()));
        }
        if data.len() % dims != 0 {
            return Err(Error::Points(format!(
                "{} values are not a whole number of {dims}-dim points",
                data.len()
            )));
        }
        Ok(Self { dims, data })
    }

    /// An empty `(0, dims)` cloud.
    pub fn empty(dims: usize) -> Self {
        Self {
            dims,
            data: Vec::new(),
        }
    }

    /// Number of dims (`D`).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Number of points (`N`).
    pub fn len(&self) -> usize {
        self.data.len() / self.dims
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values, row-major.
    pub fn values(&self) -> &[i64] {
        &self.data
    }

    /// Takes the values out, row-major.
    pub fn into_values(self) -> Vec<i64> {
        self.data
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[i64] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }

    /// Iterates over the points.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, i64> {
        self.data.chunks_exact(self.dims)
    }

    /// Appends the points of `other` (same dims).
    pub fn extend(&mut self, other: &PointCloud) -> Result<()> {
        if other.dims != self.dims {
            return Err(Error::Points(format!(
                "cannot add {}-dim points to {}-dim points",
                other.dims, self.dims
            )));
        }
        self.data.extend_from_slice(&other.data);
        Ok(())
    }

    /// Keeps only the points `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&[i64]) -> bool) {
        let d = self.dims;
        let mut write = 0usize;
        for read in 0..self.len() {
            if keep(&self.data[read * d..(read + 1) * d]) {
                self.data.copy_within(read * d..(read + 1) * d, write * d);
                write += 1;
            }
        }
        self.data.truncate(write * d);
    }

    /// A level of detail: of a label's `total` points, the `limit` at evenly spaced ranks
    /// (ranks `⌊j · total / limit⌋`), kept from this cloud, which holds the ranks starting
    /// at `first_rank`. Applied piece by piece, the pieces add up to exactly `limit` points.
    pub fn spread_sample(&self, first_rank: u64, total: u64, limit: u64) -> PointCloud {
        if limit >= total {
            return self.clone();
        }
        let d = self.dims;
        let mut data = Vec::new();
        // The first j whose rank ⌊j·total/limit⌋ reaches first_rank, then every j after it.
        let mut j = ((first_rank as u128 * limit as u128).div_ceil(total as u128)) as u64;
        while j < limit {
            let rank = (j as u128 * total as u128 / limit as u128) as u64;
            let Some(i) = rank
                .checked_sub(first_rank)
                .filter(|i| (*i as usize) < self.len())
            else {
                break;
            };
            data.extend_from_slice(&self.data[i as usize * d..(i as usize + 1) * d]);
            j += 1;
        }
        PointCloud { dims: d, data }
    }

    /// Bounds of the points, or `None` when empty.
    pub fn bbox(&self) -> Option<BBox> {
        bbox_of(&self.data, self.dims)
    }

    /// Positions for rendering, as [`recentre`] gives them.
    pub fn recentred(&self) -> Recentred {
        recentre(&self.data, self.dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_ragged_data() {
        assert!(PointCloud::new(3, vec![1, 2]).is_err());
        assert!(PointCloud::new(0, vec![]).is_err());
    }

    #[test]
    fn spread_samples_add_up_across_pieces() {
        let values: Vec<i64> = (0..100).flat_map(|i| [i, 0, 0]).collect();
        let whole = PointCloud::new(3, values.clone()).unwrap();
        let once = whole.spread_sample(0, 100, 7);
        assert_eq!(once.len(), 7);
        assert_eq!(
            once.rows().map(|r| r[0]).collect::<Vec<_>>(),
            vec![0, 14, 28, 42, 57, 71, 85]
        );
        let mut pieces = PointCloud::empty(3);
        for start in (0..100).step_by(13) {
            let end = (start + 13).min(100);
            let piece = PointCloud::new(3, values[start * 3..end * 3].to_vec()).unwrap();
            pieces
                .extend(&piece.spread_sample(start as u64, 100, 7))
                .unwrap();
        }
        assert_eq!(pieces, once);
        assert_eq!(whole.spread_sample(0, 100, 0).len(), 0);
        assert_eq!(whole.spread_sample(0, 100, 100), whole);
    }

    #[test]
    fn bbox_and_retain() {
        let mut c = PointCloud::new(3, vec![0, 0, 0, 5, 5, 5, 10, -1, 2]).unwrap();
        let b = c.bbox().unwrap();
        assert_eq!(
            (b.min.clone(), b.max.clone()),
            (vec![0, -1, 0], vec![10, 5, 5])
        );
        let window = BBox {
            min: vec![0, 0, 0],
            max: vec![5, 5, 5],
        };
        c.retain(|p| window.contains(p));
        assert_eq!(c.values(), &[0, 0, 0, 5, 5, 5]);
    }
}
