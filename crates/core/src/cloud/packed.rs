//! Rows of 3 packed into `u64` keys that order as the rows do: the packing, sorting a
//! cloud through it, and [`PackedRows`], a label's rows gathered as keys.

use std::ops::Range;

use super::{BBox, PointCloud};

/// Rows of 3 packed into `u64` keys that order as the rows do: each value less the dim's
/// minimum, in 21 bits per dim. Sorting the keys is several times faster than sorting rows.
struct Packing {
    min: [i64; 3],
}

impl Packing {
    const BITS: u32 = 21;
    const MASK: u64 = (1 << Self::BITS) - 1;

    /// The packing of `cloud`'s rows, if it has 3 dims each spanning fewer than 2^21 values.
    fn of(cloud: &PointCloud) -> Option<Self> {
        if cloud.dims != 3 {
            return None;
        }
        let bbox = cloud.bbox()?;
        let fits =
            (0..3).all(|d| (bbox.max[d] as i128 - bbox.min[d] as i128) <= Self::MASK as i128);
        fits.then(|| Self {
            min: [bbox.min[0], bbox.min[1], bbox.min[2]],
        })
    }

    fn keys(&self, values: &[i64]) -> Vec<u64> {
        let [x0, y0, z0] = self.min;
        // In range: every value is at least its dim's minimum and within 2^21 of it.
        values
            .chunks_exact(3)
            .map(|r| {
                ((r[0].wrapping_sub(x0) as u64) << (2 * Self::BITS))
                    | ((r[1].wrapping_sub(y0) as u64) << Self::BITS)
                    | r[2].wrapping_sub(z0) as u64
            })
            .collect()
    }

    /// The key of a row of 3, or `None` when a value lies outside the packing's range.
    fn key(&self, row: &[i64]) -> Option<u64> {
        let mut key = 0u64;
        for (v, min) in row.iter().zip(self.min) {
            let offset = u64::try_from(v.checked_sub(min)?).ok()?;
            if offset > Self::MASK {
                return None;
            }
            key = (key << Self::BITS) | offset;
        }
        Some(key)
    }

    /// A key's offsets from the minimum, per dim.
    fn offsets(key: u64) -> [u64; 3] {
        [
            key >> (2 * Self::BITS),
            (key >> Self::BITS) & Self::MASK,
            key & Self::MASK,
        ]
    }

    /// The row of 3 at `offsets` from the minimum.
    fn row(&self, offsets: [u64; 3]) -> [i64; 3] {
        let [x0, y0, z0] = self.min;
        [
            x0.wrapping_add(offsets[0] as i64),
            y0.wrapping_add(offsets[1] as i64),
            z0.wrapping_add(offsets[2] as i64),
        ]
    }

    fn rows(&self, keys: &[u64]) -> Vec<i64> {
        let mut out = Vec::with_capacity(keys.len() * 3);
        for &k in keys {
            out.extend_from_slice(&self.row(Self::offsets(k)));
        }
        out
    }
}

/// A big label's rows of 3 held as packed `u64` keys while they are gathered (8 bytes a row
/// instead of 24): every value within 2^20 of the first row's. Sorting and de-duplicating the
/// keys sorts and de-duplicates the rows.
pub struct PackedRows {
    packing: Packing,
    keys: Vec<u64>,
}

impl PackedRows {
    /// Room for `capacity` rows around `first` (a row of 3); `None` for another width or a
    /// row too near the ends of int64.
    pub fn new(first: &[i64], capacity: usize) -> Option<Self> {
        let half = 1i64 << (Packing::BITS - 1);
        let [x, y, z] = <[i64; 3]>::try_from(first).ok()?;
        let min = [
            x.checked_sub(half)?,
            y.checked_sub(half)?,
            z.checked_sub(half)?,
        ];
        min.iter()
            .all(|m| m.checked_add(Packing::MASK as i64).is_some())
            .then(|| Self {
                packing: Packing { min },
                keys: Vec::with_capacity(capacity),
            })
    }

