//! Neuroglancer's precomputed annotation format (`neuroglancer_annotations_v1`) for point
//! clouds, without IO: the bytes of one annotation and of lists of annotations, the
//! annotation ids of labels' points, and the levels of the spatial index, planned from
//! each label's point count and bounds ([docs/neuroglancer.md](../../../docs/neuroglancer.md)).
//!
//! Every point of a label is a `POINT` annotation whose position is its coordinates as
//! float32 (exact up to 2^24 in magnitude), related to its label through the one
//! relationship, [`RELATIONSHIP`].

use crate::cloud::BBox;

/// The id of the one relationship: an annotation's segment is its label.
pub const RELATIONSHIP: &str = "segment";

/// Bits of an annotation id that hold the point's rank among its label's points (in the
/// label's order); the bits above hold the label's ordinal among the dataset's labels
/// (ascending).
pub const RANK_BITS: u32 = 32;

/// Points the coarsest spatial level aims to hold at most, over all labels.
pub const COARSE_TARGET: u64 = 1 << 16;

/// The most levels of a spatial index.
pub const MAX_LEVELS: usize = 5;

/// The most cells of a spatial level (its grid's cells over all dims).
const MAX_CELLS: u64 = 1 << 12;

/// The annotation id of the point of rank `rank` of the label at `ordinal`; `None` when
/// either is too big for its bits ([`RANK_BITS`]).
pub fn annotation_id(ordinal: u64, rank: u64) -> Option<u64> {
    (ordinal >> (64 - RANK_BITS) == 0 && rank >> RANK_BITS == 0)
        .then_some(ordinal << RANK_BITS | rank)
}

/// The label ordinal and the rank an annotation id names.
pub fn split_id(id: u64) -> (u64, u64) {
    (id >> RANK_BITS, id & ((1 << RANK_BITS) - 1))
}

/// Appends row-major points as float32le positions, `D` values each.
pub fn push_positions(out: &mut Vec<u8>, values: &[i64]) {
    out.reserve(values.len() * 4);
    for &v in values {
        out.extend_from_slice(&(v as f32).to_le_bytes());
    }
}

/// Appends annotation ids as uint64le.
pub fn push_ids(out: &mut Vec<u8>, ids: impl IntoIterator<Item = u64>) {
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
}

/// The first 8 bytes of a list of `count` annotations (the multiple-annotation encoding of
/// the relationship and spatial indexes): the count as uint64le. The positions follow,
/// then the ids, in the same order.
pub fn list_head(count: u64) -> [u8; 8] {
    count.to_le_bytes()
}

/// A whole list of annotations: [`list_head`], the positions of row-major `values`, then
/// `ids` (one per point).
pub fn annotation_list(values: &[i64], dims: usize, ids: &[u64]) -> Vec<u8> {
    debug_assert_eq!(values.len(), ids.len() * dims);
    let mut out = Vec::with_capacity(8 + values.len() * 4 + ids.len() * 8);
    out.extend_from_slice(&list_head(ids.len() as u64));
    push_positions(&mut out, values);
    push_ids(&mut out, ids.iter().copied());
    out
}

/// One annotation as the annotation id index holds it: its position, then for the one
/// relationship the number of related segments (uint32le) and each (uint64le).
pub fn single_annotation(point: &[i64], segments: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(point.len() * 4 + 4 + segments.len() * 8);
    push_positions(&mut out, point);
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    push_ids(&mut out, segments.iter().copied());
    out
}

/// A key of the pseudo-random order of a spatial cell's annotations (splitmix64's
/// finaliser of their id): the annotations of a cell are sorted by the top half of their
/// keys, so any prefix is a spread sample, as the format asks.
pub fn shuffle_key(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the spatial index needs of a label: its number of points and their bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelExtent {
    /// Its number of points.
    pub point_count: u64,
    /// The inclusive bounds of its points.
    pub bbox: BBox,
}

/// One level of a [`SpatialIndex`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Cells along every dim: `2^level`.
    pub cells_per_dim: u64,
    /// The size of a cell along each dim, in voxels.
    pub chunk_size: Vec<i64>,
    /// The level holds each label's points whose rank is a multiple of `stride` and, but
    /// at level 0, not of the level above's stride.
    pub stride: u64,
    /// The most annotations a cell of the level holds: for each cell, the sum over the
    /// labels whose bounds meet it of their points at this level, at its largest (at
    /// least 1, as neuroglancer reads it).
    pub limit: u64,
}

