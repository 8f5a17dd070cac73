//! The handlers of an edge-layout dataset: its summary, label pages, a label's entry, and
//! points answers planned by core's reader and fetched through the dataset's store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array};
use http::StatusCode;
use pocaduck_edge_core::cloud::Column;
use pocaduck_edge_core::index::IndexEntry;
use pocaduck_edge_core::read::{span_groups, RowSpan, SparseFile};
use pocaduck_edge_core::reader::{Piece, PointsPlan, Selection};
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_read::{Clock, Dataset, Loaded, ReadError, Timing};
use serde_json::json;

use super::encoder::{
    bytes_per_point, check_format, check_whole, column_types, encode_whole, Encoder,
};
use super::respond::{json_response, set_point_count, set_timing, streamed};
use super::routes::Many;
use super::{Answer, Service};
use crate::error::ApiError;
use crate::formats::{self, ArrowEncoder, ColumnsEncoder, JsonEncoder, NpyEncoder, ParquetEncoder};
use crate::options::{labels_options, points_options, Format, PointsOptions, Shape};

/// Stored bytes per piece of a label (whole row groups, or one bigger row group), encoded
/// as one chunk of a streamed answer: about 130K points, so each piece's buffers (~4 MB of
/// Arrow) stay small enough for the allocator to reuse from piece to piece instead of
/// faulting in fresh zeroed pages (1.3M points stream in half the time of 256 KB pieces,
/// and 97M points at a fifth of the peak memory of 8 MB ones).
pub(super) const PIECE_BYTES: u64 = 128 << 10;
/// Stored bytes fetched at once for a streamed answer: few requests to an object store.
const FETCH_BYTES: u64 = 8 << 20;

impl Service {
    /// `GET /v1/datasets/{ds}`: the manifest's summary.
    pub(super) async fn edge_summary(&self, d: &Dataset) -> Answer {
        let l = d.loaded(self.clock.as_ref()).await?;
        let m = &l.manifest;
        Ok(json_response(
            StatusCode::OK,
            &json!({"name": d.name, "backend": "edge", "format": m.format, "version": m.version, "dims": m.dims,
                "voxel_size_nm": m.voxel_size_nm, "label_count": m.label_count, "point_count": m.point_count,
                "bbox": m.bbox, "point_order": m.point_order, "has_blocks": m.blocks.is_some(),
                "attribution": m.attribution, "manifest": format!("/v1/datasets/{}/files/manifest.json", d.name)}),
        ))
    }

