//! The data model: a point cloud is `N × D` int64 values, row-major, with `D` explicit.

use std::ops::Range;

use arrow_buffer::ScalarBuffer;

use crate::error::{Error, Result};

/// `N × D` int64 points in row-major order. `D` (the number of dims) is explicit and never
/// guessed from the data's length.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PointCloud {
    dims: usize,
    data: Vec<i64>,
}

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

/// Whether row `a` of 3 comes strictly before row `b` (lexicographically), computed without
/// branches so that checks over data expected to be sorted run at full speed.
#[inline]
pub fn row_before(a: &[i64], b: &[i64]) -> bool {
    (a[0] < b[0]) | ((a[0] == b[0]) & ((a[1] < b[1]) | ((a[1] == b[1]) & (a[2] < b[2]))))
}

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

    /// Sorts (and de-duplicates when `unique`) through [`Packing`] keys; false, untouched,
    /// when the rows cannot be packed.
    fn sort_packed(&mut self, unique: bool) -> bool {
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

/// One dim's values as stored: the edge layout keeps a dim as int32 when every value
/// fits, else int64. The values are an Arrow buffer, so an Arrow array's values are held
/// where they lie, and a `Vec` becomes one without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// An INT32 column.
    I32(ScalarBuffer<i32>),
    /// An INT64 column (also `uint64`, bit for bit).
    I64(ScalarBuffer<i64>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::I32(v) => v.len(),
            Column::I64(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Smallest and largest of `rows`, `None` when empty.
    pub fn min_max(&self, rows: Range<usize>) -> Option<(i64, i64)> {
        match self {
            Column::I32(v) => min_max(&v[rows]),
            Column::I64(v) => min_max(&v[rows]),
        }
    }
}

/// Smallest and largest of `values`, `None` when empty: one pass, 16 lanes at a step so
/// that it vectorises.
pub fn min_max<T: Copy + Ord + Into<i64>>(values: &[T]) -> Option<(i64, i64)> {
    const LANES: usize = 16;
    let first = *values.first()?;
    let (mut lo, mut hi) = ([first; LANES], [first; LANES]);
    let mut steps = values.chunks_exact(LANES);
    for step in &mut steps {
        for k in 0..LANES {
            lo[k] = lo[k].min(step[k]);
            hi[k] = hi[k].max(step[k]);
        }
    }
    let tail = steps.remainder();
    let lo = lo.into_iter().chain(tail.iter().copied()).min()?;
    let hi = hi.into_iter().chain(tail.iter().copied()).max()?;
    Some((lo.into(), hi.into()))
}

/// Bounds of three int32 columns of equal length, `None` when empty.
pub fn xyz_bbox(xyz: [&[i32]; 3]) -> Option<BBox> {
    let [x, y, z] = xyz.map(min_max);
    let ((x0, x1), (y0, y1), (z0, z1)) = (x?, y?, z?);
    Some(BBox {
        min: vec![x0, y0, z0],
        max: vec![x1, y1, z1],
    })
}

/// Interleaves `rows` of dim columns into `N × D` row-major int64 values.
pub fn interleave(columns: &[Column], rows: Range<usize>) -> Vec<i64> {
    let mut out = Vec::with_capacity(rows.len() * columns.len());
    interleave_into(columns, rows, &mut out);
    out
}

/// [`interleave`], appending to `out` (so a buffer can be reused chunk after chunk).
pub fn interleave_into(columns: &[Column], rows: Range<usize>, out: &mut Vec<i64>) {
    let dims = columns.len();
    if let [Column::I32(x), Column::I32(y), Column::I32(z)] = columns {
        let rows = rows.clone();
        xyz_interleave_into([&x[rows.clone()], &y[rows.clone()], &z[rows]], out);
        return;
    }
    let start = out.len();
    out.resize(start + rows.len() * dims, 0);
    for (d, column) in columns.iter().enumerate() {
        let slots = out[start..].iter_mut().skip(d).step_by(dims);
        match column {
            Column::I32(v) => slots
                .zip(&v[rows.clone()])
                .for_each(|(s, x)| *s = *x as i64),
            Column::I64(v) => slots.zip(&v[rows.clone()]).for_each(|(s, x)| *s = *x),
        }
    }
}

/// Appends three int32 columns of equal length to `out` as `N × 3` row-major int64, in one
/// pass, rows appended whole to memory that is never zeroed first (twice as fast as
/// filling a zeroed buffer).
pub fn xyz_interleave_into([x, y, z]: [&[i32]; 3], out: &mut Vec<i64>) {
    out.reserve(x.len() * 3);
    out.extend(
        x.iter()
            .zip(y)
            .zip(z)
            .flat_map(|((x, y), z)| [i64::from(*x), i64::from(*y), i64::from(*z)]),
    );
}

/// Bounds of `rows` of dim columns, `None` when there are none.
pub fn columns_bbox(columns: &[Column], rows: Range<usize>) -> Option<BBox> {
    let (min, max) = columns
        .iter()
        .map(|c| c.min_max(rows.clone()))
        .collect::<Option<(Vec<_>, Vec<_>)>>()?;
    Some(BBox { min, max })
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

/// Bounds of values held in pieces of whole rows, `None` when there are none.
pub fn bbox_of_pieces(pieces: &[&[i64]], dims: usize) -> Option<BBox> {
    pieces
        .iter()
        .filter_map(|p| bbox_of(p, dims))
        .reduce(|a, b| a.union(&b))
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

    use super::*;

    #[test]
    fn refuses_ragged_data() {
        assert!(PointCloud::new(3, vec![1, 2]).is_err());
        assert!(PointCloud::new(0, vec![]).is_err());
    }

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
