//! The handlers of a VastDB table: the same routes as an edge-layout dataset, each read a
//! signed query through `pocaduck-edge-read`'s `VastSource`, streamed as it arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use futures::StreamExt;
use http::header::HeaderValue;
use http::StatusCode;
use pocaduck_edge_core::cloud::BBox;
use pocaduck_edge_core::reader::{labels_in, NextAfter, Selection};
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_read::vast::{LabelPoints, LABELS_PER_QUERY};
use pocaduck_edge_read::{Layout, ReadError, Timing, VastSource};
use serde_json::json;

use super::encoder::{bytes_per_point, check_format, check_whole, encode_whole, Encoder};
use super::respond::{header_value, json_response, set_timing, streamed};
use super::routes::Many;
use super::{Answer, Service};
use crate::budget::Held;
use crate::error::ApiError;
use crate::formats::{ArrowEncoder, ColumnsEncoder};
use crate::options::{labels_options, points_options, reply_options, Format, PointsOptions, Shape};

impl Service {
    /// `GET /v1/datasets/{ds}`: the table's summary.
    pub(super) async fn vast_summary(&self, v: &Arc<VastSource>) -> Answer {
        let labels = v.labels().await?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"name": v.name, "backend": "vastdb", "table": v.table(),
                "layout": format!("{:?}", v.layout()).to_lowercase(),
                "dims": v.dim_names().await?, "label_count": labels.len(),
                "point_order": "xyz", "has_blocks": v.layout() == Layout::Pocaduck}),
        ))
    }

    /// `GET …/labels`: a page of the table's labels, ascending.
    pub(super) async fn vast_labels(&self, v: &Arc<VastSource>, query: Option<&str>) -> Answer {
        let options = labels_options(query)?;
        let labels = v.labels().await?;
        // The whole list is at hand: a full page names a cursor only when more follow.
        let page = labels_in(&labels, options.after, options.limit, NextAfter::WhenMore);
        let labels: Vec<String> = page.labels.iter().map(u64::to_string).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"labels": labels, "next_after": page.next_after.map(|l| l.to_string())}),
        ))
    }

    /// `GET …/labels/{label}`: its point count and bounds (from reading its points) and
    /// its blocks.
    pub(super) async fn vast_label(&self, v: &Arc<VastSource>, label: u64) -> Answer {
        known(v, label).await?;
        let mut timing = Timing::default();
        let mut points = v.points(label, &mut timing).await?;
        let (mut count, mut bbox) = (0u64, None::<BBox>);
        while let Some(cloud) = points.next(&mut timing).await? {
            count += cloud.len() as u64;
            if let Some(b) = cloud.bbox() {
                bbox = Some(bbox.map_or(b.clone(), |a| a.union(&b)));
            }
        }
        let blocks: Vec<_> = v
            .blocks(label, &mut timing)
            .await?
            .iter()
            .map(|(id, n)| json!({"block_id": id, "point_count": n}))
            .collect();
        let mut r = json_response(
            StatusCode::OK,
            &json!({"label": label.to_string(), "point_count": count, "bbox": bbox, "blocks": blocks}),
        );
        set_timing(&mut r, &timing);
        Ok(r)
    }

    /// The points of `labels`: streamed as they arrive for Arrow, held whole otherwise.
    pub(super) async fn vast_points(
        &self,
        v: &Arc<VastSource>,
        labels: Vec<u64>,
        query: Option<&str>,
        many: Many,
    ) -> Answer {
        let dim_names = v.dim_names().await?;
        let options = points_options(query, dim_names.len())?;
        check_format(&options, many)?;
        for &label in &labels {
            known(v, label).await?;
        }
        if many == Many::Several
            && options.format != Format::Arrow
            && options.selection.keeps_stored_points()
        {
            return self.vast_many_whole(v, &labels, &dim_names, &options).await;
        }
        let only = (many == Many::One)
            .then(|| labels.first().copied())
            .flatten();
        let bpp = bytes_per_point(options.format, dim_names.len());
        let held = self.budget.hold(VAST_START_BYTES).await?;
        let mut reader = VastReader {
            source: v.clone(),
            held,
            batch_bytes_per_point: BATCH_BYTES_PER_POINT_PER_DIM * (dim_names.len() as u64 + 1),
            batched: many == Many::Several,
            selection: options.selection.clone(),
            // A columnar table's columns pass through when they need no sampling or filter.
            pass_columns: options.format == Format::Arrow
                && options.shape == Shape::Columns
                && v.layout() == Layout::Columnar
                && options.selection.keeps_stored_points(),
            labels: labels.into_iter().collect(),
            read: VecDeque::new(),
            batch: HashMap::new(),
            one_by_one: VecDeque::new(),
            current: None,
            timing: Timing::default(),
        };
        if options.format != Format::Arrow {
            let mut whole: Vec<(u64, PointCloud)> = Vec::new();
            let mut total = 0u64;
            while let Some((label, piece)) = reader.next().await? {
                let VastPiece::Rows(cloud) = piece else {
                    return Err(ReadError::internal("columns passed through a whole answer").into());
                };
                total += cloud.len() as u64;
                check_whole(total, self.limits.max_points, &options)?;
                reader.held.grow(total.saturating_mul(bpp))?;
                match whole.last_mut() {
                    Some((l, w)) if *l == label => w.extend(&cloud).map_err(ReadError::internal)?,
                    _ => whole.push((label, cloud)),
                }
            }
            // A label listed within the cache window may be gone from the table since:
            // it is answered, empty.
            if let (Some(label), true) = (only, whole.is_empty()) {
                whole.push((label, PointCloud::empty(dim_names.len())));
            }
            let timing = std::mem::take(&mut reader.timing);
            return encode_whole(
                self.clock.as_ref(),
                &dim_names,
                &whole,
                &options,
                many,
                timing,
            );
        }
        // Arrow: the first piece is read before answering, so its errors get a status.
        let mut encoder = match options.shape {
            Shape::Rows => Encoder::Arrow(ArrowEncoder::new(&dim_names, None)),
            Shape::Columns => Encoder::Columns(ColumnsEncoder::new(
                &dim_names,
                v.dim_types().await?,
                only,
                None,
            )?),
        };
        if let Some((label, piece)) = reader.next().await? {
            reader.held.grow(piece.held_bytes(bpp))?;
            push_piece(&mut encoder, label, piece)?;
        }
        let head = encoder.take();
        let timing = reader.timing.clone();
        // The budget's bytes are held until the answer ends or its client goes away.
        let state = Some((reader, encoder));
        let rest = futures::stream::unfold(state, move |state| async move {
            let (mut reader, mut encoder) = state?;
            match reader.next().await {
                Ok(Some((label, piece))) => match reader
                    .held
                    .grow(piece.held_bytes(bpp))
                    .and_then(|()| push_piece(&mut encoder, label, piece))
                {
                    Ok(()) => Some((Ok(encoder.take()), Some((reader, encoder)))),
                    Err(e) => Some((Err(e), None)),
                },
                Ok(None) => Some((encoder.finish().map_err(ApiError::from), None)),
                Err(e) => Some((Err(e.into()), None)),
            }
        });
        Ok(streamed(Format::Arrow.content_type(), head, rest, &timing))
    }
}