    /// `GET …/labels`: a page of labels, ascending.
    pub(super) async fn edge_labels(&self, d: &Dataset, query: Option<&str>) -> Answer {
        let options = labels_options(query)?;
        let l = d.loaded(self.clock.as_ref()).await?;
        let page = d.labels_after(&l, options.after, options.limit).await?;
        let labels: Vec<String> = page.labels.iter().map(u64::to_string).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"labels": labels, "next_after": page.next_after.map(|l| l.to_string())}),
        ))
    }

    /// `GET …/labels/{label}`: its entry (point count, bounds) and blocks.
    pub(super) async fn edge_label(&self, d: &Dataset, label: u64) -> Answer {
        let l = d.loaded(self.clock.as_ref()).await?;
        let mut timing = Timing::default();
        let entry = find_entry(d, &l, label, &mut timing).await?;
        let blocks = d.blocks(&l, &entry, &mut timing).await?;
        let blocks: Vec<_> = blocks
            .iter()
            .map(|(id, n)| json!({"block_id": id, "point_count": n}))
            .collect();
        let mut r = json_response(
            StatusCode::OK,
            &json!({"label": label.to_string(), "point_count": entry.point_count, "bbox": entry.bbox, "blocks": blocks}),
        );
        set_timing(&mut r, &timing);
        Ok(r)
    }

    /// The points of `labels`: streamed, but for npy and JSON filtered by a `bbox` (whose
    /// counts are not known before the points), held whole.
    pub(super) async fn edge_points(
        &self,
        d: &Arc<Dataset>,
        labels: Vec<u64>,
        query: Option<&str>,
        many: Many,
    ) -> Answer {
        let l = d.loaded(self.clock.as_ref()).await?;
        let options = points_options(query, l.manifest.dims())?;
        check_format(&options, many)?;
        let mut timing = Timing::default();
        let t0 = self.clock.now_ms();
        let mut entries = Vec::with_capacity(labels.len());
        for &label in &labels {
            entries.push(find_entry(d, &l, label, &mut timing).await?);
        }
        let plan = PointsPlan::new(&l.manifest, &entries, options.selection.clone());
        let pieces: Vec<Piece> = plan
            .pieces(|f| l.footer(f).map(|m| &**m), PIECE_BYTES)
            .map_err(|e| ReadError::unavailable(&d.name, e))?
            .into_iter()
            .flatten()
            .collect();
        let total = plan.sampled_points();
        // The bounds of a one-label answer of every point of its label, from its entry.
        let whole_bbox = (many == Many::One)
            .then(|| plan.whole_bbox(0).cloned())
            .flatten();
        let only = (many == Many::One)
            .then(|| labels.first().copied())
            .flatten();
        timing.index += self.clock.now_ms() - t0;
        let encoder = match (options.format, options.shape) {
            (Format::Arrow, Shape::Rows) => {
                Encoder::Arrow(ArrowEncoder::new(&l.manifest.dims, whole_bbox.as_ref()))
            }
            (Format::Arrow, Shape::Columns) => Encoder::Columns(ColumnsEncoder::new(
                &l.manifest.dims,
                column_types(&stored_int64_dims(d, &l, &pieces)?),
                only,
                whole_bbox.as_ref(),
            )?),
            (Format::Parquet, _) => {
                // Stored int64 coordinates stay int64, so whole row groups can be copied.
                let wide = stored_int64_dims(d, &l, &pieces)?
                    .first()
                    .copied()
                    .unwrap_or(false);
                Encoder::Parquet(ParquetEncoder::new(
                    &l.manifest.dims,
                    wide,
                    formats::answer_zstd_level(total),
                    whole_bbox.as_ref(),
                )?)
            }
            // Their heads name the counts, known from the index unless a bbox filters.
            (Format::Npy, _) if options.selection.bbox.is_none() => {
                Encoder::Npy(NpyEncoder::new(total, l.manifest.dims()))
            }
            (Format::Json, _) if options.selection.bbox.is_none() => {
                let counts = entries
                    .iter()
                    .map(|e| (e.label, options.selection.sampled(e.point_count)))
                    .collect();
                Encoder::Json(JsonEncoder::new(
                    l.manifest.dims(),
                    counts,
                    many == Many::Several,
                ))
            }
            (Format::Npy | Format::Json, _) => {
                check_whole(total, self.limits.max_points, &options)?;
                let bpp = bytes_per_point(options.format, l.manifest.dims());
                let bytes = pieces
                    .iter()
                    .map(|p| p.chunk.bytes.length + p.chunk.rows.take * bpp)
                    .sum();
                let _held = self.budget.hold(bytes).await?;
                return self.whole(d, &l, pieces, &options, only, timing).await;
            }
        };
        let groups = fetch_groups(pieces);
        let bpp = bytes_per_point(encoder.format(), l.manifest.dims());
        let held = self.budget.hold(streamed_bytes(&groups, bpp)).await?;
        // Known before the answer starts unless a bbox filters the points.
        let count = options.selection.bbox.is_none().then_some(total);
        let content_type = encoder.format().content_type();
        let mut stream = EdgeStream {
            pieces: EdgePieces::new(d.clone(), l, self.clock.clone(), groups),
            selection: plan.selection().clone(),
        };
        let mut encoder = encoder;
        // The first piece before answering, so its errors get a status.
        stream.encode_next(&mut encoder, &mut timing).await?;
        let head = encoder.take();
        // The budget's bytes are held until the answer ends or its client goes away.
        let state = Some((stream, encoder, held));
        let rest = futures::stream::unfold(state, |state| async move {
            let (mut stream, mut encoder, held) = state?;
            let mut timing = Timing::default();
            match stream.encode_next(&mut encoder, &mut timing).await {
                Ok(true) => Some((Ok(encoder.take()), Some((stream, encoder, held)))),
                Ok(false) => Some((encoder.finish().map_err(ApiError::from), None)),
                Err(e) => Some((Err(e), None)),
            }
        });
        let mut r = streamed(content_type, head, rest, &timing);
        set_point_count(r.headers_mut(), count);
        Ok(r)
    }

    /// Reads every piece at once and answers the selected points whole (npy and JSON
    /// filtered by a bbox); `only` is the label of a one-label answer.
    async fn whole(
        &self,
        d: &Dataset,
        l: &Loaded,
        pieces: Vec<Piece>,
        options: &PointsOptions,
        only: Option<u64>,
        mut timing: Timing,
    ) -> Answer {
        let chunks: Vec<_> = pieces.iter().map(|p| p.chunk.clone()).collect();
        let clouds = d
            .read_chunks(l, &chunks, &mut timing, self.clock.as_ref())
            .await?;
        let mut labels: Vec<(u64, PointCloud)> = Vec::new();
        for (piece, cloud) in pieces.iter().zip(clouds) {
            let cloud = options
                .selection
                .apply(piece.first_rank, piece.count, cloud);
            match labels.last_mut() {
                Some((label, whole)) if *label == piece.label && piece.first_rank > 0 => {
                    whole.extend(&cloud).map_err(ReadError::internal)?
                }
                _ => labels.push((piece.label, cloud)),
            }
        }
        // An index entry may name no points: the label is answered, empty.
        if let (Some(label), true) = (only, labels.is_empty()) {
            labels.push((label, PointCloud::empty(l.manifest.dims())));
        }
        let many = if only.is_some() {
            Many::One
        } else {
            Many::Several
        };
        encode_whole(
            self.clock.as_ref(),
            &l.manifest.dims,
            &labels,
            options,
            many,
            timing,
        )
    }
}

