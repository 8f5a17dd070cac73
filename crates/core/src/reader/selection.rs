//! Which points of a label an answer keeps: `limit` points spread evenly over the label's
//! order, then those inside `bbox`.

use crate::cloud::{BBox, PointCloud};

/// The points an answer keeps of each label it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Points kept per label, spread evenly over its order (a level of detail), taken
    /// before `bbox` filters; `None` keeps every point.
    pub limit: Option<u64>,
    /// Bounds (inclusive) over the leading dims that kept points lie in; `None` keeps
    /// points anywhere.
    pub bbox: Option<BBox>,
}

impl Selection {
    /// Whether every point of every label is kept as stored (no `limit`, no `bbox`): an
    /// answer then passes the stored points through (whole row groups, decoded columns)
    /// instead of choosing among them.
    pub fn keeps_stored_points(&self) -> bool {
        self.limit.is_none() && self.bbox.is_none()
    }

    /// Whether every point of a label of `count` points is kept: no `bbox`, and a `limit`
    /// (if any) of at least `count`. The label's bounds are then its index entry's.
    pub fn keeps_every_point(&self, count: u64) -> bool {
        self.bbox.is_none() && self.limit.is_none_or(|n| n >= count)
    }

    /// Points of a label of `count` points that `limit` keeps: the number kept when there
    /// is no `bbox`, and an upper bound when there is one.
    pub fn sampled(&self, count: u64) -> u64 {
        self.limit.map_or(count, |n| n.min(count))
    }

    /// The points of `cloud` kept: `cloud` holds the points of ranks `first_rank ..` of a
    /// label of `count` points (a piece of it, in the label's order); `limit` keeps its
    /// share of an even spread over the whole label ([`PointCloud::spread_sample`]), so the
    /// pieces of a label together keep `min(limit, count)` points; then `bbox` filters.
    pub fn apply(&self, first_rank: u64, count: u64, cloud: PointCloud) -> PointCloud {
        let mut cloud = match self.limit {
            Some(limit) if limit < count => cloud.spread_sample(first_rank, count, limit),
            _ => cloud,
        };
        if let Some(b) = &self.bbox {
            cloud.retain(|point| b.contains(point));
        }
        cloud
    }
}

