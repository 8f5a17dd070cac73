//! Decoded points handed to JS: per label run, exact int64 rows and re-centred positions.

use js_sys::{BigInt64Array, BigUint64Array, Float32Array, Float64Array};
use pocaduck_edge_core::answer::Labelled;
use std::ops::Range;

use pocaduck_edge_core::cloud::BBox;
use wasm_bindgen::prelude::*;

/// Points of one or more labels, decoded in wasm memory; each accessor copies out a typed
/// array that JS owns (and may transfer). Call `free()` when done.
#[wasm_bindgen]
pub struct Decoded {
    labelled: Labelled,
}

impl Decoded {
    /// Wraps a decoded answer.
    pub fn new(labelled: Labelled) -> Self {
        Self { labelled }
    }

    fn rows(&self, run: usize) -> Result<Range<usize>, JsError> {
        self.labelled
            .runs
            .get(run)
            .map(|r| r.rows.clone())
            .ok_or_else(|| JsError::new(&format!("no run {run}")))
    }
}

#[wasm_bindgen]
impl Decoded {
    /// Values per point.
    #[wasm_bindgen(getter)]
    pub fn dims(&self) -> usize {
        self.labelled.dims
    }

    /// The label of each run, in order (a label may have no run when no point was returned).
    pub fn labels(&self) -> BigUint64Array {
        let labels: Vec<u64> = self.labelled.runs.iter().map(|r| r.label).collect();
        BigUint64Array::from(&labels[..])
    }

    /// Points in run `run`.
    pub fn count(&self, run: usize) -> Result<usize, JsError> {
        Ok(self.rows(run)?.len())
    }

    /// Run `run`'s points, `N × D` row-major, exact.
    pub fn int64(&self, run: usize) -> Result<BigInt64Array, JsError> {
        Ok(int64_array(&self.labelled.int64_pieces(self.rows(run)?)))
    }

    /// Bounds of run `run`: min then max, D int64 each; empty when there are no points.
    pub fn bbox(&self, run: usize) -> Result<BigInt64Array, JsError> {
        Ok(BigInt64Array::from(
            &flat_bbox(self.labelled.bbox(self.rows(run)?))[..],
        ))
    }

    /// Run `run` ready to render: `[positions (N × 3 float32), origin (3 float64), bbox
    /// (min then max, D int64 each; empty when there are no points)]`.
    pub fn render(&self, run: usize) -> Result<js_sys::Array, JsError> {
        let r = self.labelled.recentre(self.rows(run)?);
        Ok(js_sys::Array::of3(
            &float32_array(&r.positions),
            &Float64Array::from(&r.origin[..]),
            &BigInt64Array::from(&flat_bbox(r.bbox)[..]),
        ))
    }
}

/// A fresh JS copy of `values`. (`Float32Array::from` copies through the typed-array
/// constructor, which V8 runs about 3× slower than `set` when the source is wasm memory.)
fn float32_array(values: &[f32]) -> Float32Array {
    let array = Float32Array::new_with_length(values.len() as u32);
    array.copy_from(values);
    array
}

/// A fresh JS copy of `pieces` one after another, as [`float32_array`].
fn int64_array(pieces: &[impl AsRef<[i64]>]) -> BigInt64Array {
    let len: usize = pieces.iter().map(|p| p.as_ref().len()).sum();
    let array = BigInt64Array::new_with_length(len as u32);
    let mut offset = 0;
    for piece in pieces.iter().map(AsRef::as_ref) {
        let end = offset + piece.len() as u32;
        array.subarray(offset, end).copy_from(piece);
        offset = end;
    }
    array
}

/// A box as min then max; empty for none.
fn flat_bbox(bbox: Option<BBox>) -> Vec<i64> {
    bbox.map(|b| b.min.into_iter().chain(b.max).collect())
        .unwrap_or_default()
}
