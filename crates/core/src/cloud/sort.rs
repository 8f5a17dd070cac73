//! Rows in order: the lexicographic row order, and sorting and de-duplicating a cloud's
//! rows in it.

use super::PointCloud;

/// Whether row `a` of 3 comes strictly before row `b` (lexicographically), computed without
/// branches so that checks over data expected to be sorted run at full speed.
#[inline]
pub fn row_before(a: &[i64], b: &[i64]) -> bool {
    (a[0] < b[0]) | ((a[0] == b[0]) & ((a[1] < b[1]) | ((a[1] == b[1]) & (a[2] < b[2]))))
}

impl PointCloud {
    /// Sorts rows lexicographically and removes duplicates: PoCADuck's
    /// `np.unique(points, axis=0)`, which is also its order.
    pub fn sort_unique(&mut self) {
        if self.is_sorted_unique() {
            return;
        }
        if self.sort_packed(true) {
            return;
        }
        self.sort_xyz();
        let d = self.dims;
        let mut write = 0usize;
        for read in 0..self.len() {
            if write > 0
                && self.data[read * d..(read + 1) * d] == self.data[(write - 1) * d..write * d]
            {
                continue;
            }
            if write != read {
                self.data.copy_within(read * d..(read + 1) * d, write * d);
            }
            write += 1;
        }
        self.data.truncate(write * d);
    }

    /// Whether rows are strictly ascending: sorted lexicographically with no duplicate.
    pub fn is_sorted_unique(&self) -> bool {
        if self.dims == 3 {
            // Every pair compared without early exit: several times faster on sorted data,
            // the case this check exists for.
            let rows = || self.data.chunks_exact(3);
            return rows()
                .zip(rows().skip(1))
                .fold(true, |sorted, (a, b)| sorted & row_before(a, b));
        }
        self.data.chunks_exact(self.dims).is_sorted_by(|a, b| a < b)
    }

    /// Sorts rows lexicographically (PoCADuck's order, `order=xyz`).
    pub fn sort_xyz(&mut self) {
        if self.sort_packed(false) {
            return;
        }
        if self.dims == 3 {
            let mut rows: Vec<[i64; 3]> = self
                .data
                .chunks_exact(3)
                .map(|r| [r[0], r[1], r[2]])
                .collect();
            rows.sort_unstable();
            self.data = rows.into_iter().flatten().collect();
        } else {
            let mut rows: Vec<&[i64]> = self.data.chunks_exact(self.dims).collect();
            rows.sort_unstable();
            self.data = rows.concat();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn sortedness_is_strict_and_lexicographic() {
        let cloud = |v: Vec<i64>| PointCloud::new(3, v).unwrap();
        assert!(cloud(vec![]).is_sorted_unique());
        assert!(cloud(vec![5, 5, 5]).is_sorted_unique());
        assert!(cloud(vec![0, 9, 9, 1, 0, 0, 1, 0, 1]).is_sorted_unique());
        assert!(!cloud(vec![1, 0, 0, 1, 0, 0]).is_sorted_unique());
        assert!(!cloud(vec![1, 0, 1, 1, 0, 0]).is_sorted_unique());
        assert!(cloud(vec![1, 2, 3, 1, 3, -9]).is_sorted_unique());
        assert!(!cloud(vec![1, 2, 3, 1, 1, 9]).is_sorted_unique());
        assert!(!cloud(vec![0, 0, 0, 1, 2, 3, 1, 2, 2]).is_sorted_unique());
        assert!(!cloud(vec![0, 0, 0, 1, 2, 3, 1, 2, 3, 4, 0, 0]).is_sorted_unique());
        let mut one_dim = PointCloud::new(1, vec![1, 2, 2]).unwrap();
        assert!(!one_dim.is_sorted_unique());
        one_dim.sort_unique();
        assert!(one_dim.is_sorted_unique());
    }

    #[test]
    fn sort_unique_matches_numpy_unique_axis0() {
        let mut c = PointCloud::new(3, vec![3, 1, 1, 1, 2, 3, 3, 1, 1, 1, 2, 2, -5, 9, 9]).unwrap();
        c.sort_unique();
        assert_eq!(c.values(), &[-5, 9, 9, 1, 2, 2, 1, 2, 3, 3, 1, 1]);
        let mut wide = PointCloud::new(4, vec![1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2]).unwrap();
        wide.sort_unique();
        assert_eq!(wide.values(), &[1, 1, 1, 1, 1, 1, 1, 2]);
    }

    /// Rows sorted (and de-duplicated when `unique`) by comparing rows, as a reference.
    fn by_rows(values: &[i64], unique: bool) -> Vec<i64> {
        let mut rows: Vec<[i64; 3]> = values.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect();
        rows.sort();
        if unique {
            rows.dedup();
        }
        rows.concat()
    }

    proptest! {
        #[test]
        fn packed_sorting_orders_rows_as_comparing_them_does(
            base in prop::array::uniform3(any::<i64>()),
            span in prop::sample::select(vec![1i64, 7, (1 << 21) - 1, 1 << 21, i64::MAX]),
            offsets in prop::collection::vec(prop::array::uniform3(any::<i64>()), 0..200),
        ) {
            // Rows around `base` within `span` per dim (wrapping at the int64 ends).
            let values: Vec<i64> = offsets
                .iter()
                .flat_map(|o| (0..3).map(move |d| base[d].wrapping_add(o[d].rem_euclid(span))))
                .collect();
            let mut unique = PointCloud::new(3, values.clone()).unwrap();
            unique.sort_unique();
            prop_assert_eq!(unique.values(), &by_rows(&values, true)[..]);
            let mut sorted = PointCloud::new(3, values.clone()).unwrap();
            sorted.sort_xyz();
            prop_assert_eq!(sorted.values(), &by_rows(&values, false)[..]);
        }
    }
}
