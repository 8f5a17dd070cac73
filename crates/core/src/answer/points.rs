//! A [`Labelled`] answer's points read out: rows `N × D` int64 or re-centred for
//! rendering, whole or chunk by chunk, and their bounds.

use std::ops::Range;

use arrow_buffer::ScalarBuffer;

use super::{Labelled, Storage};
use crate::cloud::{
    bbox_of, bbox_of_pieces, columns_bbox, interleave_into, BBox, Column, Recentred, Recentring,
};

impl Labelled {
    /// Rows `rows` as `N × D` row-major int64.
    pub fn int64(&self, rows: Range<usize>) -> Vec<i64> {
        let mut out = Vec::with_capacity(rows.len() * self.dims);
        self.int64_chunked(rows, usize::MAX, |_, values| out.extend_from_slice(values));
        out
    }

    /// Rows `rows` as `N × D` row-major int64, handed to `sink` piece by piece with each
    /// piece's offset in values; column storage is interleaved `chunk_rows` rows at a time
    /// into one reused buffer, so no buffer of the whole output is made.
    pub fn int64_chunked(
        &self,
        rows: Range<usize>,
        chunk_rows: usize,
        mut sink: impl FnMut(usize, &[i64]),
    ) {
        let mut offset = 0;
        match &self.points {
            Storage::Rows(pieces) => {
                for piece in row_pieces(pieces, self.dims, rows) {
                    sink(offset, piece);
                    offset += piece.len();
                }
            }
            Storage::Columns(pieces) => {
                let mut buffer = Vec::with_capacity(chunk_rows.min(rows.len()) * self.dims);
                for (piece, rows) in column_pieces(pieces, rows) {
                    for chunk in chunks(rows, chunk_rows) {
                        buffer.clear();
                        interleave_into(piece, chunk, &mut buffer);
                        sink(offset, &buffer);
                        offset += buffer.len();
                    }
                }
            }
        }
    }

    /// Rows `rows` ready to render, the positions handed to `sink` `chunk_rows` rows at a
    /// time from one reused buffer, with each chunk's offset in values; returns the origin
    /// and the bounds. The positions equal [`Labelled::recentre`]'s.
    ///
    /// `hint` is what the rows' bounds are said to be (a [`LabelRun::bbox_hint`]). With a
    /// hint the positions take one pass over the rows instead of two: it finds their bounds
    /// as it re-centres them (row storage a chunk at a time, while the chunk is in cache),
    /// and a hint that pass proves wrong is followed by a second pass with the true bounds,
    /// which rewrites every position.
    ///
    /// [`LabelRun::bbox_hint`]: super::LabelRun::bbox_hint
    pub fn recentre_chunked(
        &self,
        rows: Range<usize>,
        hint: Option<&BBox>,
        chunk_rows: usize,
        mut sink: impl FnMut(usize, &[f32]),
    ) -> ([f64; 3], Option<BBox>) {
        if rows.is_empty() {
            return ([0.0; 3], None);
        }
        let hint = hint.filter(|h| h.min.len() == self.dims);
        let guess = match hint {
            Some(hint) => hint.clone(),
            None => match self.bbox(rows.clone()) {
                Some(bbox) => bbox,
                None => return ([0.0; 3], None),
            },
        };
        // Bounds found by a pass of their own need no check.
        let check = hint.is_some();
        Recentring::checked(guess, self.dims, |recentring| {
            self.recentre_pass(rows.clone(), recentring, chunk_rows, check, &mut sink)
        })
    }

