//! Serverless reads of an edge-layout dataset, sans IO: the JS half fetches the byte ranges
//! this reader asks for (manifest once, then per load an index page and the coalesced data
//! ranges, which the index entries locate; beside the data, once, the footer of each file
//! read) and hands the bytes back for decoding.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::metadata::ParquetMetaData;
use pocaduck_edge_core::answer::{LabelRun, Labelled, Storage};
use pocaduck_edge_core::cloud::{interleave, BBox, Column};
use pocaduck_edge_core::index::{IndexEntry, IndexPage};
use pocaduck_edge_core::manifest::DataFile;
use pocaduck_edge_core::plan::{merge_ranges, plan_blocks, plan_label, Chunk, COALESCE_GAP};
use pocaduck_edge_core::read::{decode_blocks, decode_columns, parse_footer, SparseFile};
use pocaduck_edge_core::{parse_label, Manifest, PointCloud};
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
struct PointsPlan {
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
    fn footer(&self, file: u32) -> Result<&Arc<ParquetMetaData>, JsError> {
        self.footers
            .get(file as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| JsError::new(&format!("the footer of file {file} is not loaded")))
    }

    /// The entry of `label`: `Ok(None)` when no page can hold it or its page lacks it, an
    /// error when its page is not loaded yet.
    fn find(&self, label: u64) -> Result<Option<&IndexEntry>, JsError> {
        let Some((i, _)) = self.manifest.page_for(label) else {
            return Ok(None);
        };
        let page = self
            .pages
            .get(&i)
            .ok_or_else(|| JsError::new(&format!("index page {i} is not loaded")))?;
        Ok(page.find(label))
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
        let data = if file == BLOCKS_FILE {
            self.manifest.blocks.as_ref()
        } else {
            u32::try_from(file).ok().and_then(|i| self.manifest.file(i))
        }
        .ok_or_else(|| JsError::new(&format!("the manifest has no file {file}")))?;
        let meta = parse_footer(&data.path, bytes)?;
        if file == BLOCKS_FILE {
            self.blocks_footer = Some(meta);
            return Ok(());
        }
        let columns = meta.file_metadata().schema_descr().num_columns();
        if columns != self.manifest.dims() + 1 {
            return Err(JsError::new(&format!(
                "{} has {columns} columns, expected a label and {} dims",
                data.path,
                self.manifest.dims()
            )));
        }
        self.footers[file as usize] = Some(meta);
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
        let reference = self
            .manifest
            .label_index
            .pages
            .get(page)
            .ok_or_else(|| JsError::new(&format!("the index has no page {page}")))?;
        let decoded = IndexPage::decode(bytes)?;
        let (first, last) = (decoded.entries.first(), decoded.entries.last());
        if first.map(|e| e.label) != Some(reference.first_label)
            || last.map(|e| e.label) != Some(reference.last_label)
        {
            return Err(JsError::new(&format!(
                "index page {page} does not hold the labels the manifest says"
            )));
        }
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
        let mut i = after.map_or(0, |a| pages.partition_point(|p| p.last_label <= a));
        let mut labels = Vec::new();
        while labels.len() < limit && i < pages.len() {
            let Some(page) = self.pages.get(&i) else {
                return to_js(&Step::NeedPage(self.page_request(i)));
            };
            labels.extend(
                page.entries
                    .iter()
                    .map(|e| e.label)
                    .filter(|l| after.is_none_or(|a| *l > a))
                    .take(limit - labels.len()),
            );
            i += 1;
        }
        // As the server: a full page names its last label as the next `after`.
        let next_after = (labels.len() == limit)
            .then(|| labels.last().map(u64::to_string))
            .flatten();
        to_js(&Step::Labels {
            labels: labels.iter().map(u64::to_string).collect(),
            next_after,
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
        let mut by_file: HashMap<u32, Vec<std::ops::Range<u64>>> = HashMap::new();
        for text in &labels {
            let entry = self.manifest.entry_for_limit(self.entry(text)?, limit);
            by_file
                .entry(entry.file)
                .or_default()
                .push(entry.bytes.offset..entry.bytes.end());
        }
        let mut files: Vec<_> = by_file.into_iter().collect();
        files.sort_unstable_by_key(|(f, _)| *f);
        let mut requests = Vec::new();
        let mut footers = Vec::new();
        for (file, ranges) in files {
            let data = self.points_file(file)?;
            requests.extend(
                merge_ranges(&ranges, COALESCE_GAP)
                    .into_iter()
                    .map(|r| Request {
                        file: Some(file as i32),
                        page: None,
                        path: data.path.clone(),
                        start: r.start,
                        end: r.end,
                    }),
            );
            footers.extend(self.footer_request(file as i32)?);
        }
        let bytes = requests.iter().map(|r| r.end - r.start).sum();
        to_js(&PointsPlan {
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
    /// gets a run, empty when nothing is kept.
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
                let k = b.len() / 2;
                if b.len() % 2 != 0 || k == 0 || k > self.manifest.dims() {
                    return Err(JsError::new(
                        "bbox must be min then max of 1 to D leading dims",
                    ));
                }
                Ok(BBox {
                    min: b[..k].to_vec(),
                    max: b[k..].to_vec(),
                })
            })
            .transpose()?;
        let mut sparse: HashMap<u32, SparseFile> = HashMap::new();
        for ((file, start), part) in files.iter().zip(&starts).zip(&parts) {
            let size = self.points_file(*file)?.size;
            sparse
                .entry(*file)
                .or_insert_with(|| SparseFile::new(size))
                .insert(*start, Bytes::from(part.to_vec()));
        }
        let dims = self.manifest.dims();
        // Whole labels stay in columns, as stored; a selection goes through rows.
        let select = limit.is_some() || bbox.is_some();
        let mut pieces: Vec<Vec<Column>> = Vec::new();
        let mut values = Vec::new();
        let mut rows = 0usize;
        let mut runs = Vec::with_capacity(labels.len());
        for text in &labels {
            // A level of detail of a big label reads its coarse level when that suffices.
            let entry = self.manifest.entry_for_limit(self.entry(text)?, limit);
            let meta = self.footer(entry.file)?;
            let path = &self.points_file(entry.file)?.path;
            let file = sparse.get(&entry.file).cloned().unwrap_or_default();
            let first_row = rows;
            let mut rank = 0;
            for Chunk { rows: span, .. } in plan_label(&entry, meta, u64::MAX)? {
                let taken = span.take;
                let piece = decode_columns(path, meta, file.clone(), &span, 1..dims + 1)?;
                if select {
                    let mut cloud = PointCloud::new(dims, interleave(&piece, 0..taken as usize))?;
                    if let Some(limit) = limit {
                        cloud = cloud.spread_sample(rank, entry.point_count, limit);
                    }
                    if let Some(b) = &bbox {
                        cloud.retain(|p| b.contains(p));
                    }
                    rows += cloud.len();
                    values.extend_from_slice(cloud.values());
                } else {
                    rows += taken as usize;
                    pieces.push(piece);
                }
                rank += taken;
            }
            runs.push(LabelRun {
                label: entry.label,
                rows: first_row..rows,
                // A whole label's bounds are its entry's.
                bbox_hint: (!select).then(|| entry.bbox.clone()),
            });
        }
        // Only whole labels fill `pieces`; a selection filled `values`.
        let points = if select {
            Storage::Rows(vec![values.into()])
        } else {
            Storage::Columns(pieces)
        };
        Ok(Decoded::new(Labelled { dims, points, runs }))
    }

    /// The blocks range of a label whose page is loaded: `{path, start, end}`, or
    /// `undefined` when it has no blocks.
    #[wasm_bindgen(js_name = planBlocks)]
    pub fn plan_blocks(&self, label_text: &str) -> Result<JsValue, JsError> {
        let entry = self.entry(label_text)?;
        let (Some(file), Some(meta)) = (&self.manifest.blocks, &self.blocks_footer) else {
            return Ok(JsValue::UNDEFINED);
        };
        match plan_blocks(entry, meta)? {
            Some((range, _)) => to_js(&Request {
                file: Some(BLOCKS_FILE),
                page: None,
                path: file.path.clone(),
                start: range.offset,
                end: range.end(),
            }),
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
        let entry = self.entry(label_text)?;
        let (Some(file), Some(meta)) = (&self.manifest.blocks, &self.blocks_footer) else {
            return to_js(&Vec::<Block>::new());
        };
        let Some((range, rows)) = plan_blocks(entry, meta)? else {
            return to_js(&Vec::<Block>::new());
        };
        let mut sparse = SparseFile::new(file.size);
        sparse.insert(range.offset, Bytes::from(bytes));
        let blocks: Vec<Block> = decode_blocks(&file.path, meta, sparse, &rows)?
            .into_iter()
            .map(|(block_id, point_count)| Block {
                block_id,
                point_count,
            })
            .collect();
        to_js(&blocks)
    }
}