impl Service {
    /// Several labels' points held whole (npy, JSON, Parquet), every point kept: read by a
    /// query per [`LABELS_PER_QUERY`](pocaduck_edge_read::vast::LABELS_PER_QUERY) labels,
    /// answered in the order asked.
    async fn vast_many_whole(
        &self,
        v: &Arc<VastSource>,
        labels: &[u64],
        dim_names: &[String],
        options: &PointsOptions,
    ) -> Answer {
        let mut distinct = labels.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut timing = Timing::default();
        let mut held = self.budget.hold(VAST_START_BYTES).await?;
        let clouds = v
            .points_of(&distinct, self.limits.max_points, &mut timing)
            .await?;
        let read: u64 = clouds.values().map(|c| c.len() as u64).sum();
        held.grow(read.saturating_mul(bytes_per_point(options.format, dim_names.len())))?;
        let mut whole = Vec::with_capacity(labels.len());
        let mut total = 0u64;
        for label in labels {
            let cloud = clouds
                .get(label)
                .ok_or_else(|| ReadError::internal(format!("label {label} was not read")))?;
            total += cloud.len() as u64;
            check_whole(total, self.limits.max_points, options)?;
            whole.push((*label, cloud.clone()));
        }
        encode_whole(
            self.clock.as_ref(),
            dim_names,
            &whole,
            options,
            Many::Several,
            timing,
        )
    }
}

/// The content type of a VastDB reply page: VastDB's own `GET ?data` reply framing.
pub const VASTDB_REPLY: &str = "application/x-vastdb-reply";
/// The header of a reply page naming its columns: an Arrow IPC stream of the schema alone,
/// base64, with the table layout and dims in its metadata.
pub const REPLY_SCHEMA: &str = "pocaduck-reply-schema";
/// The header of a reply page giving the number of sub-splits its reply multiplexes.
pub const REPLY_SUB_SPLITS: &str = "pocaduck-reply-sub-splits";