/// The spatial index of a dataset: levels from coarse to fine over one grid origin. Level
/// `i` has `2^i` cells along every dim; each label's points are spread over the levels by
/// rank (every `stride`-th point, coarsest first), so the levels are disjoint and a point
/// lies in one cell of one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpatialIndex {
    /// The grid's origin: the dataset's smallest coordinates (`lower_bound`).
    pub lower: Vec<i64>,
    /// The exclusive end of the grid (`upper_bound`): past the dataset's largest
    /// coordinates, so that the finest cells have a whole size.
    pub upper: Vec<i64>,
    /// The levels, coarse to fine.
    pub levels: Vec<Level>,
}

impl SpatialIndex {
    /// The index of a dataset of `dims` dims whose points lie in `bbox` (`None`: no
    /// points), over its labels.
    pub fn plan(dims: usize, bbox: Option<&BBox>, labels: &[LabelExtent]) -> Self {
        let (lower, extent): (Vec<i64>, Vec<i64>) = match bbox {
            Some(b) => (
                b.min.clone(),
                b.min
                    .iter()
                    .zip(&b.max)
                    .map(|(lo, hi)| hi.saturating_sub(*lo).saturating_add(1))
                    .collect(),
            ),
            None => (vec![0; dims], vec![1; dims]),
        };
        // Each level has 2^D times the cells of the one above and a stride 2^D times
        // smaller, so a uniform cloud puts as many points in each cell at every level.
        let factor = 1u64 << dims.clamp(1, 4);
        let max_levels = (1..=MAX_LEVELS)
            .take_while(|&n| {
                (1u64 << (n - 1))
                    .checked_pow(dims as u32)
                    .is_some_and(|c| c <= MAX_CELLS)
            })
            .last()
            .unwrap_or(1);
        let coarse_points = |levels: usize| -> u64 {
            let stride = factor.saturating_pow(levels as u32 - 1);
            labels.iter().map(|l| l.point_count.div_ceil(stride)).sum()
        };
        let count = (1..=max_levels)
            .find(|&n| coarse_points(n) <= COARSE_TARGET)
            .unwrap_or(max_levels);
        let finest_cells = 1i64 << (count - 1);
        let finest: Vec<i64> = extent
            .iter()
            .map(|e| (e.saturating_add(finest_cells - 1) / finest_cells).max(1))
            .collect();
        let upper = lower
            .iter()
            .zip(&finest)
            .map(|(lo, c)| lo.saturating_add(c.saturating_mul(finest_cells)))
            .collect();
        let mut index = SpatialIndex {
            lower,
            upper,
            levels: Vec::with_capacity(count),
        };
        for level in 0..count {
            let coarser = (count - 1 - level) as u32;
            index.levels.push(Level {
                cells_per_dim: 1 << level,
                chunk_size: finest.iter().map(|c| c << coarser).collect(),
                stride: factor.saturating_pow(coarser),
                limit: 0,
            });
        }
        for level in 0..count {
            index.levels[level].limit = index.limit(level, labels).max(1);
        }
        index
    }

    /// The stride of the level above `level` (`None` at level 0).
    fn coarser_stride(&self, level: usize) -> Option<u64> {
        level.checked_sub(1).map(|up| self.levels[up].stride)
    }

    /// The points of a label of `count` points that `level` holds.
    pub fn level_points(&self, level: usize, count: u64) -> u64 {
        let here = count.div_ceil(self.levels[level].stride);
        here - self.coarser_stride(level).map_or(0, |s| count.div_ceil(s))
    }

    /// Whether `level` holds a label's point of rank `rank`.
    pub fn holds(&self, level: usize, rank: u64) -> bool {
        rank % self.levels[level].stride == 0
            && self.coarser_stride(level).is_none_or(|s| rank % s != 0)
    }

    /// The cell of `level` that holds `point` (clamped to the grid).
    pub fn cell_of(&self, level: usize, point: &[i64]) -> Vec<u64> {
        let l = &self.levels[level];
        point
            .iter()
            .zip(&self.lower)
            .zip(&l.chunk_size)
            .map(|((v, lo), size)| {
                let cell = (i128::from(*v) - i128::from(*lo)).div_euclid(i128::from(*size));
                cell.clamp(0, i128::from(l.cells_per_dim) - 1) as u64
            })
            .collect()
    }

    /// The inclusive bounds of `cell` of `level`; `None` when the level has no such cell.
    pub fn cell_bounds(&self, level: usize, cell: &[u64]) -> Option<BBox> {
        let l = self.levels.get(level)?;
        if cell.len() != self.lower.len() || cell.iter().any(|&c| c >= l.cells_per_dim) {
            return None;
        }
        let min: Vec<i64> = cell
            .iter()
            .zip(&self.lower)
            .zip(&l.chunk_size)
            .map(|((&c, lo), size)| lo + c as i64 * size)
            .collect();
        let max = min
            .iter()
            .zip(&l.chunk_size)
            .map(|(m, s)| m + s - 1)
            .collect();
        Some(BBox { min, max })
    }