/// The index entry of `label`, or 404.
async fn find_entry(
    d: &Dataset,
    l: &Loaded,
    label: u64,
    timing: &mut Timing,
) -> Result<IndexEntry, ApiError> {
    d.entry(l, label, timing)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no label {label} in dataset {}", d.name)))
}

/// Which dims some points file of `pieces` stores as int64 (the others are int32 in all).
fn stored_int64_dims(d: &Dataset, l: &Loaded, pieces: &[Piece]) -> Result<Vec<bool>, ApiError> {
    let mut wide = vec![false; l.manifest.dims()];
    for p in pieces {
        let schema = d.footer(l, p.chunk.file)?.file_metadata().schema_descr();
        for (dim, wide) in wide.iter_mut().enumerate() {
            *wide |= schema.columns().get(dim + 1).map(|c| c.physical_type())
                == Some(parquet::basic::Type::INT64);
        }
    }
    Ok(wide)
}

/// A column as an Arrow array, sharing its values.
fn column_array(column: Column) -> ArrayRef {
    match column {
        Column::I32(values) => Arc::new(Int32Array::new(values, None)),
        Column::I64(values) => Arc::new(Int64Array::new(values, None)),
    }
}

/// A streamed answer's pieces still to encode, with the selection they are encoded under.
struct EdgeStream {
    pieces: EdgePieces,
    selection: Selection,
}

/// An edge-layout label's pieces still to read: groups of pieces of about [`FETCH_BYTES`]
/// still to fetch, and the fetched bytes of the current group with its pieces left.
pub(super) struct EdgePieces {
    /// The dataset read.
    pub(super) dataset: Arc<Dataset>,
    loaded: Arc<Loaded>,
    clock: Arc<dyn Clock>,
    groups: std::vec::IntoIter<VecDeque<Piece>>,
    fetched: HashMap<u32, SparseFile>,
    pending: VecDeque<Piece>,
}

impl EdgePieces {
    /// The pieces of `groups` ([`fetch_groups`]) of `dataset`.
    pub(super) fn new(
        dataset: Arc<Dataset>,
        loaded: Arc<Loaded>,
        clock: Arc<dyn Clock>,
        groups: Vec<VecDeque<Piece>>,
    ) -> Self {
        Self {
            dataset,
            loaded,
            clock,
            groups: groups.into_iter(),
            fetched: HashMap::new(),
            pending: VecDeque::new(),
        }
    }

    /// The next piece and the fetched bytes of its file, fetching its group first when
    /// needed; `None` after the last.
    async fn next_fetched(
        &mut self,
        timing: &mut Timing,
    ) -> Result<Option<(Piece, SparseFile)>, ApiError> {
        if self.pending.is_empty() {
            let Some(group) = self.groups.next() else {
                return Ok(None);
            };
            let chunks: Vec<_> = group.iter().map(|p| p.chunk.clone()).collect();
            self.fetched = self
                .dataset
                .fetch_chunks(&self.loaded, &chunks, timing, self.clock.as_ref())
                .await?;
            self.pending = group;
        }
        let piece = self.pending.pop_front().expect("refilled above");
        let file = self
            .fetched
            .get(&piece.chunk.file)
            .cloned()
            .unwrap_or_default();
        Ok(Some((piece, file)))
    }

    /// The next piece and its points; `None` after the last.
    pub(super) async fn next(
        &mut self,
        timing: &mut Timing,
    ) -> Result<Option<(Piece, PointCloud)>, ApiError> {
        let Some((piece, file)) = self.next_fetched(timing).await? else {
            return Ok(None);
        };
        let t0 = self.clock.now_ms();
        let cloud =
            self.dataset
                .decode_chunk(&self.loaded, piece.chunk.file, file, &piece.chunk.rows)?;
        timing.decode += self.clock.now_ms() - t0;
        Ok(Some((piece, cloud)))
    }
}