    /// One pass of [`Labelled::recentre_chunked`]; returns the bounds of the rows it saw:
    /// always for column storage, which finds them as it re-centres, and for row storage
    /// when `check` asks.
    fn recentre_pass(
        &self,
        rows: Range<usize>,
        recentring: &Recentring,
        chunk_rows: usize,
        check: bool,
        sink: &mut impl FnMut(usize, &[f32]),
    ) -> Option<BBox> {
        let mut buffer = Vec::with_capacity(chunk_rows.min(rows.len()) * 3);
        let mut offset = 0;
        let mut seen: Option<BBox> = None;
        match &self.points {
            Storage::Rows(pieces) => {
                for piece in row_pieces(pieces, self.dims, rows) {
                    for chunk in piece.chunks(chunk_rows.max(1).saturating_mul(self.dims)) {
                        if check {
                            seen = BBox::union_of(seen, bbox_of(chunk, self.dims));
                        }
                        buffer.clear();
                        recentring.rows_into(chunk, self.dims, &mut buffer);
                        sink(offset, &buffer);
                        offset += buffer.len();
                    }
                }
            }
            Storage::Columns(pieces) => {
                for (piece, rows) in column_pieces(pieces, rows) {
                    for chunk in chunks(rows, chunk_rows) {
                        buffer.clear();
                        let bounds = recentring.columns_into(piece, chunk, &mut buffer);
                        seen = BBox::union_of(seen, bounds);
                        sink(offset, &buffer);
                        offset += buffer.len();
                    }
                }
            }
        }
        seen
    }

    /// Rows `rows` ready to render.
    pub fn recentre(&self, rows: Range<usize>) -> Recentred {
        let mut positions = Vec::with_capacity(rows.len() * 3);
        let (origin, bbox) = self.recentre_chunked(rows, None, usize::MAX, |_, values| {
            positions.extend_from_slice(values)
        });
        Recentred {
            positions,
            origin,
            bbox,
        }
    }

    /// Bounds of rows `rows`, `None` when empty.
    pub fn bbox(&self, rows: Range<usize>) -> Option<BBox> {
        match &self.points {
            Storage::Rows(pieces) => {
                bbox_of_pieces(&row_pieces(pieces, self.dims, rows), self.dims)
            }
            Storage::Columns(pieces) => column_pieces(pieces, rows)
                .into_iter()
                .filter_map(|(piece, rows)| columns_bbox(piece, rows))
                .reduce(|a, b| a.union(&b)),
        }
    }
}

/// `rows` cut into consecutive ranges of at most `size` rows (at least one row each).
fn chunks(rows: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    (rows.start..rows.end)
        .step_by(size)
        .map(move |start| start..start.saturating_add(size).min(rows.end))
}

/// The pieces of column storage that hold `rows`, each with its rows of them.
fn column_pieces(pieces: &[Vec<Column>], rows: Range<usize>) -> Vec<(&[Column], Range<usize>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let len = piece.first().map_or(0, Column::len);
        let (lo, hi) = (rows.start.max(offset), rows.end.min(offset + len));
        if lo < hi {
            out.push((&piece[..], lo - offset..hi - offset));
        }
        offset += len;
    }
    out
}

