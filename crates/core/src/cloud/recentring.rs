//! Re-centring for rendering: float32 positions relative to an integer origin, from
//! row-major values or dim columns, with their exact bounds.

use std::ops::Range;

use super::{bbox_of_pieces, columns_bbox, xyz_bbox, BBox, Column};

/// Points ready to render: positions relative to an integer origin, and exact bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Recentred {
    /// `N × 3` float32: the first three dims (missing dims are 0) minus `origin`.
    pub positions: Vec<f32>,
    /// The centre of the bounds, rounded to an integer, per axis.
    pub origin: [f64; 3],
    /// Bounds of the points, `None` when there are none.
    pub bbox: Option<BBox>,
}

/// How points within a box are re-centred for rendering: the box's origin, and which
/// arithmetic keeps every difference exact until the float32 rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recentring {
    /// The origin, per axis.
    pub origin: [i64; 3],
    /// Every `value - origin` fits an i64.
    narrow: bool,
    /// Every axis spans at most `i32::MAX`, so int32 columns subtract in int32.
    spans_fit_i32: bool,
}

impl Recentring {
    /// Re-centres points whose bounds are thought to be `guess` (`dims` values a point):
    /// `pass` writes every position with the re-centring it is given and returns the bounds
    /// of the points it saw (`None` when it does not find them); when those prove `guess`
    /// wrong, `pass` runs again with them and rewrites every position. Returns the origin
    /// and the bounds.
    pub fn checked(
        guess: BBox,
        dims: usize,
        mut pass: impl FnMut(&Recentring) -> Option<BBox>,
    ) -> ([f64; 3], Option<BBox>) {
        let recentring = Self::of(&guess, dims);
        let (recentring, bbox) = match pass(&recentring) {
            Some(seen) if seen != guess => {
                let truer = Self::of(&seen, dims);
                pass(&truer);
                (truer, seen)
            }
            _ => (recentring, guess),
        };
        (recentring.origin.map(|o| o as f64), Some(bbox))
    }

    /// The re-centring of points within `bbox` (`dims` values a point).
    pub fn of(bbox: &BBox, dims: usize) -> Self {
        let (origin, narrow) = origin_of(bbox, dims);
        let spans_fit_i32 = bbox.min.iter().zip(&bbox.max).all(|(lo, hi)| {
            hi.checked_sub(*lo)
                .is_some_and(|span| span <= i32::MAX as i64)
        });
        Self {
            origin,
            narrow,
            spans_fit_i32,
        }
    }

    /// Appends the `N × 3` positions of `rows` of dim columns (within the box: a value
    /// outside it gets a meaningless position, never a panic) to `out`; returns the bounds
    /// of those rows, found in the same pass for int32 x, y and z.
    pub fn columns_into(
        &self,
        columns: &[Column],
        rows: Range<usize>,
        out: &mut Vec<f32>,
    ) -> Option<BBox> {
        let start = out.len();
        out.resize(start + rows.len() * 3, 0.0);
        if let ([Column::I32(x), Column::I32(y), Column::I32(z), rest @ ..], true) =
            (columns, self.spans_fit_i32)
        {
            let xyz = [&x[rows.clone()], &y[rows.clone()], &z[rows.clone()]];
            let mut bbox = self.xyz_into(xyz, &mut out[start..])?;
            for column in rest {
                let (lo, hi) = column.min_max(rows.clone())?;
                bbox.min.push(lo);
                bbox.max.push(hi);
            }
            return Some(bbox);
        }
        // Wrapping: a value outside the box gets a meaningless position, never a panic.
        for (k, column) in columns.iter().enumerate().take(3) {
            let o = self.origin[k];
            let slots = out[start..].iter_mut().skip(k).step_by(3);
            match column {
                Column::I32(v) => slots
                    .zip(&v[rows.clone()])
                    .for_each(|(s, x)| *s = (*x as i64).wrapping_sub(o) as f32),
                Column::I64(v) if self.narrow => slots
                    .zip(&v[rows.clone()])
                    .for_each(|(s, x)| *s = x.wrapping_sub(o) as f32),
                Column::I64(v) => slots
                    .zip(&v[rows.clone()])
                    .for_each(|(s, x)| *s = (*x as f64 - o as f64) as f32),
            }
        }
        columns_bbox(columns, rows)
    }

