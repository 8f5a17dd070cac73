//! A one-label `shape=columns` Arrow answer read where it lies, in the caller's JS bytes:
//! its int32 columns are copied into wasm memory a chunk at a time, and each chunk goes
//! out to the JS outputs while it is in cache, so the answer is never copied whole. With
//! the bounds known up front (the answer's `pocaduck_edge:bbox`, checked as it goes),
//! the positions take one pass over the bytes.

use std::cell::RefCell;

use js_sys::{Int32Array, Uint8Array};
use pocaduck_edge_core::cloud::{xyz_bbox, xyz_interleave_into, BBox, Recentring};
use pocaduck_edge_core::ipc::ColumnsLayout;

use crate::decoded::CHUNK_ROWS;

/// The points of a one-label columns answer, in the JS bytes that hold it.
pub struct JsColumns {
    bytes: Uint8Array,
    layout: ColumnsLayout,
    /// The bounds of every point, once a pass has seen them all.
    bbox: RefCell<Option<BBox>>,
}

impl JsColumns {
    /// The answer in `bytes` (4-byte aligned in its buffer), laid out as `layout` says.
    pub fn new(bytes: Uint8Array, layout: ColumnsLayout) -> Self {
        Self {
            bytes,
            layout,
            bbox: RefCell::new(None),
        }
    }

    /// The answer's label.
    pub fn label(&self) -> u64 {
        self.layout.label
    }

    /// Its points.
    pub fn rows(&self) -> usize {
        self.layout.rows()
    }

    /// Hands every [`CHUNK_ROWS`] rows of the three columns to `f`, with the offset of
    /// their first row; `f` returns their bounds, and the pass the bounds of every value.
    fn pass(&self, mut f: impl FnMut(usize, [&[i32]; 3]) -> Option<BBox>) -> Option<BBox> {
        let buffer = self.bytes.buffer();
        let base = self.bytes.byte_offset() as usize;
        let size = CHUNK_ROWS.min(self.rows()).max(1);
        let mut scratch = [vec![0i32; size], vec![0i32; size], vec![0i32; size]];
        let mut bounds = None;
        let mut offset = 0;
        for batch in &self.layout.batches {
            for start in (0..batch.rows).step_by(size) {
                let n = size.min(batch.rows - start);
                for (column, at) in scratch.iter_mut().zip(batch.columns) {
                    let from = (base + at + start * 4) as u32;
                    Int32Array::new_with_byte_offset_and_length(&buffer, from, n as u32)
                        .copy_to(&mut column[..n]);
                }
                let [x, y, z] = &scratch;
                bounds = BBox::union_of(bounds, f(offset, [&x[..n], &y[..n], &z[..n]]));
                offset += n;
            }
        }
        bounds
    }

    /// The bounds of every point: known from a pass, or found by one.
    pub fn bbox(&self) -> Option<BBox> {
        let known = self.bbox.borrow().clone();
        known.or_else(|| {
            let found = self.pass(|_, xyz| xyz_bbox(xyz));
            self.bbox.replace(found.clone());
            found
        })
    }

    /// Every point, `N × 3` row-major int64, handed to `sink` [`CHUNK_ROWS`] rows at a time
    /// with each chunk's offset in values.
    pub fn int64_chunked(&self, mut sink: impl FnMut(usize, &[i64])) {
        let mut buffer = Vec::new();
        let found = self.pass(|offset, xyz| {
            buffer.clear();
            xyz_interleave_into(xyz, &mut buffer);
            sink(offset * 3, &buffer);
            xyz_bbox(xyz)
        });
        self.bbox.replace(found);
    }

    /// Every point ready to render, the positions handed to `sink` [`CHUNK_ROWS`] rows at a
    /// time with each chunk's offset in values; returns the origin and the bounds, as
    /// [`pocaduck_edge_core::answer::Labelled::recentre_chunked`] does. One pass when the
    /// bounds are known or the answer's hint is right; a hint the pass proves wrong is
    /// followed by a second pass with the true bounds, which rewrites every position.
    pub fn recentre_chunked(
        &self,
        mut sink: impl FnMut(usize, &[f32]),
    ) -> ([f64; 3], Option<BBox>) {
        let guess = self.bbox.borrow().clone().or_else(|| {
            // Int32 columns lie within int32's range: a hint outside it is wrong.
            let hint = self.layout.bbox_hint.clone()?;
            let fits = hint
                .min
                .iter()
                .chain(&hint.max)
                .all(|v| i32::try_from(*v).is_ok());
            fits.then_some(hint)
        });
        let Some(guess) = guess.or_else(|| self.bbox()) else {
            return ([0.0; 3], None);
        };
        let mut buffer = vec![0f32; CHUNK_ROWS.min(self.rows()) * 3];
        let (origin, found) = Recentring::checked(guess, 3, |recentring| {
            self.pass(|offset, xyz| {
                let out = &mut buffer[..xyz[0].len() * 3];
                let bounds = recentring.xyz_into(xyz, out);
                sink(offset * 3, out);
                bounds
            })
        });
        self.bbox.replace(found.clone());
        (origin, found)
    }
}
