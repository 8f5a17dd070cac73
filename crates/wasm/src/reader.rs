//! Serverless reads of an edge-layout dataset, sans IO: the JS half fetches the byte ranges
//! this reader asks for (manifest once, then per load an index page and the coalesced data
//! ranges, which the index entries locate; beside the data, once, the footer of each file
//! read) and hands the bytes back for decoding.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::metadata::ParquetMetaData;
use pocaduck_edge_core::index::{IndexEntry, IndexPage};
use pocaduck_edge_core::integrity::check_row_groups;
use pocaduck_edge_core::manifest::DataFile;
use pocaduck_edge_core::reader::labels::{decode_page, labels_after, lookup};
use pocaduck_edge_core::reader::points::{fetched_files, points_footer};
use pocaduck_edge_core::reader::selection::leading_bbox;
use pocaduck_edge_core::reader::{
    blocks_footer, BlocksPlan, LabelsStep, Lookup, NextAfter, PointsPlan, Selection,
};
use pocaduck_edge_core::{parse_label, Manifest};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::decoded::Decoded;

/// Index pages kept per reader (16 KB each).
const PAGE_CACHE: usize = 1024;
/// `file` of the blocks file in a [`Request`].
const BLOCKS_FILE: i32 = -1;

/// A byte range the JS half must fetch.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    /// Which file: an index into the manifest's `files`, or -1 for the blocks file (footers).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<i32>,
    /// Which index page (page requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<usize>,
    /// The file's path relative to the dataset folder.
    path: String,
    /// First byte.
    start: u64,
    /// One past the last byte.
    end: u64,
}

/// What a label's index entry says, for JS.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryInfo {
    point_count: u64,
}

/// The plan of one points load.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadPlan {
    /// Coalesced ranges to fetch, at most one per file for a single label.
    requests: Vec<Request>,
    /// Footers of those files, not loaded yet.
    footers: Vec<Request>,
    /// The size of `requests`.
    bytes: u64,
}

/// A dataset's manifest, and the footers and index pages fetched so far.
#[wasm_bindgen]
pub struct EdgeReader {
    manifest: Manifest,
    footers: Vec<Option<Arc<ParquetMetaData>>>,
    blocks_footer: Option<Arc<ParquetMetaData>>,
    pages: HashMap<usize, IndexPage>,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

fn label(text: &str) -> Result<u64, JsError> {
    Ok(parse_label(text)?)
}

impl EdgeReader {
    /// The footer of points file `file`, when loaded.
    fn footer(&self, file: u32) -> Option<&ParquetMetaData> {
        self.footers.get(file as usize)?.as_deref()
    }

    /// The entry of `label`: `Ok(None)` when no page can hold it or its page lacks it, an
    /// error when its page is not loaded yet.
    fn find(&self, label: u64) -> Result<Option<&IndexEntry>, JsError> {
        match lookup(&self.manifest, label, |i| self.pages.get(&i)) {
            Lookup::Found(entry) => Ok(Some(entry)),
            Lookup::Absent => Ok(None),
            Lookup::NeedPage(i) => Err(JsError::new(&format!("index page {i} is not loaded"))),
        }
    }

    fn points_file(&self, file: u32) -> Result<&DataFile, JsError> {
        self.manifest
            .file(file)
            .ok_or_else(|| JsError::new(&format!("the manifest has no file {file}")))
    }

    fn entry(&self, text: &str) -> Result<&IndexEntry, JsError> {
        let l = label(text)?;
        self.find(l)?
            .ok_or_else(|| JsError::new(&format!("label {l} is not in the dataset")))
    }

    /// The points plan of `labels` (their pages loaded) for `selection`.
    fn plan(&self, labels: &[String], selection: Selection) -> Result<PointsPlan, JsError> {
        let entries = labels
            .iter()
            .map(|text| self.entry(text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PointsPlan::new(&self.manifest, entries, selection))
    }

    /// The footer range of `file` (-1: the blocks file), `None` when it is loaded or the
    /// dataset has no blocks file.
    fn footer_request(&self, file: i32) -> Result<Option<Request>, JsError> {
        let (loaded, data) = if file == BLOCKS_FILE {
            (self.blocks_footer.is_some(), self.manifest.blocks.as_ref())
        } else {
            let i = u32::try_from(file)
                .map_err(|_| JsError::new(&format!("the manifest has no file {file}")))?;
            let data = self.points_file(i)?;
            (self.footers[i as usize].is_some(), Some(data))
        };
        Ok(data
            .filter(|_| !loaded)
            .and_then(|f| f.footer.map(|r| (f, r)))
            .map(|(f, r)| Request {
                file: Some(file),
                page: None,
                path: f.path.clone(),
                start: r.offset,
                end: r.end(),
            }))
    }

    /// The blocks read of a label whose page is loaded, `None` when it has none.
    fn blocks_plan(&self, label_text: &str) -> Result<Option<BlocksPlan<'_>>, JsError> {
        let entry = self.entry(label_text)?;
        Ok(BlocksPlan::new(
            &self.manifest,
            self.blocks_footer.as_ref(),
            entry,
        )?)
    }