    /// Writes the `N × 3` positions of three int32 columns of equal length (within the box)
    /// into `out` (`3 × N` long) and returns the columns' bounds, in one pass: in int32 when
    /// every span fits it (the origin then lies within each column's bounds, so no
    /// difference overflows; a value outside the box gets a meaningless position, never a
    /// panic), four rows at a step with 128-bit SIMD in WebAssembly.
    pub fn xyz_into(&self, xyz: [&[i32]; 3], out: &mut [f32]) -> Option<BBox> {
        assert_eq!(out.len(), xyz[0].len() * 3, "3 positions a row");
        if !self.spans_fit_i32 {
            let columns = xyz.map(|c| Column::I32(c.to_vec().into()));
            let mut positions = Vec::with_capacity(out.len());
            let bbox = self.columns_into(&columns, 0..xyz[0].len(), &mut positions);
            out.copy_from_slice(&positions);
            return bbox;
        }
        let origin = self.origin.map(|o| o as i32);
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            simd::xyz_into(xyz, origin, out)
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            xyz_rows_into(xyz, origin, out)
        }
    }

    /// Appends the `N × 3` positions of row-major values (`dims` a row) to `out`, as
    /// [`recentre`] computes them for values within the box (a value outside it gets a
    /// meaningless position, never a panic).
    pub fn rows_into(&self, values: &[i64], dims: usize, out: &mut Vec<f32>) {
        let [ox, oy, oz] = self.origin;
        if dims == 3 && self.narrow {
            out.extend(values.chunks_exact(3).flat_map(|r| {
                [
                    r[0].wrapping_sub(ox),
                    r[1].wrapping_sub(oy),
                    r[2].wrapping_sub(oz),
                ]
                .map(|d| d as f32)
            }));
            return;
        }
        for row in values.chunks_exact(dims) {
            out.extend((0..3).map(|k| match row.get(k) {
                Some(v) if self.narrow => v.wrapping_sub(self.origin[k]) as f32,
                Some(v) => (*v as f64 - self.origin[k] as f64) as f32,
                None => 0.0,
            }));
        }
    }
}

/// The rendering origin of a box (its centre, rounded to an integer float64 holds exactly)
/// and whether every `value - origin` fits in an i64.
fn origin_of(b: &BBox, dims: usize) -> ([i64; 3], bool) {
    let mut origin = [0i64; 3];
    for (i, slot) in origin.iter_mut().enumerate().take(dims.min(3)) {
        let centre = ((b.min[i] as i128 + b.max[i] as i128) / 2) as i64;
        // Float64's nearest, or the one below it when that is 2^63, past the int64 end.
        let nearest = centre as f64;
        let held = if nearest >= i64::MAX as f64 {
            f64::from_bits(nearest.to_bits() - 1)
        } else {
            nearest
        };
        *slot = held as i64;
    }
    let narrow = b
        .min
        .iter()
        .zip(&b.max)
        .all(|(lo, hi)| hi.checked_sub(*lo).is_some());
    (origin, narrow)
}

/// Re-centres `N × dims` row-major values for rendering: `position + origin` is the exact
/// value whenever the points span less than 2^24 per axis (float32's exact integers).
pub fn recentre(values: &[i64], dims: usize) -> Recentred {
    recentre_pieces(&[values], dims)
}

/// [`recentre`] of values held in pieces of whole rows, as if they were one.
pub fn recentre_pieces(pieces: &[&[i64]], dims: usize) -> Recentred {
    let Some(bbox) = bbox_of_pieces(pieces, dims) else {
        return Recentred {
            positions: Vec::new(),
            origin: [0.0; 3],
            bbox: None,
        };
    };
    let recentring = Recentring::of(&bbox, dims);
    let rows: usize = pieces.iter().map(|p| p.len() / dims).sum();
    let mut positions = Vec::with_capacity(rows * 3);
    for piece in pieces {
        recentring.rows_into(piece, dims, &mut positions);
    }
    Recentred {
        positions,
        origin: recentring.origin.map(|o| o as f64),
        bbox: Some(bbox),
    }
}