    /// [`Level::limit`] of `level` over `labels`.
    fn limit(&self, level: usize, labels: &[LabelExtent]) -> u64 {
        let dims = self.lower.len();
        let side = self.levels[level].cells_per_dim;
        let mut cells = vec![0u64; side.pow(dims as u32) as usize];
        for label in labels {
            let n = self.level_points(level, label.point_count);
            if n == 0 {
                continue;
            }
            let lo = self.cell_of(level, &label.bbox.min);
            let hi = self.cell_of(level, &label.bbox.max);
            // Every cell of the box lo..=hi, as a counter over the dims.
            let mut at = lo.clone();
            loop {
                let flat = at.iter().fold(0u64, |f, &c| f * side + c);
                cells[flat as usize] += n;
                let Some(d) = (0..dims).rev().find(|&d| at[d] < hi[d]) else {
                    break;
                };
                at[d] += 1;
                at[d + 1..].copy_from_slice(&lo[d + 1..]);
            }
        }
        cells.into_iter().max().unwrap_or(0)
    }
}

/// A spatial key's cell, `x_y_z` (decimal, one per dim); `None` when malformed.
pub fn parse_cell(key: &str, dims: usize) -> Option<Vec<u64>> {
    let cell: Vec<u64> = key
        .split('_')
        .map(|part| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    (cell.len() == dims).then_some(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(min: &[i64], max: &[i64]) -> BBox {
        BBox {
            min: min.to_vec(),
            max: max.to_vec(),
        }
    }

    #[test]
    fn ids_hold_the_ordinal_above_the_rank() {
        assert_eq!(annotation_id(0, 0), Some(0));
        assert_eq!(annotation_id(1, 0), Some(4_294_967_296));
        assert_eq!(annotation_id(3, 5), Some(3 * 4_294_967_296 + 5));
        assert_eq!(
            annotation_id(u32::MAX as u64, u32::MAX as u64),
            Some(u64::MAX)
        );
        assert_eq!(annotation_id(1 << 32, 0), None);
        assert_eq!(annotation_id(0, 1 << 32), None);
        assert_eq!(split_id(3 * 4_294_967_296 + 5), (3, 5));
        assert_eq!(split_id(u64::MAX), (u32::MAX as u64, u32::MAX as u64));
    }

    #[test]
    fn a_list_is_its_count_then_positions_then_ids() {
        // Two 3-d points: count 2 (u64le), six float32le, two u64le ids.
        let bytes = annotation_list(&[1, -2, 3, 16_777_216, 0, 7], 3, &[9, 1 << 40]);
        let mut expected = vec![2, 0, 0, 0, 0, 0, 0, 0];
        // 1.0, -2.0, 3.0, 2^24, 0.0, 7.0 as IEEE 754 single precision, little-endian.
        for f in [
            0x3f80_0000u32,
            0xc000_0000,
            0x4040_0000,
            0x4b80_0000,
            0,
            0x40e0_0000,
        ] {
            expected.extend_from_slice(&f.to_le_bytes());
        }
        expected.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(bytes, expected);
        assert_eq!(annotation_list(&[], 3, &[]), vec![0; 8]);
    }

    #[test]
    fn one_annotation_is_its_position_then_its_segments() {
        let bytes = single_annotation(&[0, 1, -1], &[u64::MAX]);
        let mut expected = Vec::new();
        for f in [0u32, 0x3f80_0000, 0xbf80_0000] {
            expected.extend_from_slice(&f.to_le_bytes());
        }
        expected.extend_from_slice(&[1, 0, 0, 0]);
        expected.extend_from_slice(&[0xff; 8]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn the_shuffle_is_splitmix64() {
        // The first output of splitmix64 seeded with 0 (Vigna's reference generator).
        assert_eq!(shuffle_key(0), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn cells_are_decimal_coordinates_joined_by_underscores() {
        assert_eq!(parse_cell("0_1_22", 3), Some(vec![0, 1, 22]));
        for bad in [
            "", "0_1", "0_1_2_3", "0__1", "a_0_0", "-1_0_0", "+1_0_0", "0_0_0_",
        ] {
            assert_eq!(parse_cell(bad, 3), None, "{bad}");
        }
        assert_eq!(parse_cell("18446744073709551616_0_0", 3), None);
    }

    #[test]
    fn a_small_dataset_is_one_level_of_one_cell() {
        let labels = [
            LabelExtent {
                point_count: 10,
                bbox: bbox(&[0, 0, 0], &[9, 4, 1]),
            },
            LabelExtent {
                point_count: 3,
                bbox: bbox(&[-5, 0, 0], &[0, 0, 0]),
            },
        ];
        let index = SpatialIndex::plan(3, Some(&bbox(&[-5, 0, 0], &[9, 4, 1])), &labels);
        assert_eq!(index.lower, vec![-5, 0, 0]);
        assert_eq!(index.upper, vec![10, 5, 2]);
        assert_eq!(
            index.levels,
            vec![Level {
                cells_per_dim: 1,
                chunk_size: vec![15, 5, 2],
                stride: 1,
                limit: 13
            }]
        );
        assert!(index.holds(0, 0) && index.holds(0, 12));
        assert_eq!(
            index.cell_bounds(0, &[0, 0, 0]),
            Some(bbox(&[-5, 0, 0], &[9, 4, 1]))
        );
        assert_eq!(index.cell_bounds(0, &[1, 0, 0]), None);
        assert_eq!(index.cell_bounds(1, &[0, 0, 0]), None);
    }

    #[test]
    fn big_labels_spread_over_levels_by_rank() {
        // 100 000 points in one label: over the target at stride 1, under it at stride 8.
        let whole = bbox(&[0, 0, 0], &[99, 9, 9]);
        let labels = [LabelExtent {
            point_count: 100_000,
            bbox: whole.clone(),
        }];
        let index = SpatialIndex::plan(3, Some(&whole), &labels);
        assert_eq!(index.levels.len(), 2);
        assert_eq!(index.upper, vec![100, 10, 10]);
        assert_eq!(index.levels[0].stride, 8);
        assert_eq!(index.levels[1].stride, 1);
        assert_eq!(index.levels[1].chunk_size, vec![50, 5, 5]);
        assert_eq!(index.levels[0].limit, 12_500);
        // The label's bounds meet every cell: each may hold all of the rest.
        assert_eq!(index.levels[1].limit, 87_500);
        // Every rank lies in exactly one level.
        for rank in 0..100 {
            assert_eq!(index.holds(0, rank), rank % 8 == 0, "{rank}");
            assert_eq!(index.holds(1, rank), rank % 8 != 0, "{rank}");
        }
        assert_eq!(index.level_points(0, 17), 3);
        assert_eq!(index.level_points(1, 17), 14);
        assert_eq!(index.cell_of(1, &[49, 4, 5]), vec![0, 0, 1]);
        assert_eq!(index.cell_of(1, &[50, 9, 9]), vec![1, 1, 1]);
        assert_eq!(
            index.cell_bounds(1, &[1, 0, 1]),
            Some(bbox(&[50, 0, 5], &[99, 4, 9]))
        );
    }

    #[test]
    fn a_limit_sums_the_labels_that_meet_a_cell() {
        // Two labels of 200 000 points in opposite corners and one across the middle.
        let whole = bbox(&[0, 0, 0], &[63, 63, 63]);
        let corner = |lo: i64, hi: i64| LabelExtent {
            point_count: 200_000,
            bbox: bbox(&[lo, lo, lo], &[hi, hi, hi]),
        };
        let labels = [corner(0, 10), corner(50, 63), corner(20, 40)];
        let index = SpatialIndex::plan(3, Some(&whole), &labels);
        // 600 000 points: strides 64, 8, 1 (9 375 points at stride 64).
        assert_eq!(index.levels.len(), 3);
        assert_eq!(index.levels[0].limit, 3 * 3125);
        // Level 1 (cells of 32): the middle label meets the corner cells (0..31 and
        // 32..63 on every dim), each corner label one of them.
        assert_eq!(index.levels[1].limit, 2 * (25_000 - 3125));
        // Level 2 (cells of 16): the middle label meets cells 1..2, the first corner cell
        // 0 alone and the last cells 3 alone: no cell is met by two labels.
        assert_eq!(index.levels[2].limit, 200_000 - 25_000);
    }

    #[test]
    fn an_empty_dataset_has_one_cell_and_a_limit_of_one() {
        let index = SpatialIndex::plan(3, None, &[]);
        assert_eq!(index.lower, vec![0, 0, 0]);
        assert_eq!(index.upper, vec![1, 1, 1]);
        assert_eq!(index.levels.len(), 1);
        assert_eq!(index.levels[0].limit, 1);
    }
}