    fn page_request(&self, i: usize) -> Request {
        let r = self.manifest.label_index.pages[i].range;
        Request {
            file: None,
            page: Some(i),
            path: self.manifest.label_index.file.path.clone(),
            start: r.offset,
            end: r.end(),
        }
    }
}

#[wasm_bindgen]
impl EdgeReader {
    /// A reader of the dataset whose `manifest.json` is `manifest`.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest: &[u8]) -> Result<EdgeReader, JsError> {
        let manifest = Manifest::from_json(manifest)?;
        Ok(Self {
            footers: vec![None; manifest.points_files().count()],
            manifest,
            blocks_footer: None,
            pages: HashMap::new(),
        })
    }

    /// The manifest, as JSON text.
    pub fn manifest(&self) -> String {
        String::from_utf8(self.manifest.to_json()).expect("serde_json writes UTF-8")
    }

    /// The footer range of `file` (-1: the blocks file) when it is not loaded yet:
    /// `{file, path, start, end}`; `null` when it is loaded or the dataset has no such
    /// file (no blocks file).
    #[wasm_bindgen(js_name = footerFor)]
    pub fn footer_for(&self, file: i32) -> Result<JsValue, JsError> {
        match self.footer_request(file)? {
            Some(request) => to_js(&request),
            None => Ok(JsValue::NULL),
        }
    }

    /// Keeps the footer of `file` (-1: the blocks file), checking it.
    #[wasm_bindgen(js_name = setFooter)]
    pub fn set_footer(&mut self, file: i32, bytes: &[u8]) -> Result<(), JsError> {
        let no_file = || JsError::new(&format!("the manifest has no file {file}"));
        if file == BLOCKS_FILE {
            self.manifest.blocks.as_ref().ok_or_else(no_file)?;
            self.blocks_footer = Some(blocks_footer(&self.manifest, bytes)?);
            return Ok(());
        }
        let i = u32::try_from(file)
            .ok()
            .filter(|&i| (i as usize) < self.footers.len())
            .ok_or_else(no_file)?;
        self.footers[i as usize] = Some(points_footer(&self.manifest, i, bytes)?);
        Ok(())
    }

    /// The index page that would hold `label`: `{page, path, start, end}`, `null` when it
    /// is already loaded, `undefined` when no page can hold the label (it is not in the
    /// dataset).
    #[wasm_bindgen(js_name = pageFor)]
    pub fn page_for(&self, label_text: &str) -> Result<JsValue, JsError> {
        let Some((i, _)) = self.manifest.page_for(label(label_text)?) else {
            return Ok(JsValue::UNDEFINED);
        };
        if self.pages.contains_key(&i) {
            return Ok(JsValue::NULL);
        }
        to_js(&self.page_request(i))
    }

    /// Keeps index page `page`, checking it.
    #[wasm_bindgen(js_name = setPage)]
    pub fn set_page(&mut self, page: usize, bytes: &[u8]) -> Result<(), JsError> {
        let decoded = decode_page(&self.manifest, page, bytes)?;
        if self.pages.len() >= PAGE_CACHE {
            self.pages.clear();
        }
        self.pages.insert(page, decoded);
        Ok(())
    }

