//! The npm package's VastDB pass-through module, a WebAssembly module of its own that only
//! clients reading pass-through load: a server's `…/vastdb-reply` pages, VastDB's own reply
//! bytes, de-framed by `pocaduck-edge-vastdb` into the rows of each label, in the order and
//! with the selection every other path gives. The JS half fetches page after page, resuming
//! where the rounds of the one before ended, and hands the rows to the main module.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use js_sys::{BigInt64Array, BigUint64Array, Uint32Array};
use pocaduck_edge_core::point_table::{columnar_cloud, described, pocaduck_cloud, Layout};
use pocaduck_edge_core::reader::selection::leading_bbox;
use pocaduck_edge_core::reader::Selection;
use pocaduck_edge_core::{parse_label, PointCloud};
use pocaduck_edge_vastdb::deframe::Limits;
use pocaduck_edge_vastdb::reply::parse_columns;
use pocaduck_edge_vastdb::{Event, Progress, QuerySettings, ReplyDecoder};
use wasm_bindgen::prelude::*;

/// The most sub-splits a page may name: a server's header, bounded before a resume point
/// is made for each.
const MAX_SUB_SPLITS: u32 = 1024;

/// Labels' points read from VastDB reply pages, label after label: `beginLabel`, then for
/// each page `beginPage`, `push` its bytes as they arrive and `endPage` (which names where
/// the next page resumes, or `undefined` when the label is complete); then `finish`.
#[wasm_bindgen]
#[derive(Default)]
pub struct VastReplies {
    done: Vec<(u64, PointCloud)>,
    current: Option<LabelReply>,
}

/// The label being read.
struct LabelReply {
    label: u64,
    progress: Option<Progress>,
    page: Option<Page>,
    batches: Vec<RecordBatch>,
    shape: Option<(Layout, usize)>,
}

/// The page being read.
struct Page {
    decoder: ReplyDecoder,
    events: Vec<Event>,
}