impl Service {
    /// `GET …/labels/{label}/vastdb-reply[?resume=…]`: one page of VastDB's reply to the
    /// query of the label's points, its bytes unchanged, for a client that de-frames it
    /// (pass-through). The client reads the page's rounds for where the next page resumes.
    /// When the host's upstream kept the bytes to itself
    /// ([`HostBody`](pocaduck_edge_read::HostBody)), the answer carries that mark for the
    /// host to send them, and its own body ends once they are sent.
    pub(super) async fn vast_reply_page(
        &self,
        v: &Arc<VastSource>,
        label: u64,
        query: Option<&str>,
    ) -> Answer {
        let resume = reply_options(query)?;
        known(v, label).await?;
        let mut timing = Timing::default();
        let page = v.reply_page(label, resume.as_deref(), &mut timing).await?;
        let schema = schema_header(&page.schema)?;
        let state = (page.body, Some(page.end));
        // The page's transaction is closed when its body ends, however it ends.
        let rest = futures::stream::unfold(state, |(mut body, end)| async move {
            let end = end?;
            match body.next().await {
                Some(Ok(bytes)) => Some((Ok(vec![bytes]), (body, Some(end)))),
                Some(Err(e)) => {
                    let _ = end.run().await;
                    Some((Err(ReadError::from(e).into()), (body, None)))
                }
                None => {
                    let closed = end.run().await.map(|()| Vec::new());
                    Some((closed.map_err(ApiError::from), (body, None)))
                }
            }
        });
        let host_body = page.host_body;
        let mut r = streamed(VASTDB_REPLY, Vec::new(), rest, &timing);
        // A body the host's upstream kept to itself is the host's to send.
        if let Some(host_body) = host_body {
            r.extensions_mut().insert(host_body);
        }
        r.headers_mut().insert(REPLY_SCHEMA, schema);
        r.headers_mut()
            .insert(REPLY_SUB_SPLITS, HeaderValue::from(page.sub_splits));
        Ok(r)
    }
}

/// The [`REPLY_SCHEMA`] header of `schema`.
fn schema_header(schema: &Schema) -> Result<HeaderValue, ApiError> {
    use base64::Engine;
    let mut bytes = Vec::new();
    arrow_ipc::writer::StreamWriter::try_new(&mut bytes, schema)
        .and_then(|mut w| w.finish())
        .map_err(ReadError::internal)?;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(header_value(&text))
}

/// Whether the table holds `label` (404 if not).
async fn known(v: &Arc<VastSource>, label: u64) -> Result<(), ApiError> {
    if v.has_label(label).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no label {label} in dataset {}",
            v.name
        )))
    }
}

/// The bytes a VastDB answer holds before its first rows arrive (a reply round's
/// buffers); it takes more of the budget as its rows arrive.
const VAST_START_BYTES: u64 = 4 << 20;

/// The most stored points a batch of labels read by one query holds ([`VastReader`]); a
/// batch that holds more is read again one label at a time.
const BATCH_POINTS: u64 = 1 << 18;

/// The bytes a batch holds per point and per value (a dim, or the label): the reply's
/// columns and the points made of them.
const BATCH_BYTES_PER_POINT_PER_DIM: u64 = 2 * 8;

/// A piece of a label read from VastDB.
enum VastPiece {
    /// Points as `N × D` rows.
    Rows(PointCloud),
    /// A reply round's coordinate columns, as VastDB sent them.
    Columns(Vec<RecordBatch>),
}

impl VastPiece {
    /// The bytes a streamed answer holds for this piece at `bytes_per_point`: the piece
    /// being encoded, and the one before it still being sent.
    fn held_bytes(&self, bytes_per_point: u64) -> u64 {
        let points = match self {
            VastPiece::Rows(cloud) => cloud.len() as u64,
            VastPiece::Columns(batches) => batches.iter().map(|b| b.num_rows() as u64).sum(),
        };
        points.saturating_mul(2 * bytes_per_point)
    }
}

/// Encodes a piece read from VastDB.
fn push_piece(encoder: &mut Encoder, label: u64, piece: VastPiece) -> Result<(), ApiError> {
    match (piece, encoder) {
        (VastPiece::Rows(cloud), encoder) => Ok(encoder.push(label, cloud)?),
        (VastPiece::Columns(batches), Encoder::Columns(columns)) => {
            for batch in batches {
                columns.push_columns(label, batch.columns().to_vec())?;
            }
            Ok(())
        }
        (VastPiece::Columns(_), _) => Err(ReadError::internal("columns for a rows answer").into()),
    }
}

