//! Bounds: [`BBox`], and the bounds of row-major values, whole or in pieces.

/// Axis-aligned bounds of a cloud: per dim, the smallest and largest value (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BBox {
    /// Smallest value of each dim.
    pub min: Vec<i64>,
    /// Largest value of each dim.
    pub max: Vec<i64>,
}

impl BBox {
    /// Whether `point` lies inside (bounds inclusive); dims beyond the box's are not tested.
    pub fn contains(&self, point: &[i64]) -> bool {
        point
            .iter()
            .zip(self.min.iter().zip(&self.max))
            .all(|(v, (lo, hi))| lo <= v && v <= hi)
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &BBox) -> BBox {
        BBox {
            min: self
                .min
                .iter()
                .zip(&other.min)
                .map(|(a, b)| *a.min(b))
                .collect(),
            max: self
                .max
                .iter()
                .zip(&other.max)
                .map(|(a, b)| *a.max(b))
                .collect(),
        }
    }

    /// The smallest box holding both, either of which may be absent.
    pub fn union_of(a: Option<BBox>, b: Option<BBox>) -> Option<BBox> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.union(&b)),
            (a, b) => a.or(b),
        }
    }
}

/// Bounds of `N × dims` row-major values, `None` when empty.
pub fn bbox_of(values: &[i64], dims: usize) -> Option<BBox> {
    if dims == 3 {
        // The common case, with fixed-size rows the compiler keeps in registers.
        let (first, rest) = values.split_first_chunk::<3>()?;
        let (mut min, mut max) = (*first, *first);
        for row in rest.chunks_exact(3) {
            for ((lo, hi), v) in min.iter_mut().zip(max.iter_mut()).zip(row) {
                *lo = (*lo).min(*v);
                *hi = (*hi).max(*v);
            }
        }
        return Some(BBox {
            min: min.to_vec(),
            max: max.to_vec(),
        });
    }
    let mut rows = values.chunks_exact(dims);
    let first = rows.next()?;
    let mut bbox = BBox {
        min: first.to_vec(),
        max: first.to_vec(),
    };
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            bbox.min[i] = bbox.min[i].min(*v);
            bbox.max[i] = bbox.max[i].max(*v);
        }
    }
    Some(bbox)
}

/// Bounds of values held in pieces of whole rows, `None` when there are none.
pub fn bbox_of_pieces(pieces: &[&[i64]], dims: usize) -> Option<BBox> {
    pieces
        .iter()
        .filter_map(|p| bbox_of(p, dims))
        .reduce(|a, b| a.union(&b))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn bounds_are_each_axis_min_and_max(
            rows in prop::collection::vec(prop::array::uniform3(any::<i64>()), 0..40),
        ) {
            let values = rows.concat();
            let axis = |k: usize| rows.iter().map(move |r| r[k]);
            let expected = (!rows.is_empty()).then(|| BBox {
                min: (0..3).map(|k| axis(k).min().unwrap()).collect(),
                max: (0..3).map(|k| axis(k).max().unwrap()).collect(),
            });
            prop_assert_eq!(bbox_of(&values, 3), expected);
        }
    }
}