    /// Up to `limit` labels greater than `after` (a decimal string, or none): `{labels,
    /// nextAfter}` when the pages needed are loaded, else `{needPage: {page, path, start,
    /// end}}` to fetch, `setPage` and ask again.
    #[wasm_bindgen(js_name = labelsAfter)]
    pub fn labels_after(&self, after: Option<String>, limit: usize) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        enum Step {
            Labels {
                labels: Vec<String>,
                #[serde(rename = "nextAfter")]
                next_after: Option<String>,
            },
            NeedPage(Request),
        }
        let after = after.as_deref().map(label).transpose()?;
        let pages = &self.manifest.label_index.pages;
        // As the server: a full page names its last label as the next `after`.
        let step = labels_after(pages, after, limit, NextAfter::WhenFull, |i| {
            self.pages.get(&i)
        });
        to_js(&match step {
            LabelsStep::NeedPage(i) => Step::NeedPage(self.page_request(i)),
            LabelsStep::Labels(page) => Step::Labels {
                labels: page.labels.iter().map(u64::to_string).collect(),
                next_after: page.next_after.map(|l| l.to_string()),
            },
        })
    }

    /// `{pointCount}` of a label whose page is loaded; `undefined` when the dataset
    /// does not hold it.
    #[wasm_bindgen(js_name = entryInfo)]
    pub fn entry_info(&self, label_text: &str) -> Result<JsValue, JsError> {
        match self.find(label(label_text)?)? {
            Some(e) => to_js(&EntryInfo {
                point_count: e.point_count,
            }),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// The data ranges to fetch for `labels` (pages loaded) and `limit` points of each,
    /// from their index entries alone: `{requests: [{file, path, start, end}], footers,
    /// bytes}`, ranges merged per file; `footers` are the footer ranges of those files not
    /// loaded yet, to fetch alongside (`setFooter`) before `decodePoints`; `bytes` is the
    /// size of `requests`.
    #[wasm_bindgen(js_name = planPoints)]
    pub fn plan_points(&self, labels: Vec<String>, limit: Option<u64>) -> Result<JsValue, JsError> {
        let plan = self.plan(&labels, Selection { limit, bbox: None })?;
        let mut requests = Vec::new();
        let mut footers = Vec::new();
        for ranges in plan.ranges() {
            let path = &self.points_file(ranges.file)?.path;
            requests.extend(ranges.ranges.into_iter().map(|r| Request {
                file: Some(ranges.file as i32),
                page: None,
                path: path.clone(),
                start: r.start,
                end: r.end,
            }));
            footers.extend(self.footer_request(ranges.file as i32)?);
        }
        let bytes = requests.iter().map(|r| r.end - r.start).sum();
        to_js(&LoadPlan {
            requests,
            footers,
            bytes,
        })
    }

    /// Decodes `labels` from the fetched ranges: `files[i]` (a points file's number),
    /// `starts[i]` and `parts[i]` (the bytes) describe each range of `planPoints`, which
    /// was given the same `limit`. `limit` keeps that many points per label spread evenly
    /// over its order (or its coarse level's, as the server does), then `bbox`
    /// (min then max of the first dims, inclusive) filters, as the server does. Every label
    /// gets a run, empty when nothing is kept. Each whole row group in a range is checked
    /// against the hash its file's footer records first.
    #[wasm_bindgen(js_name = decodePoints)]
    pub fn decode_points(
        &self,
        labels: Vec<String>,
        files: Vec<u32>,
        starts: Vec<u64>,
        parts: Vec<js_sys::Uint8Array>,
        limit: Option<u64>,
        bbox: Option<Vec<i64>>,
    ) -> Result<Decoded, JsError> {
        if files.len() != parts.len() || starts.len() != parts.len() {
            return Err(JsError::new("files, starts and parts differ in length"));
        }
        let bbox = bbox
            .map(|b| {
                leading_bbox(&b, self.manifest.dims())
                    .ok_or_else(|| JsError::new("bbox must be min then max of 1 to D leading dims"))
            })
            .transpose()?;
        let plan = self.plan(&labels, Selection { limit, bbox })?;
        let parts = files
            .iter()
            .zip(&starts)
            .zip(&parts)
            .map(|((file, start), part)| (*file, *start, Bytes::from(part.to_vec())))
            .collect::<Vec<_>>();
        for (file, start, bytes) in &parts {
            if let (Some(meta), Some(data)) = (self.footer(*file), self.manifest.file(*file)) {
                check_row_groups(&data.path, meta, *start, bytes)?;
            }
        }
        let sparse = fetched_files(&self.manifest, parts)?;
        let labelled = plan.decode(&self.manifest, |f| self.footer(f), &sparse)?;
        Ok(Decoded::new(labelled))
    }

    /// The blocks range of a label whose page is loaded: `{path, start, end}`, or
    /// `undefined` when it has no blocks.
    #[wasm_bindgen(js_name = planBlocks)]
    pub fn plan_blocks(&self, label_text: &str) -> Result<JsValue, JsError> {
        match self.blocks_plan(label_text)? {
            Some(plan) => {
                let range = plan.range();
                to_js(&Request {
                    file: Some(BLOCKS_FILE),
                    page: None,
                    path: plan.path().to_string(),
                    start: range.start,
                    end: range.end,
                })
            }
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Decodes a label's blocks from the range `planBlocks` named: `[{blockId, pointCount}]`.
    #[wasm_bindgen(js_name = decodeBlocks)]
    pub fn decode_blocks(&self, label_text: &str, bytes: Vec<u8>) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Block {
            block_id: String,
            point_count: u64,
        }
        let blocks: Vec<Block> = match self.blocks_plan(label_text)? {
            Some(plan) => plan
                .decode(Bytes::from(bytes))?
                .into_iter()
                .map(|(block_id, point_count)| Block {
                    block_id,
                    point_count,
                })
                .collect(),
            None => Vec::new(),
        };
        to_js(&blocks)
    }
}
