//! Every dataset as a neuroglancer precomputed annotation source
//! ([docs/neuroglancer.md](../../../../docs/neuroglancer.md)), under `…/neuroglancer/`: its
//! `info`, the relationship index `segment/{label}` (a label's points, streamed from the
//! edge layout), the annotation id index `by_id/{id}` and the spatial index
//! `spatial/{level}/{x}_{y}_{z}`, the bytes made by core's `neuroglancer` module. Keys are
//! unsharded: one request per key.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use pocaduck_edge_core::cloud::BBox;
use pocaduck_edge_core::index::IndexEntry;
use pocaduck_edge_core::neuroglancer::{self as ng, LabelExtent, SpatialIndex};
use pocaduck_edge_core::reader::{label_pieces, Piece};
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_read::{Dataset, Loaded, ReadError, Timing, VastSource};
use serde_json::json;

use super::edge::{fetch_groups, streamed_bytes, EdgePieces, PIECE_BYTES};
use super::respond::{header_value, json_response, set_timing, streamed};
use super::{Answer, Service};
use crate::body::Body;
use crate::budget::Held;
use crate::error::ApiError;
use crate::files::none_match;
use crate::request::label as label_param;

/// The content type of the binary keys.
const BINARY: &str = "application/octet-stream";
/// Ids per chunk of a streamed list's ids (1 MiB).
const IDS_PER_CHUNK: u64 = 1 << 17;
/// The bytes of the budget an answer held whole takes before its points arrive; it takes
/// more as they do.
const START_BYTES: u64 = 4 << 20;
/// The version of the encoding in ETags: how keys are encoded is part of what they name.
const ETAG_VERSION: &str = "ng1";

/// A key of the source, under `…/neuroglancer/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key<'a> {
    /// `info`
    Info,
    /// `segment/{label}`
    Segment(u64),
    /// `by_id/{id}`
    ById(u64),
    /// `spatial/{level}/{cell}`, the cell still as text (its dims are the dataset's).
    Spatial(u64, &'a str),
}

/// The key at `key`: 404 for a path that is no key, 400 for a malformed label, id, level
/// or cell.
fn parse_key(key: &str) -> Result<Key<'_>, ApiError> {
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        ["info"] => Ok(Key::Info),
        ["segment", label] => Ok(Key::Segment(label_param(label)?)),
        ["by_id", id] => Ok(Key::ById(decimal(id, "annotation id")?)),
        ["spatial", level, cell] => Ok(Key::Spatial(decimal(level, "spatial level")?, cell)),
        _ => Err(ApiError::not_found(format!(
            "no key {key:?} in a neuroglancer source"
        ))),
    }
}

/// A `u64` in decimal digits, else 400 naming `what`.
fn decimal(text: &str, what: &str) -> Result<u64, ApiError> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
        .ok_or_else(|| ApiError::bad_request(format!("{what} {text:?} is not a u64 in decimal")))
}