fn error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl VastReplies {
    /// No labels yet.
    #[wasm_bindgen(constructor)]
    pub fn new() -> VastReplies {
        VastReplies::default()
    }

    /// Starts reading `label` (a decimal string).
    #[wasm_bindgen(js_name = beginLabel)]
    pub fn begin_label(&mut self, label: &str) -> Result<(), JsError> {
        if self.current.is_some() {
            return Err(error("the label before is not complete"));
        }
        self.current = Some(LabelReply {
            label: parse_label(label).map_err(error)?,
            progress: None,
            page: None,
            batches: Vec::new(),
            shape: None,
        });
        Ok(())
    }

    /// Starts a page: `schema` is its `pocaduck-reply-schema` header, base64-decoded (an
    /// Arrow IPC stream of the reply's columns), `sub_splits` its
    /// `pocaduck-reply-sub-splits`.
    #[wasm_bindgen(js_name = beginPage)]
    pub fn begin_page(&mut self, schema: &[u8], sub_splits: u32) -> Result<(), JsError> {
        let current = self.current_mut()?;
        if !(1..=MAX_SUB_SPLITS).contains(&sub_splits) {
            return Err(error(format!(
                "a page of {sub_splits} sub-splits (from 1 to {MAX_SUB_SPLITS} are read)"
            )));
        }
        let schema: SchemaRef = parse_columns(schema)
            .map(Arc::new)
            .map_err(|e| error(format!("the reply's schema header: {e}")))?;
        let shape = described(&schema).map_err(error)?;
        if current.shape.is_some_and(|s| s != shape) {
            return Err(error("a page's columns differ from the first page's"));
        }
        current.shape = Some(shape);
        let settings = QuerySettings {
            num_sub_splits: sub_splits,
            ..QuerySettings::default()
        };
        let progress = current
            .progress
            .get_or_insert_with(|| Progress::new(&settings));
        if progress.resume().len() != sub_splits as usize {
            return Err(error("a page's sub-splits differ from the first page's"));
        }
        progress.begin_reply();
        current.page = Some(Page {
            decoder: ReplyDecoder::new(schema, sub_splits, Limits::default()).map_err(error)?,
            events: Vec::new(),
        });
        Ok(())
    }

    /// Takes the page's next bytes, cut anywhere.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let current = self.current_mut()?;
        let page = current
            .page
            .as_mut()
            .ok_or_else(|| error("no page begun"))?;
        page.decoder.push(bytes, &mut page.events).map_err(error)?;
        let progress = current.progress.as_mut().expect("a page has progress");
        for event in page.events.drain(..) {
            progress.observe(&event).map_err(error)?;
            if let Event::Batch { batch, .. } = event {
                current.batches.push(batch);
            }
        }
        Ok(())
    }

    /// Ends the page: the `resume` of the next page, or `undefined` when the label is
    /// complete. A reply that stopped short, or pages that stop moving the query on, are
    /// errors.
    #[wasm_bindgen(js_name = endPage)]
    pub fn end_page(&mut self) -> Result<Option<String>, JsError> {
        let current = self.current_mut()?;
        let page = current.page.take().ok_or_else(|| error("no page begun"))?;
        page.decoder.finish().map_err(error)?;
        let progress = current.progress.as_mut().expect("a page has progress");
        progress.end_reply().map_err(error)?;
        if !progress.is_done() {
            return Ok(Some(progress.resume_text()));
        }
        let current = self.current.take().expect("checked above");
        let (layout, dims) = current.shape.expect("a page has a shape");
        let mut cloud = match layout {
            Layout::Columnar => columnar_cloud(&current.batches, dims).map_err(error)?.0,
            Layout::Pocaduck => pocaduck_cloud(&current.batches, dims).map_err(error)?,
        };
        cloud.sort_unique();
        self.done.push((current.label, cloud));
        Ok(None)
    }

    /// The labels read, in order, as rows: `limit` keeps that many points per label
    /// spread evenly over its order, then `bbox` (min then max of the first dims,
    /// inclusive) filters, as the server does. Frees this reader.
    pub fn finish(self, limit: Option<u64>, bbox: Option<Vec<i64>>) -> Result<Rows, JsError> {
        if self.current.is_some() {
            return Err(error("a label is not complete"));
        }
        let dims = self.done.first().map_or(3, |(_, c)| c.dims());
        if self.done.iter().any(|(_, c)| c.dims() != dims) {
            return Err(error("the labels' points differ in dims"));
        }
        let bbox = bbox
            .map(|b| {
                leading_bbox(&b, dims)
                    .ok_or_else(|| error("bbox must be min then max of 1 to D leading dims"))
            })
            .transpose()?;
        let selection = Selection { limit, bbox };
        let mut rows = Rows {
            dims,
            labels: Vec::new(),
            counts: Vec::new(),
            values: Vec::new(),
        };
        for (label, cloud) in self.done {
            let count = cloud.len() as u64;
            let cloud = selection.apply(0, count, cloud);
            rows.labels.push(label);
            rows.counts.push(cloud.len() as u32);
            rows.values.extend_from_slice(cloud.values());
        }
        Ok(rows)
    }

    fn current_mut(&mut self) -> Result<&mut LabelReply, JsError> {
        self.current.as_mut().ok_or_else(|| error("no label begun"))
    }
}

/// Labels' rows: `counts[i]` rows of `dims` values for `labels[i]`, one label after
/// another in `values` (for the main module's `decodeRows`).
#[wasm_bindgen]
pub struct Rows {
    dims: usize,
    labels: Vec<u64>,
    counts: Vec<u32>,
    values: Vec<i64>,
}

#[wasm_bindgen]
impl Rows {
    /// Values per point.
    #[wasm_bindgen(getter)]
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The labels, in order.
    #[wasm_bindgen(getter)]
    pub fn labels(&self) -> BigUint64Array {
        BigUint64Array::from(self.labels.as_slice())
    }

    /// Each label's number of points.
    #[wasm_bindgen(getter)]
    pub fn counts(&self) -> Uint32Array {
        Uint32Array::from(self.counts.as_slice())
    }

    /// Every label's points, `N × dims` row-major.
    #[wasm_bindgen(getter)]
    pub fn values(&self) -> BigInt64Array {
        BigInt64Array::from(self.values.as_slice())
    }
}