/// Reads labels from a VastDB table piece by piece, keeping the selected points. The labels
/// of a `POST` are read a batch at a time, by one query per
/// [`LABELS_PER_QUERY`](pocaduck_edge_read::vast::LABELS_PER_QUERY) labels, while a batch
/// holds at most [`BATCH_POINTS`] points and the budget has their bytes; a batch past either
/// is read one label at a time, each label's points as they arrive.
struct VastReader {
    source: Arc<VastSource>,
    /// The answer's share of the budget.
    held: Held,
    /// What a batch holds per point, in bytes.
    batch_bytes_per_point: u64,
    /// Whether labels are read in batches.
    batched: bool,
    selection: Selection,
    /// Hand out a columnar table's reply batches as they are (no `limit` or `bbox`).
    pass_columns: bool,
    labels: VecDeque<u64>,
    /// Labels a batch read whole, in the order asked.
    read: VecDeque<u64>,
    /// Their points, once each, with the times each is still asked for.
    batch: HashMap<u64, (PointCloud, usize)>,
    /// Labels of a batch that held too much, to read one at a time.
    one_by_one: VecDeque<u64>,
    /// The label being read: its points, the rank of the next point and its point count.
    current: Option<(u64, LabelPoints, u64, u64)>,
    timing: Timing,
}

impl VastReader {
    /// The next piece, and its label; `None` after the last label.
    async fn next(&mut self) -> Result<Option<(u64, VastPiece)>, ReadError> {
        loop {
            if let Some(label) = self.read.pop_front() {
                let cloud = self.batched_cloud(label)?;
                let count = cloud.len() as u64;
                let cloud = self.selection.apply(0, count, cloud);
                return Ok(Some((label, VastPiece::Rows(cloud))));
            }
            let Some((label, points, rank, count)) = self.current.as_mut() else {
                if self.one_by_one.is_empty() && self.batched && !self.labels.is_empty() {
                    self.read_batch().await?;
                    continue;
                }
                let Some(label) = self
                    .one_by_one
                    .pop_front()
                    .or_else(|| self.labels.pop_front())
                else {
                    return Ok(None);
                };
                // The label's count matters only to spread a `limit` over it.
                let count = match self.selection.limit {
                    Some(_) => self.source.count(label, &mut self.timing).await?,
                    None => 0,
                };
                let points = self.source.points(label, &mut self.timing).await?;
                self.current = Some((label, points, 0, count));
                continue;
            };
            if self.pass_columns {
                match points.next_batches(&mut self.timing).await? {
                    Some(batches) => return Ok(Some((*label, VastPiece::Columns(batches)))),
                    None => {
                        self.current = None;
                        continue;
                    }
                }
            }
            let Some(cloud) = points.next(&mut self.timing).await? else {
                self.current = None;
                continue;
            };
            let first_rank = *rank;
            *rank += cloud.len() as u64;
            let cloud = self.selection.apply(first_rank, *count, cloud);
            return Ok(Some((*label, VastPiece::Rows(cloud))));
        }
    }

    /// The points of `label`, read by a batch: a copy while it is asked for again, else
    /// the batch's own.
    fn batched_cloud(&mut self, label: u64) -> Result<PointCloud, ReadError> {
        let missing = || ReadError::internal(format!("label {label} was not read"));
        let (cloud, uses) = self.batch.get_mut(&label).ok_or_else(missing)?;
        if *uses > 1 {
            *uses -= 1;
            return Ok(cloud.clone());
        }
        self.batch
            .remove(&label)
            .map(|(cloud, _)| cloud)
            .ok_or_else(missing)
    }

    /// Reads the next [`LABELS_PER_QUERY`](pocaduck_edge_read::vast::LABELS_PER_QUERY)
    /// labels asked by one query into [`VastReader::read`], or leaves them to
    /// [`VastReader::one_by_one`] when they hold more than [`BATCH_POINTS`] points or the
    /// budget lacks the bytes.
    async fn read_batch(&mut self) -> Result<(), ReadError> {
        let take = self.labels.len().min(LABELS_PER_QUERY);
        let asked: Vec<u64> = self.labels.drain(..take).collect();
        if self
            .held
            .grow(BATCH_POINTS.saturating_mul(self.batch_bytes_per_point))
            .is_err()
        {
            self.one_by_one.extend(asked);
            return Ok(());
        }
        let mut distinct = asked.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let mut clouds = match self
            .source
            .points_of(&distinct, BATCH_POINTS, &mut self.timing)
            .await
        {
            Ok(clouds) => clouds,
            Err(ReadError::TooLarge { .. }) => {
                self.one_by_one.extend(asked);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for label in &asked {
            let cloud = clouds
                .remove(label)
                .map(|cloud| (cloud, 0))
                .or_else(|| self.batch.remove(label))
                .ok_or_else(|| ReadError::internal(format!("label {label} was not read")))?;
            self.batch.insert(*label, (cloud.0, cloud.1 + 1));
        }
        self.read.extend(asked);
        Ok(())
    }
}
