//! Decoded points handed to JS: per label run, exact int64 rows and re-centred positions.

use js_sys::{BigInt64Array, BigUint64Array, Float32Array, Float64Array};
use pocaduck_edge_core::answer::Labelled;
use std::ops::Range;

use pocaduck_edge_core::cloud::BBox;
use wasm_bindgen::prelude::*;

use crate::js_columns::JsColumns;

/// Points of one or more labels, ready to copy out; each accessor copies out a typed
/// array that JS owns (and may transfer). Call `free()` when done.
#[wasm_bindgen]
pub struct Decoded {
    points: Points,
}

/// Where a [`Decoded`]'s points are.
enum Points {
    /// Decoded into wasm memory.
    Wasm(Labelled),
    /// A one-label columns answer, read from the caller's bytes as it is copied out.
    Js(JsColumns),
}

impl Decoded {
    /// Wraps a decoded answer.
    pub fn new(labelled: Labelled) -> Self {
        Self {
            points: Points::Wasm(labelled),
        }
    }

    /// Wraps a one-label columns answer left in JS memory.
    pub fn in_js(columns: JsColumns) -> Self {
        Self {
            points: Points::Js(columns),
        }
    }

    fn rows(&self, run: usize) -> Result<Range<usize>, JsError> {
        let rows = match &self.points {
            Points::Wasm(labelled) => labelled.runs.get(run).map(|r| r.rows.clone()),
            Points::Js(columns) => (run == 0).then(|| 0..columns.rows()),
        };
        rows.ok_or_else(|| JsError::new(&format!("no run {run}")))
    }
}

#[wasm_bindgen]
impl Decoded {
    /// Values per point.
    #[wasm_bindgen(getter)]
    pub fn dims(&self) -> usize {
        match &self.points {
            Points::Wasm(labelled) => labelled.dims,
            Points::Js(_) => 3,
        }
    }

    /// The label of each run, in order (a label may have no run when no point was returned).
    pub fn labels(&self) -> BigUint64Array {
        let labels: Vec<u64> = match &self.points {
            Points::Wasm(labelled) => labelled.runs.iter().map(|r| r.label).collect(),
            Points::Js(columns) => vec![columns.label()],
        };
        BigUint64Array::from(&labels[..])
    }

    /// Points in run `run`.
    pub fn count(&self, run: usize) -> Result<usize, JsError> {
        Ok(self.rows(run)?.len())
    }

    /// Run `run`'s points, `N × D` row-major, exact, in a new array.
    pub fn int64(&self, run: usize) -> Result<BigInt64Array, JsError> {
        let array = BigInt64Array::new_with_length((self.rows(run)?.len() * self.dims()) as u32);
        self.int64_into(run, &array)?;
        Ok(array)
    }

    /// Writes run `run`'s points, `N × D` row-major, exact, into `out` (exactly `N × D` long).
    #[wasm_bindgen(js_name = int64Into)]
    pub fn int64_into(&self, run: usize, out: &BigInt64Array) -> Result<(), JsError> {
        let rows = self.rows(run)?;
        check_length("int64", out.length(), rows.len() * self.dims())?;
        let sink = |offset: usize, values: &[i64]| {
            let offset = offset as u32;
            out.subarray(offset, offset + values.len() as u32)
                .copy_from(values)
        };
        match &self.points {
            Points::Wasm(labelled) => labelled.int64_chunked(rows, CHUNK_ROWS, sink),
            Points::Js(columns) => columns.int64_chunked(sink),
        }
        Ok(())
    }

    /// Bounds of run `run`: min then max, D int64 each; empty when there are no points.
    pub fn bbox(&self, run: usize) -> Result<BigInt64Array, JsError> {
        let rows = self.rows(run)?;
        let bbox = match &self.points {
            Points::Wasm(labelled) => labelled.bbox(rows),
            Points::Js(columns) => columns.bbox(),
        };
        Ok(BigInt64Array::from(&flat_bbox(bbox)[..]))
    }

    /// Run `run` ready to render: `[positions (N × 3 float32), origin (3 float64), bbox
    /// (min then max, D int64 each; empty when there are no points)]`.
    pub fn render(&self, run: usize) -> Result<js_sys::Array, JsError> {
        let positions = Float32Array::new_with_length((self.rows(run)?.len() * 3) as u32);
        let [origin, bbox] = self.render_parts(run, &positions)?;
        Ok(js_sys::Array::of3(&positions, &origin, &bbox))
    }

    /// Writes run `run`'s positions (N × 3 float32) into `out` (exactly `N × 3` long) and
    /// returns `[origin, bbox]` as [`Decoded::render`] does.
    #[wasm_bindgen(js_name = renderInto)]
    pub fn render_into(&self, run: usize, out: &Float32Array) -> Result<js_sys::Array, JsError> {
        let [origin, bbox] = self.render_parts(run, out)?;
        Ok(js_sys::Array::of2(&origin, &bbox))
    }
}

impl Decoded {
    fn render_parts(&self, run: usize, out: &Float32Array) -> Result<[JsValue; 2], JsError> {
        let rows = self.rows(run)?;
        check_length("positions", out.length(), rows.len() * 3)?;
        let sink = |offset: usize, values: &[f32]| {
            let offset = offset as u32;
            out.subarray(offset, offset + values.len() as u32)
                .copy_from(values)
        };
        let (origin, bbox) = match &self.points {
            Points::Wasm(labelled) => {
                let hint = labelled.runs[run].bbox_hint.as_ref();
                labelled.recentre_chunked(rows, hint, CHUNK_ROWS, sink)
            }
            Points::Js(columns) => columns.recentre_chunked(sink),
        };
        Ok([
            Float64Array::from(&origin[..]).into(),
            BigInt64Array::from(&flat_bbox(bbox)[..]).into(),
        ])
    }
}

/// A target array must be exactly the output's length: the JS half cuts it to size.
fn check_length(what: &str, have: u32, needed: usize) -> Result<(), JsError> {
    if have as usize == needed {
        Ok(())
    } else {
        Err(JsError::new(&format!(
            "{what} target holds {have} values; the run needs {needed}"
        )))
    }
}

/// Rows decoded into wasm memory at a time on their way into a JS array: the outputs are
/// filled chunk by chunk from one small buffer that stays in cache, with no wasm copy of
/// the whole output. (Each chunk goes out through `TypedArray.prototype.set`, which V8 runs
/// about 3× faster than the typed-array constructor when the source is wasm memory.)
pub(crate) const CHUNK_ROWS: usize = 16 << 10;

/// A box as min then max; empty for none.
fn flat_bbox(bbox: Option<BBox>) -> Vec<i64> {
    bbox.map(|b| b.min.into_iter().chain(b.max).collect())
        .unwrap_or_default()
}