    /// Appends rows of 3; false, with none of them appended, when a value falls outside the
    /// range the keys can hold.
    pub fn extend(&mut self, values: &[i64]) -> bool {
        let before = self.keys.len();
        for row in values.chunks_exact(3) {
            match self.packing.key(row) {
                Some(key) => self.keys.push(key),
                None => {
                    self.keys.truncate(before);
                    return false;
                }
            }
        }
        true
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Sorts the rows lexicographically and removes duplicates, in place.
    pub fn sort_unique(&mut self) {
        if !self.keys.is_sorted() {
            self.keys.sort_unstable();
        }
        self.keys.dedup();
    }

    /// Rows `range` as `N × 3` int64 values.
    pub fn rows(&self, range: Range<usize>) -> Vec<i64> {
        self.packing.rows(&self.keys[range])
    }

    /// Every `stride`-th row from the first, as `N × 3` int64 values.
    pub fn every(&self, stride: usize) -> Vec<i64> {
        let keys: Vec<u64> = self.keys.iter().step_by(stride).copied().collect();
        self.packing.rows(&keys)
    }

    /// Bounds of the rows, or `None` when there is none.
    pub fn bbox(&self) -> Option<BBox> {
        let (mut lo, mut hi) = ([u64::MAX; 3], [0u64; 3]);
        for &k in &self.keys {
            let offsets = Packing::offsets(k);
            for d in 0..3 {
                lo[d] = lo[d].min(offsets[d]);
                hi[d] = hi[d].max(offsets[d]);
            }
        }
        (!self.keys.is_empty()).then(|| BBox {
            min: self.packing.row(lo).to_vec(),
            max: self.packing.row(hi).to_vec(),
        })
    }

    /// The rows, in their order, as a cloud.
    pub fn into_cloud(self) -> PointCloud {
        PointCloud {
            dims: 3,
            data: self.packing.rows(&self.keys),
        }
    }
}

impl PointCloud {
    /// Sorts (and de-duplicates when `unique`) through [`Packing`] keys; false, untouched,
    /// when the rows cannot be packed.
    pub(super) fn sort_packed(&mut self, unique: bool) -> bool {
        let Some(packing) = Packing::of(self) else {
            return false;
        };
        let mut keys = packing.keys(&self.data);
        // The rows are rebuilt from the keys: let them go first (a third less memory).
        self.data = Vec::new();
        keys.sort_unstable();
        if unique {
            keys.dedup();
        }
        self.data = packing.rows(&keys);
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn packed_rows_sort_and_bound_as_rows_do(
            base in prop::array::uniform3(-(1i64 << 40)..(1i64 << 40)),
            offsets in prop::collection::vec(prop::array::uniform3(-(1i64 << 20)..(1i64 << 20)), 1..200),
            stride in 1usize..9,
        ) {
            let values: Vec<i64> =
                offsets.iter().flat_map(|o| (0..3).map(move |d| base[d] + o[d])).collect();
            let mut packed = PackedRows::new(&base, 0).unwrap();
            prop_assert!(packed.extend(&values));
            prop_assert_eq!(packed.len(), offsets.len());
            prop_assert_eq!(packed.rows(0..packed.len()), values.clone());
            let mut cloud = PointCloud::new(3, values).unwrap();
            cloud.sort_unique();
            packed.sort_unique();
            prop_assert_eq!(packed.rows(0..packed.len()), cloud.values().to_vec());
            prop_assert_eq!(packed.bbox(), cloud.bbox());
            let every: Vec<i64> = cloud.rows().step_by(stride).flatten().copied().collect();
            prop_assert_eq!(packed.every(stride), every);
            prop_assert_eq!(packed.into_cloud(), cloud);
        }
    }

    #[test]
    fn packed_rows_refuse_rows_out_of_their_range_whole() {
        let half = 1i64 << 20;
        let mut packed = PackedRows::new(&[0, 0, 0], 4).unwrap();
        assert!(packed.extend(&[half - 1, -half, 0]));
        // The first row fits, the second does not: neither is kept.
        assert!(!packed.extend(&[1, 2, 3, 0, half, 0]));
        assert!(!packed.extend(&[0, -half - 1, 0]));
        assert_eq!(packed.rows(0..packed.len()), vec![half - 1, -half, 0]);
        assert!(PackedRows::new(&[i64::MIN, 0, 0], 0).is_none());
        assert!(PackedRows::new(&[i64::MAX, 0, 0], 0).is_none());
        assert!(PackedRows::new(&[0, 0], 0).is_none());
        assert!(PackedRows::new(&[0, 0, 0], 0).unwrap().bbox().is_none());
    }

    #[test]
    fn spans_of_two_to_the_21_are_sorted_by_rows() {
        let top = (1i64 << 21) - 1;
        let fits = PointCloud::new(3, vec![top, 0, 0, 0, top, 0, 0, 0, top]).unwrap();
        assert!(Packing::of(&fits).is_some());
        let wide = PointCloud::new(3, vec![top + 1, 0, 0, 0, 0, 0]).unwrap();
        assert!(Packing::of(&wide).is_none());
        let extremes = PointCloud::new(3, vec![i64::MAX, 0, 0, i64::MIN, 0, 0]).unwrap();
        assert!(Packing::of(&extremes).is_none());
        let mut c = wide.clone();
        c.sort_unique();
        assert_eq!(c.values(), &[0, 0, 0, top + 1, 0, 0]);
    }
}