/// A dataset as the source reads it.
pub(super) enum NgDataset<'a> {
    /// An edge-layout dataset.
    Edge(&'a Arc<Dataset>),
    /// A VastDB table.
    Vast(&'a Arc<VastSource>),
}

/// A label of the source: its extent and, from the edge layout, its index entry.
struct LabelRow {
    label: u64,
    extent: LabelExtent,
    entry: Option<IndexEntry>,
}

/// What `info` and the spatial index need of a dataset: its dims, and its labels ascending
/// (a label's ordinal is its place).
struct Extents {
    dims: Vec<String>,
    voxel_size_nm: Option<Vec<f64>>,
    labels: Vec<LabelRow>,
    /// The spatial index planned over the labels.
    index: SpatialIndex,
}

impl Extents {
    /// The extents of labels (ascending) whose points lie in `bbox`.
    fn new(
        dims: Vec<String>,
        voxel_size_nm: Option<Vec<f64>>,
        bbox: Option<&BBox>,
        labels: Vec<LabelRow>,
    ) -> Self {
        let extents: Vec<LabelExtent> = labels.iter().map(|r| r.extent.clone()).collect();
        let index = SpatialIndex::plan(dims.len(), bbox, &extents);
        Self {
            dims,
            voxel_size_nm,
            labels,
            index,
        }
    }
}

/// What a dataset's extents were read from: an edge-layout manifest (by its hash), or the
/// list of labels a VastDB table's source held.
enum Version {
    Manifest(String),
    Labels(Arc<Vec<u64>>),
}

impl Version {
    fn same(&self, other: &Version) -> bool {
        match (self, other) {
            (Version::Manifest(a), Version::Manifest(b)) => a == b,
            (Version::Labels(a), Version::Labels(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The extents of the datasets, each read once per version (a manifest, or a VastDB
/// table's list of labels, read again after its time to live).
#[derive(Default)]
pub(super) struct ExtentsCache {
    datasets: Mutex<Vec<(String, Version, Arc<Extents>)>>,
}

impl ExtentsCache {
    fn get(&self, name: &str, version: &Version) -> Option<Arc<Extents>> {
        let datasets = self.datasets.lock().expect("extents lock");
        datasets
            .iter()
            .find(|(n, v, _)| n == name && v.same(version))
            .map(|(.., extents)| extents.clone())
    }

    fn put(&self, name: &str, version: Version, extents: Arc<Extents>) {
        let mut datasets = self.datasets.lock().expect("extents lock");
        datasets.retain(|(n, ..)| n != name);
        datasets.push((name.to_string(), version, extents));
    }
}

impl Service {
    /// `GET …/neuroglancer/{key}`: a key of the dataset's annotation source.
    pub(super) async fn neuroglancer(
        &self,
        ds: NgDataset<'_>,
        key: &str,
        headers: &HeaderMap,
    ) -> Answer {
        let key = parse_key(key)?;
        match ds {
            NgDataset::Edge(d) => {
                let l = d.loaded(self.clock.as_ref()).await?;
                // The manifest's hash names every file of the dataset, so every key.
                let etag = format!("{ETAG_VERSION}-{}", l.manifest_etag);
                let asked = headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok());
                let mut r = if none_match(asked, &etag) {
                    let mut r = Response::new(Body::Empty);
                    *r.status_mut() = StatusCode::NOT_MODIFIED;
                    r
                } else {
                    match key {
                        Key::Info => {
                            let mut timing = Timing::default();
                            let extents = self.edge_extents(d, &l, &mut timing).await?;
                            let mut r = self.ng_info(&extents);
                            set_timing(&mut r, &timing);
                            r
                        }
                        Key::Segment(label) => self.edge_segment(d, l, label).await?,
                        Key::ById(id) => self.edge_by_id(d, l, id).await?,
                        Key::Spatial(level, cell) => {
                            let extents = self.edge_extents(d, &l, &mut Timing::default()).await?;
                            self.ng_spatial(NgDataset::Edge(d), Some(&l), &extents, level, cell)
                                .await?
                        }
                    }
                };
                r.headers_mut()
                    .insert(header::ETAG, header_value(&format!("\"{etag}\"")));
                Ok(r)
            }
            NgDataset::Vast(v) => match key {
                Key::Info => {
                    let mut timing = Timing::default();
                    let extents = self.vast_extents(v, &mut timing).await?;
                    let mut r = self.ng_info(&extents);
                    set_timing(&mut r, &timing);
                    Ok(r)
                }
                Key::Segment(label) => self.vast_segment(v, label).await,
                Key::ById(id) => self.vast_by_id(v, id).await,
                Key::Spatial(level, cell) => {
                    let extents = self.vast_extents(v, &mut Timing::default()).await?;
                    self.ng_spatial(NgDataset::Vast(v), None, &extents, level, cell)
                        .await
                }
            },
        }
    }

    /// `info`: the coordinate space, bounds, the one relationship, `by_id` and the
    /// spatial levels.
    fn ng_info(&self, extents: &Extents) -> Response<Body> {
        let index = &extents.index;
        let dimensions: serde_json::Map<String, serde_json::Value> = extents
            .dims
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let nm = extents
                    .voxel_size_nm
                    .as_ref()
                    .and_then(|v| v.get(i).copied())
                    .unwrap_or(1.0);
                (name.clone(), json!([nm / 1e9, "m"]))
            })
            .collect();
        let spatial: Vec<_> = index
            .levels
            .iter()
            .enumerate()
            .map(|(i, level)| {
                json!({"key": format!("spatial/{i}"),
                    "grid_shape": vec![level.cells_per_dim; extents.dims.len()],
                    "chunk_size": level.chunk_size, "limit": level.limit})
            })
            .collect();
        json_response(
            StatusCode::OK,
            &json!({"@type": "neuroglancer_annotations_v1", "dimensions": dimensions,
                "lower_bound": index.lower, "upper_bound": index.upper,
                "annotation_type": "POINT", "properties": [],
                "relationships": [{"id": ng::RELATIONSHIP, "key": "segment"}],
                "by_id": {"key": "by_id"}, "spatial": spatial}),
        )
    }

    /// `segment/{label}` of an edge-layout dataset: the label's points, streamed from the
    /// stored pieces, then their ids.
    async fn edge_segment(
        &self,
        d: &Arc<Dataset>,
        l: Arc<Loaded>,
        label: u64,
    ) -> Result<Response<Body>, ApiError> {
        let mut timing = Timing::default();
        let t0 = self.clock.now_ms();
        let (ordinal, entry) = edge_entry(d, &l, label, &mut timing).await?;
        let count = entry.point_count;
        check_ids(ordinal, count)?;
        let groups = fetch_groups(read_pieces(d, &l, &entry)?);
        let bpp = ng_bytes_per_point(l.manifest.dims());
        let held = self.budget.hold(streamed_bytes(&groups, bpp)).await?;
        timing.index += self.clock.now_ms() - t0;
        let mut stream = SegmentStream {
            pieces: EdgePieces::new(d.clone(), l, self.clock.clone(), groups),
            ordinal,
            count,
            read: 0,
            next_id: None,
        };
        let mut head = vec![Bytes::copy_from_slice(&ng::list_head(count))];
        // The first piece before answering, so its errors get a status.
        head.extend(stream.next(&mut timing).await?);
        let state = Some((stream, held));
        let rest = futures::stream::unfold(state, |state| async move {
            let (mut stream, held) = state?;
            match stream.next(&mut Timing::default()).await {
                Ok(Some(bytes)) => Some((Ok(vec![bytes]), Some((stream, held)))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(streamed(BINARY, head, rest, &timing))
    }

    /// `by_id/{id}` of an edge-layout dataset: the one point, related to its label.
    async fn edge_by_id(
        &self,
        d: &Arc<Dataset>,
        l: Arc<Loaded>,
        id: u64,
    ) -> Result<Response<Body>, ApiError> {
        let (ordinal, rank) = ng::split_id(id);
        let missing = || ApiError::not_found(format!("no annotation {id} in dataset {}", d.name));
        let mut timing = Timing::default();
        let pages = &l.manifest.label_index.pages;
        let mut first = 0u64;
        let mut found = None;
        for (i, page) in pages.iter().enumerate() {
            let count = u64::from(page.count);
            if ordinal < first + count {
                let page = d.index_page(&l, i, &mut timing).await?;
                found = page.entries.get((ordinal - first) as usize).cloned();
                break;
            }
            first += count;
        }
        let entry = found.filter(|e| rank < e.point_count).ok_or_else(missing)?;
        let piece = read_pieces(d, &l, &entry)?
            .into_iter()
            .find(|p| p.first_rank <= rank && rank < p.first_rank + p.chunk.rows.take)
            .ok_or_else(missing)?;
        let first_rank = piece.first_rank;
        let mut pieces = EdgePieces::new(
            d.clone(),
            l,
            self.clock.clone(),
            vec![VecDeque::from([piece])],
        );
        let (_, cloud) = pieces.next(&mut timing).await?.ok_or_else(missing)?;
        let row = usize::try_from(rank - first_rank).map_err(ReadError::internal)?;
        if row >= cloud.len() {
            return Err(missing());
        }
        Ok(binary(
            ng::single_annotation(cloud.row(row), &[entry.label]),
            &timing,
        ))
    }

    /// `segment/{label}` of a VastDB table: the label's points read whole (VastDB does not
    /// say how many before they arrive), then answered.
    async fn vast_segment(&self, v: &Arc<VastSource>, label: u64) -> Answer {
        let labels = v.labels().await?;
        let ordinal = labels
            .binary_search(&label)
            .map_err(|_| ApiError::not_found(format!("no label {label} in dataset {}", v.name)))?
            as u64;
        let mut timing = Timing::default();
        let dims = v.dim_names().await?.len();
        let mut held = self.budget.hold(START_BYTES).await?;
        let cloud = self
            .vast_sorted_points(v, label, dims, &mut held, &mut timing)
            .await?;
        let count = cloud.len() as u64;
        check_ids(ordinal, count)?;
        let t0 = self.clock.now_ms();
        let ids: Vec<u64> = (0..count)
            .filter_map(|rank| ng::annotation_id(ordinal, rank))
            .collect();
        let body = ng::annotation_list(cloud.values(), dims, &ids);
        timing.encode += self.clock.now_ms() - t0;
        Ok(binary(body, &timing))
    }

    /// `by_id/{id}` of a VastDB table: the one point of its label's points.
    async fn vast_by_id(&self, v: &Arc<VastSource>, id: u64) -> Answer {
        let (ordinal, rank) = ng::split_id(id);
        let missing = || ApiError::not_found(format!("no annotation {id} in dataset {}", v.name));
        let labels = v.labels().await?;
        let label = *labels.get(ordinal as usize).ok_or_else(missing)?;
        let mut timing = Timing::default();
        let dims = v.dim_names().await?.len();
        let mut held = self.budget.hold(START_BYTES).await?;
        let cloud = self
            .vast_sorted_points(v, label, dims, &mut held, &mut timing)
            .await?;
        let row = usize::try_from(rank).map_err(|_| missing())?;
        if row >= cloud.len() {
            return Err(missing());
        }
        Ok(binary(
            ng::single_annotation(cloud.row(row), &[label]),
            &timing,
        ))
    }

    /// A VastDB label's points whole, distinct and in PoCADuck's order, so that their ranks
    /// (and ids) do not depend on the order the table's replies come in; within the limit
    /// of points held whole, each taking its share of `held`.
    async fn vast_sorted_points(
        &self,
        v: &Arc<VastSource>,
        label: u64,
        dims: usize,
        held: &mut Held,
        timing: &mut Timing,
    ) -> Result<PointCloud, ApiError> {
        let mut values = Vec::new();
        let mut points = v.points(label, timing).await?;
        while let Some(cloud) = points.next(timing).await? {
            values.extend_from_slice(cloud.values());
            let count = (values.len() / dims.max(1)) as u64;
            self.check_held_points(count)?;
            held.grow(count.saturating_mul(ng_bytes_per_point(dims)))?;
        }
        let mut cloud = PointCloud::new(dims, values).map_err(ReadError::internal)?;
        if !points.ascending() {
            cloud.sort_unique();
        }
        Ok(cloud)
    }

    /// `spatial/{level}/{cell}`: the points of the level in the cell, in the format's
    /// pseudo-random order; held whole (its count comes first).
    async fn ng_spatial(
        &self,
        ds: NgDataset<'_>,
        loaded: Option<&Arc<Loaded>>,
        extents: &Extents,
        level: u64,
        cell: &str,
    ) -> Answer {
        let index = &extents.index;
        let dims = extents.dims.len();
        let cell = ng::parse_cell(cell, dims).ok_or_else(|| {
            ApiError::bad_request(format!(
                "spatial cell {cell:?} is not {dims} decimal u64s joined by '_'"
            ))
        })?;
        let outside = || {
            ApiError::not_found(format!(
                "no spatial cell {cell:?} at level {level}: the index has {} levels",
                index.levels.len()
            ))
        };
        let level = usize::try_from(level).map_err(|_| outside())?;
        let bounds = index.cell_bounds(level, &cell).ok_or_else(outside)?;
        let limit = index.levels[level].limit;
        // The cell's points take their share of the budget as they are kept.
        let mut held = self.budget.hold(START_BYTES).await?;
        let mut timing = Timing::default();
        let mut ids: Vec<u64> = Vec::new();
        let mut values: Vec<i64> = Vec::new();
        for (ordinal, row) in extents.labels.iter().enumerate() {
            if index.level_points(level, row.extent.point_count) == 0
                || !meets(&row.extent.bbox, &bounds)
            {
                continue;
            }
            let mut keep = |first_rank: u64, step: u64, cloud: &PointCloud| {
                for (i, point) in cloud.rows().enumerate() {
                    let rank = (first_rank + i as u64) * step;
                    if !index.holds(level, rank) || !bounds.contains(point) {
                        continue;
                    }
                    if let Some(id) = ng::annotation_id(ordinal as u64, rank) {
                        ids.push(id);
                        values.extend_from_slice(point);
                    }
                }
            };
            match &ds {
                NgDataset::Edge(d) => {
                    let (Some(l), Some(entry)) = (loaded, &row.entry) else {
                        return Err(ReadError::internal("an edge label without its entry").into());
                    };
                    // A level whose stride the stored coarse level divides reads that level.
                    let (read, step) = match &entry.coarse {
                        Some(c) if index.levels[level].stride % c.stride == 0 => (
                            l.manifest.entry_for_limit(entry, Some(c.point_count)),
                            c.stride,
                        ),
                        _ => (entry.clone(), 1),
                    };
                    let groups = fetch_groups(read_pieces(d, l, &read)?);
                    let mut pieces =
                        EdgePieces::new((*d).clone(), l.clone(), self.clock.clone(), groups);
                    while let Some((piece, cloud)) = pieces.next(&mut timing).await? {
                        // A label's points ascend by their first dim: a piece that starts
                        // past the cell ends what the cell holds of the label.
                        if cloud.values().first() > bounds.max.first() {
                            break;
                        }
                        keep(piece.first_rank, step, &cloud);
                    }
                }
                NgDataset::Vast(v) => {
                    let cloud = self
                        .vast_sorted_points(v, row.label, dims, &mut held, &mut timing)
                        .await?;
                    keep(0, 1, &cloud);
                }
            }
            held.grow((ids.len() as u64).saturating_mul(ng_bytes_per_point(dims) + 16))?;
            if ids.len() as u64 > limit || ids.len() as u64 > u64::from(u32::MAX) {
                return Err(ReadError::internal(format!(
                    "spatial level {level} holds more than its limit of {limit} in a cell"
                ))
                .into());
            }
        }
        let t0 = self.clock.now_ms();
        // The top half of each id's shuffle key above its place: sorted, the cell's order.
        let mut order: Vec<u64> = ids
            .iter()
            .enumerate()
            .map(|(at, &id)| ng::shuffle_key(id) & !u64::from(u32::MAX) | at as u64)
            .collect();
        order.sort_unstable();
        let mut ordered = Vec::with_capacity(values.len());
        let mut ordered_ids = Vec::with_capacity(ids.len());
        for key in order {
            let at = (key & u64::from(u32::MAX)) as usize;
            ordered.extend_from_slice(&values[at * dims..(at + 1) * dims]);
            ordered_ids.push(ids[at]);
        }
        let body = ng::annotation_list(&ordered, dims, &ordered_ids);
        timing.encode += self.clock.now_ms() - t0;
        Ok(binary(body, &timing))
    }

    /// The extents of an edge-layout dataset, from its manifest and every index page, kept
    /// while the manifest is the same.
    async fn edge_extents(
        &self,
        d: &Dataset,
        l: &Loaded,
        timing: &mut Timing,
    ) -> Result<Arc<Extents>, ApiError> {
        let version = Version::Manifest(l.manifest_etag.clone());
        if let Some(extents) = self.ng_extents.get(&d.name, &version) {
            return Ok(extents);
        }
        let mut labels = Vec::with_capacity(l.manifest.label_count as usize);
        for i in 0..l.manifest.label_index.pages.len() {
            let page = d.index_page(l, i, timing).await?;
            labels.extend(page.entries.iter().map(|e| LabelRow {
                label: e.label,
                extent: LabelExtent {
                    point_count: e.point_count,
                    bbox: e.bbox.clone(),
                },
                entry: Some(e.clone()),
            }));
        }
        let m = &l.manifest;
        let extents = Arc::new(Extents::new(
            m.dims.clone(),
            m.voxel_size_nm.clone(),
            m.bbox.as_ref(),
            labels,
        ));
        self.ng_extents.put(&d.name, version, extents.clone());
        Ok(extents)
    }

    /// The extents of a VastDB table: every label read once (its count and bounds), kept
    /// while the source holds the same list of labels.
    async fn vast_extents(
        &self,
        v: &Arc<VastSource>,
        timing: &mut Timing,
    ) -> Result<Arc<Extents>, ApiError> {
        let labels = v.labels().await?;
        let version = Version::Labels(labels.clone());
        if let Some(extents) = self.ng_extents.get(&v.name, &version) {
            return Ok(extents);
        }
        let dims = v.dim_names().await?;
        let mut rows = Vec::with_capacity(labels.len());
        for &label in labels.iter() {
            let mut points = v.points(label, timing).await?;
            let (mut count, mut bbox) = (0u64, None::<BBox>);
            while let Some(cloud) = points.next(timing).await? {
                count += cloud.len() as u64;
                bbox = BBox::union_of(bbox, cloud.bbox());
            }
            // A label listed but gone since has no points: nothing to place.
            if let Some(bbox) = bbox {
                rows.push(LabelRow {
                    label,
                    extent: LabelExtent {
                        point_count: count,
                        bbox,
                    },
                    entry: None,
                });
            }
        }
        let bbox = rows
            .iter()
            .fold(None, |b, r| BBox::union_of(b, Some(r.extent.bbox.clone())));
        let extents = Arc::new(Extents::new(dims, None, bbox.as_ref(), rows));
        self.ng_extents.put(&v.name, version, extents.clone());
        Ok(extents)
    }

    /// Refuses an answer held whole of more than the limit of points.
    fn check_held_points(&self, count: u64) -> Result<(), ApiError> {
        if count > self.limits.max_points {
            return Err(ApiError::too_large(format!(
                "the label is over the limit of {} points per answer held whole",
                self.limits.max_points
            )));
        }
        Ok(())
    }
}

/// Bytes one point takes in memory on its way into a list: its decoded int64 values, its
/// float32 position and its id.
fn ng_bytes_per_point(dims: usize) -> u64 {
    12 * dims as u64 + 8
}

/// Refuses a label whose ordinal or points do not fit an annotation id.
fn check_ids(ordinal: u64, count: u64) -> Result<(), ApiError> {
    if ng::annotation_id(ordinal, count.saturating_sub(1)).is_none() {
        return Err(ApiError::too_large(format!(
            "label number {ordinal} with {count} points is past what annotation ids hold (2^32 labels, 2^32 points each)"
        )));
    }
    Ok(())
}

/// Whether two inclusive boxes meet.
fn meets(a: &BBox, b: &BBox) -> bool {
    a.min
        .iter()
        .zip(&a.max)
        .zip(b.min.iter().zip(&b.max))
        .all(|((alo, ahi), (blo, bhi))| alo <= bhi && blo <= ahi)
}

/// A binary answer held whole.
fn binary(body: Vec<u8>, timing: &Timing) -> Response<Body> {
    let mut r = Response::new(Body::Full(Bytes::from(body)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(BINARY));
    set_timing(&mut r, timing);
    r
}

/// The ordinal and index entry of `label`, or 404.
async fn edge_entry(
    d: &Dataset,
    l: &Loaded,
    label: u64,
    timing: &mut Timing,
) -> Result<(u64, IndexEntry), ApiError> {
    let missing = || ApiError::not_found(format!("no label {label} in dataset {}", d.name));
    let (i, _) = l.manifest.page_for(label).ok_or_else(missing)?;
    let page = d.index_page(l, i, timing).await?;
    let at = page
        .entries
        .binary_search_by_key(&label, |e| e.label)
        .map_err(|_| missing())?;
    let before: u64 = l.manifest.label_index.pages[..i]
        .iter()
        .map(|p| u64::from(p.count))
        .sum();
    Ok((before + at as u64, page.entries[at].clone()))
}

/// The pieces of what `read` names (a label's entry, or its coarse level's).
fn read_pieces(d: &Dataset, l: &Loaded, read: &IndexEntry) -> Result<Vec<Piece>, ApiError> {
    let meta = d.footer(l, read.file)?;
    Ok(label_pieces(read, meta, PIECE_BYTES).map_err(|e| ReadError::unavailable(&d.name, e))?)
}

/// A streamed `segment/{label}` list after its count: the positions piece by piece, then
/// the ids, which follow from the ranks.
struct SegmentStream {
    pieces: EdgePieces,
    ordinal: u64,
    count: u64,
    /// Points read so far.
    read: u64,
    /// The rank of the next id, once every position is out.
    next_id: Option<u64>,
}

impl SegmentStream {
    /// The next bytes of the list; `None` after its last id.
    async fn next(&mut self, timing: &mut Timing) -> Result<Option<Bytes>, ApiError> {
        let rank = match self.next_id {
            Some(rank) => rank,
            None => {
                if let Some((_, cloud)) = self.pieces.next(timing).await? {
                    self.read += cloud.len() as u64;
                    let mut out = Vec::new();
                    ng::push_positions(&mut out, cloud.values());
                    return Ok(Some(Bytes::from(out)));
                }
                if self.read != self.count {
                    return Err(ReadError::unavailable(
                        &self.pieces.dataset.name,
                        format!(
                            "the index names {} points, the points files {}",
                            self.count, self.read
                        ),
                    )
                    .into());
                }
                0
            }
        };
        if rank >= self.count {
            return Ok(None);
        }
        let end = (rank + IDS_PER_CHUNK).min(self.count);
        let mut out = Vec::with_capacity(((end - rank) * 8) as usize);
        let ordinal = self.ordinal;
        ng::push_ids(
            &mut out,
            (rank..end).filter_map(|r| ng::annotation_id(ordinal, r)),
        );
        self.next_id = Some(end);
        Ok(Some(Bytes::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_or_answer_400_and_404() {
        assert_eq!(parse_key("info").unwrap(), Key::Info);
        assert_eq!(
            parse_key("segment/18446744073709551615").unwrap(),
            Key::Segment(u64::MAX)
        );
        assert_eq!(parse_key("by_id/4294967296").unwrap(), Key::ById(1 << 32));
        assert_eq!(
            parse_key("spatial/2/0_1_3").unwrap(),
            Key::Spatial(2, "0_1_3")
        );
        for bad in [
            "segment/x",
            "segment/-1",
            "segment/18446744073709551616",
            "by_id/1e3",
            "spatial/a/0_0_0",
            "by_id/",
        ] {
            assert_eq!(parse_key(bad).unwrap_err().status, 400, "{bad}");
        }
        for missing in ["", "infos", "segment", "segment/1/2", "spatial/0", "mesh/1"] {
            assert_eq!(parse_key(missing).unwrap_err().status, 404, "{missing}");
        }
    }

    #[test]
    fn boxes_meet_when_they_share_a_point() {
        let b = |min: [i64; 2], max: [i64; 2]| BBox {
            min: min.to_vec(),
            max: max.to_vec(),
        };
        assert!(meets(&b([0, 0], [5, 5]), &b([5, 5], [9, 9])));
        assert!(!meets(&b([0, 0], [5, 5]), &b([6, 0], [9, 9])));
        assert!(meets(&b([0, 0], [9, 9]), &b([2, 2], [3, 3])));
    }
}