/// A box given as the minima then the maxima of its leading dims (`[min0, min1, …, max0,
/// max1, …]`), over 1 to `dims` dims; `None` when `values` is not such a list.
pub fn leading_bbox(values: &[i64], dims: usize) -> Option<BBox> {
    let k = values.len() / 2;
    if values.len() % 2 != 0 || k == 0 || k > dims {
        return None;
    }
    Some(BBox {
        min: values[..k].to_vec(),
        max: values[k..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `n` points `[i, -i, 7]`, ranks `first ..`.
    fn ranks(first: u64, n: u64) -> PointCloud {
        let values = (first..first + n)
            .flat_map(|i| [i as i64, -(i as i64), 7])
            .collect();
        PointCloud::new(3, values).unwrap()
    }

    fn xs(cloud: &PointCloud) -> Vec<i64> {
        cloud.rows().map(|r| r[0]).collect()
    }

    #[test]
    fn stored_points_pass_only_without_limit_and_bbox() {
        let bbox = Some(BBox {
            min: vec![0],
            max: vec![1],
        });
        let cases = [
            (None, None, true),
            (Some(5), None, false),
            (Some(u64::MAX), None, false),
            (None, bbox.clone(), false),
            (Some(5), bbox, false),
        ];
        for (limit, bbox, stored) in cases {
            let s = Selection { limit, bbox };
            assert_eq!(s.keeps_stored_points(), stored, "{s:?}");
        }
    }

    #[test]
    fn every_point_is_kept_up_to_a_limit_of_the_count() {
        let s = |limit| Selection { limit, bbox: None };
        assert!(s(None).keeps_every_point(10));
        assert!(s(Some(10)).keeps_every_point(10));
        assert!(!s(Some(9)).keeps_every_point(10));
        let boxed = Selection {
            limit: None,
            bbox: leading_bbox(&[0, 9], 3),
        };
        assert!(!boxed.keeps_every_point(10));
        assert_eq!(s(Some(9)).sampled(10), 9);
        assert_eq!(s(Some(11)).sampled(10), 10);
        assert_eq!(s(None).sampled(10), 10);
    }

    #[test]
    fn limit_comes_before_bbox() {
        // Ranks 0..10; a limit of 5 keeps ranks 0, 2, 4, 6, 8; the box then keeps 4..=7.
        let s = Selection {
            limit: Some(5),
            bbox: leading_bbox(&[4, 7], 3),
        };
        assert_eq!(xs(&s.apply(0, 10, ranks(0, 10))), vec![4, 6]);
        // A limit of 2 keeps ranks 0 and 5, of which the box keeps one (the box first
        // would have kept 4..=7, and the limit two of those).
        let s = Selection {
            limit: Some(2),
            bbox: leading_bbox(&[4, 7], 3),
        };
        assert_eq!(xs(&s.apply(0, 10, ranks(0, 10))), vec![5]);
    }

    #[test]
    fn a_piece_keeps_its_share_of_the_label_spread() {
        let s = Selection {
            limit: Some(7),
            bbox: None,
        };
        assert_eq!(
            xs(&s.apply(0, 100, ranks(0, 100))),
            [0, 14, 28, 42, 57, 71, 85]
        );
        assert_eq!(xs(&s.apply(40, 100, ranks(40, 20))), [42, 57]);
        assert_eq!(xs(&s.apply(86, 100, ranks(86, 14))), Vec::<i64>::new());
    }

    #[test]
    fn leading_boxes_span_one_to_d_dims() {
        assert_eq!(
            leading_bbox(&[1, 2, 3, 4], 3),
            Some(BBox {
                min: vec![1, 2],
                max: vec![3, 4]
            })
        );
        assert!(leading_bbox(&[1, 2, 3, 4, 5, 6], 3).is_some());
        for bad in [&[][..], &[1], &[1, 2, 3], &[0; 8]] {
            assert_eq!(leading_bbox(bad, 3), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn a_limit_keeps_min_of_limit_and_count_spread_as_spread_sample(
            count in 0u64..300, limit in 0u64..400, cuts in proptest::collection::vec(1u64..50, 0..10)
        ) {
            let s = Selection { limit: Some(limit), bbox: None };
            let whole = s.apply(0, count, ranks(0, count));
            prop_assert_eq!(whole.len() as u64, limit.min(count));
            // Rank ⌊j·count/limit⌋ for each kept j, every rank when the limit covers all.
            let expected: Vec<i64> = if limit >= count {
                (0..count as i64).collect()
            } else {
                (0..limit).map(|j| (j as u128 * count as u128 / limit as u128) as i64).collect()
            };
            prop_assert_eq!(xs(&whole), expected);
            prop_assert_eq!(&whole, &ranks(0, count).spread_sample(0, count, limit));
            // Cut into pieces at any ranks, the pieces keep the same points.
            let mut pieces = PointCloud::empty(3);
            let mut first = 0;
            for cut in cuts.iter().copied().chain([count]) {
                let n = cut.min(count - first);
                pieces.extend(&s.apply(first, count, ranks(first, n))).unwrap();
                first += n;
                if first == count {
                    break;
                }
            }
            prop_assert_eq!(pieces, whole);
        }

        #[test]
        fn a_bbox_keeps_exactly_the_points_inside(
            count in 0u64..200, lo in -10i64..210, len in 0i64..100, limit in proptest::option::of(0u64..300)
        ) {
            let bbox = leading_bbox(&[lo, lo + len], 3).unwrap();
            let s = Selection { limit, bbox: Some(bbox.clone()) };
            let sampled = Selection { limit, bbox: None }.apply(0, count, ranks(0, count));
            let kept = s.apply(0, count, ranks(0, count));
            let expected: Vec<i64> = xs(&sampled).into_iter().filter(|x| (lo..=lo + len).contains(x)).collect();
            prop_assert_eq!(xs(&kept), expected);
            prop_assert!(kept.rows().all(|p| bbox.contains(p)));
        }

        #[test]
        fn keeps_stored_points_iff_no_limit_and_no_bbox(
            limit in proptest::option::of(any::<u64>()), bbox in proptest::option::of((any::<i64>(), any::<i64>()))
        ) {
            let bbox = bbox.map(|(a, b)| BBox { min: vec![a], max: vec![b] });
            let s = Selection { limit, bbox: bbox.clone() };
            prop_assert_eq!(s.keeps_stored_points(), limit.is_none() && bbox.is_none());
            if s.keeps_stored_points() {
                let cloud = ranks(0, 20);
                prop_assert_eq!(s.apply(0, 20, cloud.clone()), cloud);
            }
        }
    }
}
