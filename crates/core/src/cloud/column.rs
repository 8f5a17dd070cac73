//! Dim columns as stored ([`Column`]): their bounds, and interleaving them into rows.

use std::ops::Range;

use arrow_buffer::ScalarBuffer;

use super::BBox;

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