/// The parts of `pieces` (row-major, `dims` values a row) that hold `rows`.
fn row_pieces(pieces: &[ScalarBuffer<i64>], dims: usize, rows: Range<usize>) -> Vec<&[i64]> {
    let (start, end) = (rows.start * dims, rows.end * dims);
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let (lo, hi) = (start.max(offset), end.min(offset + piece.len()));
        if lo < hi {
            out.push(&piece[lo - offset..hi - offset]);
        }
        offset += piece.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::LabelRun;
    use crate::cloud::interleave;

    /// `columns` cut into pieces of rows at `cuts`, as an answer's batches hold them.
    fn column_pieces_at(columns: &[Column], cuts: &[usize]) -> Vec<Vec<Column>> {
        let n = columns[0].len();
        let bounds: Vec<usize> = [0].iter().chain(cuts).chain([n].iter()).copied().collect();
        bounds
            .windows(2)
            .map(|w| {
                let (at, len) = (w[0], w[1] - w[0]);
                columns
                    .iter()
                    .map(|c| match c {
                        Column::I32(v) => Column::I32(v.slice(at, len)),
                        Column::I64(v) => Column::I64(v.slice(at, len)),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn column_answers_go_out_chunk_by_chunk_equal_to_the_whole() {
        let n = 1000usize;
        let wide = |k: i64| -> ScalarBuffer<i64> {
            (0..n as i64)
                .map(|i| (i * 7919 + k) % 5003 - 2500)
                .collect::<Vec<_>>()
                .into()
        };
        let narrow = |k: i64| -> ScalarBuffer<i32> {
            wide(k).iter().map(|v| *v as i32).collect::<Vec<_>>().into()
        };
        let far: Vec<i64> = (0..n as i64)
            .map(|i| {
                if i % 2 == 0 {
                    i64::MIN + i
                } else {
                    i64::MAX - i
                }
            })
            .collect();
        let cases = [
            vec![
                Column::I32(narrow(1)),
                Column::I32(narrow(2)),
                Column::I32(narrow(3)),
            ],
            vec![
                Column::I32(narrow(1)),
                Column::I64(wide(2)),
                Column::I32(narrow(3)),
            ],
            vec![
                Column::I64(far.into()),
                Column::I64(wide(2)),
                Column::I32(narrow(3)),
            ],
            vec![Column::I32(narrow(4)), Column::I64(wide(5))],
            // A fourth dim beyond x, y and z: in the bounds, not in the positions.
            vec![
                Column::I32(narrow(6)),
                Column::I32(narrow(7)),
                Column::I32(narrow(8)),
                Column::I64(wide(9)),
            ],
        ];
        let cuts: [&[usize]; 5] = [&[], &[1, 2, 500], &[3], &[999], &[10]];
        for (columns, cuts) in cases.iter().zip(cuts) {
            let dims = columns.len();
            let labelled = Labelled {
                dims,
                // One piece, or pieces cut across the rows asked for and at their ends.
                points: Storage::Columns(column_pieces_at(columns, cuts)),
                runs: vec![LabelRun {
                    label: 1,
                    rows: 0..n,
                    bbox_hint: None,
                }],
            };
            let rows = 3..n - 5;
            let whole_int64 = interleave(columns, rows.clone());
            let whole = labelled.recentre(rows.clone());
            for chunk in [1, 2, 7, 64, n] {
                let mut int64 = Vec::new();
                labelled.int64_chunked(rows.clone(), chunk, |offset, values| {
                    assert_eq!(offset, int64.len());
                    assert!(values.len() <= chunk * dims);
                    int64.extend_from_slice(values);
                });
                assert_eq!(int64, whole_int64, "{dims} dims, chunks of {chunk}");
                let mut positions = Vec::new();
                let (origin, bbox) =
                    labelled.recentre_chunked(rows.clone(), None, chunk, |offset, values| {
                        assert_eq!(offset, positions.len());
                        positions.extend_from_slice(values);
                    });
                assert_eq!(positions, whole.positions, "{dims} dims, chunks of {chunk}");
                assert_eq!((origin, bbox), (whole.origin, whole.bbox.clone()));
            }
            assert_hints_change_nothing(&labelled, rows.clone(), &whole);
            assert_eq!(labelled.int64(rows.clone()), whole_int64);
            // The re-centred positions are the int64 rows minus the origin (exact here:
            // every difference of these columns is well inside float32's integers).
            if !matches!(columns[0], Column::I64(_)) {
                for (p, v) in whole.positions.chunks(3).zip(whole_int64.chunks(dims)) {
                    for d in 0..dims.min(3) {
                        assert_eq!(p[d] as f64, v[d] as f64 - whole.origin[d]);
                    }
                }
            }
        }
        // No rows: nothing handed out, no bounds.
        let empty = Labelled {
            dims: 3,
            points: Storage::Columns(vec![vec![
                Column::I32(ScalarBuffer::from(vec![])),
                Column::I32(ScalarBuffer::from(vec![])),
                Column::I32(ScalarBuffer::from(vec![])),
            ]]),
            runs: vec![],
        };
        assert_eq!(
            empty.recentre_chunked(0..0, None, 8, |_, _| panic!("no chunk")),
            ([0.0; 3], None)
        );
        empty.int64_chunked(0..0, 8, |_, _| panic!("no chunk"));
    }

    /// Bounds hints: the true bounds take one pass; wrong ones (a box too wide, too narrow,
    /// shifted anywhere, even past int32) a second pass, which rewrites every position; a
    /// hint of other dims is not used. The answer is `whole`'s each time.
    fn assert_hints_change_nothing(labelled: &Labelled, rows: Range<usize>, whole: &Recentred) {
        let exact = whole.bbox.clone().unwrap();
        let moved = |lo: i64, hi: i64| BBox {
            min: exact.min.iter().map(|v| v.saturating_add(lo)).collect(),
            max: exact.max.iter().map(|v| v.saturating_add(hi)).collect(),
        };
        let other_dims = BBox {
            min: exact.min[..1].to_vec(),
            max: exact.max[..1].to_vec(),
        };
        let hints = [
            exact.clone(),
            moved(-1, 1),
            moved(1, -1),
            moved(1 << 40, 1 << 40),
            moved(i64::MIN, i64::MIN),
            other_dims,
        ];
        for hint in hints {
            // (Moving a bound already at an end of int64 may leave the box as it was.)
            let wrong = hint != exact && hint.min.len() == labelled.dims;
            let passes = if wrong { 2 } else { 1 };
            for chunk in [7, rows.len()] {
                let mut positions = vec![f32::NAN; rows.len() * 3];
                let mut written = 0;
                let (origin, bbox) =
                    labelled.recentre_chunked(rows.clone(), Some(&hint), chunk, |at, values| {
                        positions[at..at + values.len()].copy_from_slice(values);
                        written += values.len();
                    });
                let what = format!("{} dims, hint {hint:?}, chunks of {chunk}", labelled.dims);
                assert_eq!(positions, whole.positions, "{what}");
                assert_eq!((origin, bbox), (whole.origin, whole.bbox.clone()), "{what}");
                assert_eq!(written, passes * rows.len() * 3, "{what}");
            }
        }
    }

    #[test]
    fn row_pieces_recentre_in_chunks_as_whole() {
        // Pieces as Arrow batches leave them: exact rows, rows too far apart for float32,
        // rows whose differences overflow int64, and 2 and 4 dims.
        let near: Vec<i64> = (0..90).map(|i| (i * 37) % 101 - 50 + (1 << 40)).collect();
        let far: Vec<i64> = (0..60).map(|i| (i % 7) << 30).collect();
        let extreme = vec![i64::MIN, 0, 5, i64::MAX, -1, 7, 0, 0, 0];
        let cases = [
            (3, vec![near[..30].to_vec(), near[30..].to_vec()]),
            (3, vec![far.clone()]),
            (3, vec![extreme]),
            (2, vec![near[..40].to_vec(), near[40..80].to_vec()]),
            (4, vec![far[..24].to_vec(), far[24..].to_vec()]),
        ];
        for (dims, pieces) in cases {
            let n = pieces.iter().map(Vec::len).sum::<usize>() / dims;
            let labelled = Labelled {
                dims,
                points: Storage::Rows(pieces.into_iter().map(ScalarBuffer::from).collect()),
                runs: vec![],
            };
            for rows in [0..n, 1..n - 1] {
                let whole = labelled.recentre(rows.clone());
                for chunk in [1, 2, 7, n] {
                    let mut positions = Vec::new();
                    let (origin, bbox) =
                        labelled.recentre_chunked(rows.clone(), None, chunk, |offset, values| {
                            assert_eq!(offset, positions.len());
                            assert!(values.len() <= chunk * 3);
                            positions.extend_from_slice(values);
                        });
                    let what = format!("{dims} dims, rows {rows:?}, chunks of {chunk}");
                    assert_eq!(positions, whole.positions, "{what}");
                    assert_eq!((origin, bbox), (whole.origin, whole.bbox.clone()), "{what}");
                }
                assert_hints_change_nothing(&labelled, rows, &whole);
            }
        }
    }
}
