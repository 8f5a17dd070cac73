//! The stored point order within a label: coarse-to-fine octree levels, Morton order within
//! a level ("lod-morton").
//!
//! Points are first sorted along a Morton (Z-order) curve of their first three dims. A point
//! belongs to level `k` when it is the first point, along the curve, of an octree cell of
//! size `2^t` but of no larger one, with `k = top - t`. Storing levels coarse to fine makes
//! every prefix of a label a spatially spread subsample (a level of detail), while Morton
//! order inside each level keeps neighbours together so the columns compress well.

use crate::cloud::PointCloud;

/// Bits per axis in a 3-D Morton code.
const AXIS_BITS: u32 = 21;

/// Name of this order in the manifest.
pub const LOD_MORTON: &str = "lod-morton";

/// Spreads the low 21 bits of `v` to every third bit.
fn spread(v: u64) -> u64 {
    let mut x = v & 0x1f_ffff;
    x = (x | (x << 32)) & 0x001f_0000_0000_ffff;
    x = (x | (x << 16)) & 0x001f_0000_ff00_00ff;
    x = (x | (x << 8)) & 0x100f_00f0_0f00_f00f;
    x = (x | (x << 4)) & 0x10c3_0c30_c30c_30c3;
    x = (x | (x << 2)) & 0x1249_2492_4924_9249;
    x
}

/// Morton codes of the first three dims, offset by the cloud's minimum and shifted right
/// just enough to fit 21 bits per axis (the order only needs to be spatial, not exact).
fn morton_codes(cloud: &PointCloud) -> Vec<u64> {
    let Some(bbox) = cloud.bbox() else {
        return Vec::new();
    };
    let axes = cloud.dims().min(3);
    let span = (0..axes)
        .map(|i| (bbox.max[i] as i128 - bbox.min[i] as i128) as u128)
        .max()
        .unwrap_or(0);
    let bits = 128 - span.leading_zeros();
    let shift = bits.saturating_sub(AXIS_BITS);
    cloud
        .rows()
        .map(|row| {
            (0..axes).fold(0u64, |code, i| {
                let offset = ((row[i] as i128 - bbox.min[i] as i128) as u128 >> shift) as u64;
                code | (spread(offset) << i)
            })
        })
        .collect()
}

/// Reorders a de-duplicated cloud into lod-morton order.
pub fn lod_morton(cloud: &PointCloud) -> PointCloud {
    let codes = morton_codes(cloud);
    let mut by_curve: Vec<usize> = (0..cloud.len()).collect();
    by_curve.sort_unstable_by(|&a, &b| {
        codes[a]
            .cmp(&codes[b])
            .then_with(|| cloud.row(a).cmp(cloud.row(b)))
    });
    // The coarsest cell size a point opens is set by the highest bit in which its code
    // differs from its predecessor's; equal codes (possible only after shifting) share the
    // predecessor's cell and go to the finest level.
    let top = AXIS_BITS as u8;
    let mut level = vec![0u8; by_curve.len()];
    for k in 1..by_curve.len() {
        let diff = codes[by_curve[k]] ^ codes[by_curve[k - 1]];
        level[k] = if diff == 0 {
            top + 1
        } else {
            top - ((63 - diff.leading_zeros()) / 3) as u8
        };
    }
    let mut order: Vec<usize> = (0..by_curve.len()).collect();
    order.sort_by_key(|&k| level[k]);
    let mut data = Vec::with_capacity(cloud.values().len());
    for k in order {
        data.extend_from_slice(cloud.row(by_curve[k]));
    }
    PointCloud::new(cloud.dims(), data).expect("reordering keeps whole rows")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: i64) -> PointCloud {
        let mut data = Vec::new();
        for x in 0..n {
            for y in 0..n {
                for z in 0..n {
                    data.extend_from_slice(&[x, y, z]);
                }
            }
        }
        PointCloud::new(3, data).unwrap()
    }

    #[test]
    fn spread_interleaves_bits() {
        assert_eq!(spread(0b1), 0b1);
        assert_eq!(spread(0b11), 0b1001);
        assert_eq!(spread(0x1f_ffff).count_ones(), 21);
    }

    #[test]
    fn is_a_permutation() {
        let mut c = grid(9);
        let mut ordered = lod_morton(&c);
        assert_eq!(ordered.len(), c.len());
        ordered.sort_xyz();
        c.sort_xyz();
        assert_eq!(ordered, c);
    }

    #[test]
    fn prefixes_spread_over_the_whole_cloud() {
        // The first 8 points of a 16^3 grid are one per octant.
        let c = grid(16);
        let ordered = lod_morton(&c);
        let mut octants: Vec<(bool, bool, bool)> = ordered
            .rows()
            .take(8)
            .map(|p| (p[0] >= 8, p[1] >= 8, p[2] >= 8))
            .collect();
        octants.sort();
        octants.dedup();
        assert_eq!(octants.len(), 8);
    }
}