/// [`Recentring::xyz_into`] a row at a time, in int32 (wrapping, so a value outside the box
/// never panics).
fn xyz_rows_into(xyz: [&[i32]; 3], [ox, oy, oz]: [i32; 3], out: &mut [f32]) -> Option<BBox> {
    let [x, y, z] = xyz;
    for (((x, y), z), slot) in x.iter().zip(y).zip(z).zip(out.chunks_exact_mut(3)) {
        slot.copy_from_slice(
            &[x.wrapping_sub(ox), y.wrapping_sub(oy), z.wrapping_sub(oz)].map(|d| d as f32),
        );
    }
    xyz_bbox(xyz)
}

/// [`Recentring::xyz_into`] in WebAssembly's 128-bit SIMD: four rows at a step, their
/// bounds kept as they pass.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    use super::{xyz_rows_into, BBox};

    pub(super) fn xyz_into(xyz: [&[i32]; 3], origin: [i32; 3], out: &mut [f32]) -> Option<BBox> {
        let [x, y, z] = xyz;
        let whole = x.len() / 4 * 4;
        if whole == 0 {
            return xyz_rows_into(xyz, origin, out);
        }
        let load = |v: &[i32]| -> v128 { bytemuck::pod_read_unaligned(bytemuck::cast_slice(v)) };
        let [ox, oy, oz] = origin.map(|o| i32x4_splat(o));
        let first = [load(&x[..4]), load(&y[..4]), load(&z[..4])];
        let (mut lo, mut hi) = (first, first);
        let steps = x[..whole]
            .chunks_exact(4)
            .zip(y[..whole].chunks_exact(4))
            .zip(z[..whole].chunks_exact(4));
        let out_bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[..whole * 3]);
        for (((a, b), c), to) in steps.zip(out_bytes.chunks_exact_mut(48)) {
            let v = [load(a), load(b), load(c)];
            for k in 0..3 {
                lo[k] = i32x4_min(lo[k], v[k]);
                hi[k] = i32x4_max(hi[k], v[k]);
            }
            let fx = f32x4_convert_i32x4(i32x4_sub(v[0], ox));
            let fy = f32x4_convert_i32x4(i32x4_sub(v[1], oy));
            let fz = f32x4_convert_i32x4(i32x4_sub(v[2], oz));
            // x0 y0 z0 x1 | y1 z1 x2 y2 | z2 x3 y3 z3
            let xy = i32x4_shuffle::<0, 4, 1, 5>(fx, fy);
            let yz = i32x4_shuffle::<1, 5, 2, 6>(fy, fz);
            let xy3 = i32x4_shuffle::<3, 7, 3, 7>(fx, fy);
            let rows = [
                i32x4_shuffle::<0, 1, 4, 2>(xy, fz),
                i32x4_shuffle::<0, 1, 6, 2>(yz, fx),
                i32x4_shuffle::<2, 4, 5, 3>(fz, xy3),
            ];
            for (slot, row) in to.chunks_exact_mut(16).zip(rows) {
                slot.copy_from_slice(bytemuck::bytes_of(&row));
            }
        }
        let lanes = |v: &v128| {
            [
                i32x4_extract_lane::<0>(*v),
                i32x4_extract_lane::<1>(*v),
                i32x4_extract_lane::<2>(*v),
                i32x4_extract_lane::<3>(*v),
            ]
            .into_iter()
        };
        let bounds = BBox {
            min: lo
                .iter()
                .map(|v| lanes(v).min().expect("4 lanes").into())
                .collect(),
            max: hi
                .iter()
                .map(|v| lanes(v).max().expect("4 lanes").into())
                .collect(),
        };
        let rest = [&x[whole..], &y[whole..], &z[whole..]];
        match xyz_rows_into(rest, origin, &mut out[whole * 3..]) {
            Some(more) => Some(bounds.union(&more)),
            None => Some(bounds),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::cloud::{bbox_of, PointCloud};

    use super::*;

    #[test]
    fn recentred_positions_add_back_to_exact_values() {
        let big = 1i64 << 40;
        let c = PointCloud::new(3, vec![big, -7, 3, big + 1000, 9, 3]).unwrap();
        let r = c.recentred();
        for (i, row) in c.rows().enumerate() {
            for (k, v) in row.iter().enumerate() {
                assert_eq!(r.positions[i * 3 + k] as f64 + r.origin[k], *v as f64);
            }
        }
        assert_eq!(r.bbox.unwrap().max, vec![big + 1000, 9, 3]);
        let beyond = (1i64 << 60) + 3;
        let r = recentre(&[beyond, 0, 0, beyond + 2, 0, 0], 3);
        assert_eq!(r.origin[0], (1u64 << 60) as f64);
        assert_eq!(r.positions[..4], [3.0, 0.0, 0.0, 5.0]);
    }

    /// Rows of 3 around `centre`, each value within `reach` of it.
    fn rows_near(centre: i64, reach: i64) -> impl Strategy<Value = Vec<i64>> {
        proptest::collection::vec(
            (-reach..=reach).prop_map(move |d| centre.saturating_add(d)),
            0..100,
        )
        .prop_map(|mut v| {
            v.truncate(v.len() / 3 * 3);
            v
        })
    }

    proptest! {
        #[test]
        fn positions_are_each_value_minus_the_origin_in_pieces_as_whole(
            values in prop_oneof![
                rows_near(0, 1000),
                rows_near(-(1 << 40), 1 << 23),
                rows_near(1 << 30, 1 << 24),
                rows_near(0, 1 << 25),
                rows_near(i64::MAX - 5, 10),
                rows_near(i64::MIN + 5, 10),
                rows_near(0, i64::MAX),
            ]
        ) {
            let whole = recentre(&values, 3);
            // Cut into pieces of 5 rows, as Arrow batches hold them.
            let pieces: Vec<&[i64]> = values.chunks(15).collect();
            let cut = recentre_pieces(&pieces, 3);
            let bits = |p: &[f32]| p.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&cut.positions), bits(&whole.positions));
            prop_assert_eq!((&cut.origin, &cut.bbox), (&whole.origin, &whole.bbox));
            prop_assert_eq!(&whole.bbox, &bbox_of(&values, 3));
            let Some(bbox) = &whole.bbox else {
                prop_assert!(values.is_empty());
                return Ok(());
            };
            for (i, v) in values.iter().enumerate() {
                let (k, o) = (i % 3, whole.origin[i % 3] as i128);
                let difference = *v as i128 - o;
                if i64::try_from(difference).is_ok() {
                    // One rounding, of the exact difference.
                    prop_assert_eq!(whole.positions[i], difference as f32);
                }
                if bbox.max[k] as i128 - bbox.min[k] as i128 <= 1 << 24 {
                    // Float32 holds every difference within its exact integers.
                    prop_assert_eq!(whole.positions[i] as i128, difference);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn int32_columns_recentre_as_rows_do_and_give_their_bounds(
            columns in prop_oneof![
                prop::collection::vec((-1000i32..1000, -5i32..5, 0i32..1 << 20), 0..40),
                prop::collection::vec((any::<i32>(), any::<i32>(), any::<i32>()), 1..40),
            ]
        ) {
            let x: Vec<i32> = columns.iter().map(|c| c.0).collect();
            let y: Vec<i32> = columns.iter().map(|c| c.1).collect();
            let z: Vec<i32> = columns.iter().map(|c| c.2).collect();
            let rows: Vec<i64> = columns
                .iter()
                .flat_map(|c| [c.0, c.1, c.2].map(i64::from))
                .collect();
            let whole = recentre(&rows, 3);
            let Some(bbox) = &whole.bbox else {
                prop_assert_eq!(xyz_bbox([&x, &y, &z]), None);
                return Ok(());
            };
            let mut out = vec![f32::NAN; rows.len()];
            let bounds = Recentring::of(bbox, 3).xyz_into([&x, &y, &z], &mut out);
            prop_assert_eq!(bounds.as_ref(), Some(bbox));
            let bits = |p: &[f32]| p.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&out), bits(&whole.positions));
        }
    }

    #[test]
    fn recentre_handles_other_dims_and_extreme_spans() {
        let two = recentre(&[10, -10, 20, 30], 2);
        assert_eq!(two.positions, vec![-5.0, -20.0, 0.0, 5.0, 20.0, 0.0]);
        assert_eq!(two.origin, [15.0, 10.0, 0.0]);
        let wide = recentre(&[i64::MIN, 0, 0, 1, i64::MAX, 0, 0, 1], 4);
        assert_eq!(wide.origin, [0.0, 0.0, 0.0]);
        assert_eq!(wide.positions[0], i64::MIN as f32);
        assert_eq!(wide.positions[3], i64::MAX as f32);
        let empty = recentre(&[], 3);
        assert!(empty.positions.is_empty() && empty.bbox.is_none());
    }
}