/// `pieces` in groups of about [`FETCH_BYTES`] stored bytes, each fetched at once.
pub(super) fn fetch_groups(pieces: Vec<Piece>) -> Vec<VecDeque<Piece>> {
    let mut groups: Vec<VecDeque<Piece>> = vec![VecDeque::new()];
    let mut group_bytes = 0u64;
    for piece in pieces {
        if group_bytes + piece.chunk.bytes.length > FETCH_BYTES
            && !groups.last().expect("never empty").is_empty()
        {
            groups.push(VecDeque::new());
            group_bytes = 0;
        }
        group_bytes += piece.chunk.bytes.length;
        groups.last_mut().expect("never empty").push_back(piece);
    }
    groups
}

/// The most bytes a streamed answer of `groups` holds at once, at `bytes_per_point`
/// decoded and encoded: the stored bytes of its biggest group, and two of its biggest
/// pieces (one being encoded while the one before is still being sent).
pub(super) fn streamed_bytes(groups: &[VecDeque<Piece>], bytes_per_point: u64) -> u64 {
    let stored = groups
        .iter()
        .map(|g| g.iter().map(|p| p.chunk.bytes.length).sum::<u64>())
        .max()
        .unwrap_or(0);
    let rows = groups
        .iter()
        .flatten()
        .map(|p| p.chunk.rows.take)
        .max()
        .unwrap_or(0);
    stored.saturating_add(rows.saturating_mul(2 * bytes_per_point))
}

impl EdgeStream {
    /// Encodes the next piece, fetching its group's bytes first when needed; `false` when
    /// no piece is left.
    async fn encode_next(
        &mut self,
        encoder: &mut Encoder,
        timing: &mut Timing,
    ) -> Result<bool, ApiError> {
        let Some((piece, file)) = self.pieces.next_fetched(timing).await? else {
            return Ok(false);
        };
        let (d, l, clock) = (
            &*self.pieces.dataset,
            &*self.pieces.loaded,
            &self.pieces.clock,
        );
        let t0 = clock.now_ms();
        let passes_stored = self.selection.keeps_stored_points();
        match encoder {
            Encoder::Parquet(p) if passes_stored => {
                copy_piece(d, l, &piece, file, p)?;
                timing.encode += clock.now_ms() - t0;
            }
            Encoder::Columns(c) if passes_stored => {
                let columns =
                    d.decode_chunk_columns(l, piece.chunk.file, file, &piece.chunk.rows)?;
                let t1 = clock.now_ms();
                timing.decode += t1 - t0;
                c.push_columns(piece.label, columns.into_iter().map(column_array).collect())?;
                timing.encode += clock.now_ms() - t1;
            }
            encoder => {
                let cloud = d.decode_chunk(l, piece.chunk.file, file, &piece.chunk.rows)?;
                let t1 = clock.now_ms();
                timing.decode += t1 - t0;
                let cloud = self.selection.apply(piece.first_rank, piece.count, cloud);
                encoder.push(piece.label, cloud)?;
                timing.encode += clock.now_ms() - t1;
            }
        }
        Ok(true)
    }
}

/// A piece of a whole label into a Parquet answer: row groups that hold only the label
/// are copied as stored; the rows of shared row groups are decoded and encoded again.
fn copy_piece(
    d: &Dataset,
    l: &Loaded,
    piece: &Piece,
    file: SparseFile,
    encoder: &mut ParquetEncoder,
) -> Result<(), ApiError> {
    let meta = d.footer(l, piece.chunk.file)?;
    let copyable = encoder.can_copy(meta.file_metadata().schema_descr());
    let path = &d.points_file(l, piece.chunk.file)?.path;
    let groups = span_groups(path, meta, &piece.chunk.rows)
        .map_err(|e| ReadError::unavailable(&d.name, e))?;
    for (g, skip, take) in groups {
        let group = meta.row_group(g);
        if copyable && skip == 0 && take == group.num_rows() as usize {
            encoder.copy_row_group(group, &file)?;
        } else {
            let part = RowSpan {
                row_groups: g..g + 1,
                skip: skip as u64,
                take: take as u64,
            };
            let cloud = d.decode_chunk(l, piece.chunk.file, file.clone(), &part)?;
            encoder.push(piece.label, &cloud)?;
        }
    }
    Ok(())
}
