//! Routing and the handlers of the read API (docs/api.md).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use pocaduck_edge_core::cloud::Column;
use pocaduck_edge_core::index::IndexEntry;
use pocaduck_edge_core::plan::{plan_label, Chunk};
use pocaduck_edge_core::read::{span_groups, RowSpan, SparseFile};
use pocaduck_edge_core::{parse_label, PointCloud};
use serde_json::json;

use pocaduck_edge_read::vast::{LabelPoints, Layout, VastSource};
use pocaduck_edge_read::{Clock, Dataset, Loaded, RangeStore, ReadError, Timing};

use crate::body::Body;
use crate::cors::CorsPolicy;
use crate::error::ApiError;
use crate::files::{none_match, parse_range};
use crate::formats::{self, ArrowEncoder, ColumnsEncoder, FormatError, ParquetEncoder};
use crate::log::{ErrorLog, RequestIds, REQUEST_ID};
use crate::options::{labels_options, points_options, Format, PointsOptions, Shape};

/// Stored bytes per piece of a label (whole row groups, or one bigger row group), encoded
/// as one chunk of a streamed answer: about 130K points, so each piece's buffers (~4 MB of
/// Arrow) stay small enough for the allocator to reuse from piece to piece instead of
/// faulting in fresh zeroed pages (1.3M points stream in half the time of 256 KB pieces,
/// and 97M points at a fifth of the peak memory of 8 MB ones).
const PIECE_BYTES: u64 = 128 << 10;
/// Stored bytes fetched at once for a streamed answer: few requests to an object store.
const FETCH_BYTES: u64 = 8 << 20;

/// Per-request limits; exceeding one answers 413 naming it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Labels in one `POST …/points`.
    pub max_labels: usize,
    /// Points in one answer that must be held whole (npy and JSON; Parquet from a VastDB
    /// table); streamed answers have no such limit.
    pub max_points: u64,
    /// Bytes of a `POST` body.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_labels: 10_000,
            max_points: 50_000_000,
            max_body_bytes: 1 << 20,
        }
    }
}

/// What the service serves and how.
pub struct ServiceConfig {
    /// Datasets by name, each with its store.
    pub datasets: Vec<(String, Arc<dyn RangeStore>)>,
    /// VastDB tables served as datasets.
    pub vast: Vec<VastSource>,
    /// Origins allowed to read responses.
    pub cors: CorsPolicy,
    /// Request limits.
    pub limits: Limits,
    /// The host's clock.
    pub clock: Arc<dyn Clock>,
    /// The host's log, told the details of each failure on the server's side.
    pub log: Arc<dyn ErrorLog>,
}

/// The read API, shared by every host.
pub struct Service {
    datasets: Vec<Dataset>,
    vast: Vec<Arc<VastSource>>,
    cors: CorsPolicy,
    limits: Limits,
    clock: Arc<dyn Clock>,
    log: Arc<dyn ErrorLog>,
    request_ids: RequestIds,
}

/// A piece of one label to read: a chunk of its rows, which rank its first row has among
/// the label's points, and how many points the label has (for `limit` sampling).
#[derive(Debug, Clone)]
struct Piece {
    label: u64,
    chunk: Chunk,
    first_rank: u64,
    count: u64,
}

/// The encoder of a streamed answer.
enum Encoder {
    Arrow(ArrowEncoder),
    Columns(ColumnsEncoder),
    Parquet(ParquetEncoder),
}

impl Encoder {
    fn format(&self) -> Format {
        match self {
            Encoder::Arrow(_) | Encoder::Columns(_) => Format::Arrow,
            Encoder::Parquet(_) => Format::Parquet,
        }
    }

    fn push(&mut self, label: u64, cloud: PointCloud) -> Result<(), FormatError> {
        match self {
            Encoder::Arrow(e) => e.push(label, cloud),
            Encoder::Columns(e) => e.push_cloud(label, &cloud),
            Encoder::Parquet(e) => e.push(label, &cloud),
        }
    }

    fn take(&mut self) -> Vec<Bytes> {
        match self {
            Encoder::Arrow(e) => e.take(),
            Encoder::Columns(e) => e.take(),
            Encoder::Parquet(e) => vec![e.take()],
        }
    }

    fn finish(self) -> Result<Vec<Bytes>, FormatError> {
        match self {
            Encoder::Arrow(e) => Ok(e.finish()),
            Encoder::Columns(e) => Ok(e.finish()),
            Encoder::Parquet(e) => Ok(vec![e.finish()?]),
        }
    }
}

/// Whether an answer passes the points through as stored (Parquet: whole row groups;
/// Arrow columns: the decoded columns): whole labels, no `limit` or `bbox`.
fn encoder_copies(options: &PointsOptions) -> bool {
    options.limit.is_none() && options.bbox.is_none()
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

/// The points of a piece that the options keep: its share of a `limit` sample, inside `bbox`.
fn select(piece: &Piece, cloud: PointCloud, options: &PointsOptions) -> PointCloud {
    let mut cloud = match options.limit {
        Some(limit) => cloud.spread_sample(piece.first_rank, piece.count, limit),
        None => cloud,
    };
    if let Some(b) = &options.bbox {
        cloud.retain(|point| b.contains(point));
    }
    cloud
}

/// A streamed answer's pieces still to encode: groups still to fetch, and the fetched
/// bytes of the current group with its pieces left.
struct PieceStream {
    groups: std::vec::IntoIter<VecDeque<Piece>>,
    fetched: HashMap<u32, SparseFile>,
    pending: VecDeque<Piece>,
}

/// The answer to one request, before CORS headers.
type Answer = Result<Response<Body>, ApiError>;

impl Service {
    /// A service over `config`'s datasets.
    pub fn new(config: ServiceConfig) -> Self {
        let datasets = config
            .datasets
            .into_iter()
            .map(|(name, store)| Dataset::new(name, store))
            .collect();
        Self {
            datasets,
            vast: config.vast.into_iter().map(Arc::new).collect(),
            cors: config.cors,
            limits: config.limits,
            request_ids: RequestIds::new(
                config.clock.unix_seconds() ^ config.clock.now_ms().to_bits(),
            ),
            clock: config.clock,
            log: config.log,
        }
    }

    /// Answers one request. Never fails: errors become JSON error responses naming the
    /// request id, and a 5xx's details go to the host's log under that id. Every answer
    /// carries the id and the CORS headers.
    ///
    /// The request body is read here, up to [`Limits::max_body_bytes`] (beyond: 413).
    pub async fn handle<B>(self: &Arc<Self>, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = self.request_ids.next();
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (method, path) = (request.method().clone(), request.uri().path().to_string());
        let preflight = method == Method::OPTIONS;
        let response = if preflight {
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        } else {
            let answer = match self.read_body(request).await {
                Ok(request) => self.route(request).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(r) => r,
                Err(e) => {
                    if e.is_server_error() {
                        self.log.failed(&request_id, &method, &path, &e);
                    }
                    error_response(&e, &request_id)
                }
            }
        };
        let response = response.map(|body| match body {
            Body::Stream(stream) => {
                let (log, id) = (self.log.clone(), request_id.clone());
                Body::Stream(Box::pin(futures::StreamExt::inspect(
                    stream,
                    move |chunk| {
                        if let Err(e) = chunk {
                            log.failed(&id, &method, &path, e);
                        }
                    },
                )))
            }
            whole => whole,
        });
        let mut response = response;
        response
            .headers_mut()
            .insert(REQUEST_ID, header_value(&request_id));
        self.cors
            .apply(origin.as_deref(), response.headers_mut(), preflight);
        response
    }

    /// The request with its body read whole, up to the limit.
    async fn read_body<B>(&self, request: Request<B>) -> Result<Request<Bytes>, ApiError>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let max = self.limits.max_body_bytes;
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, max))
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::too_large(format!("the body is over the limit of {max} bytes"))
                } else {
                    ApiError::bad_request(format!("the body could not be read: {e}"))
                }
            })?
            .to_bytes();
        Ok(Request::from_parts(parts, body))
    }

    async fn route(self: &Arc<Self>, request: Request<Bytes>) -> Answer {
        let path = request.uri().path().to_string();
        let query = request.uri().query().map(str::to_string);
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let method = request.method().clone();
        let get = method == Method::GET || method == Method::HEAD;
        match segments.as_slice() {
            ["v1", "datasets"] if get => self.list_datasets().await,
            ["v1", "datasets", ds, ..] if self.vast_source(ds).is_some() => {
                let v = self.vast_source(ds).expect("matched").clone();
                self.route_vast(&v, &segments[3..], method, query.as_deref(), request.body())
                    .await
            }
            ["v1", "datasets", ds] if get => self.dataset_summary(ds).await,
            ["v1", "datasets", ds, "labels"] if get => self.labels(ds, query.as_deref()).await,
            ["v1", "datasets", ds, "labels", label] if get => self.label_info(ds, label).await,
            ["v1", "datasets", ds, "labels", label, "points"] if get => {
                let label = label_param(label)?;
                self.points(ds, vec![label], query.as_deref(), true).await
            }
            ["v1", "datasets", ds, "points"] if method == Method::POST => {
                let labels = self.body_labels(request.body())?;
                self.points(ds, labels, query.as_deref(), false).await
            }
            ["v1", "datasets", ds, "files", rest @ ..] if get && !rest.is_empty() => {
                let file = path.splitn(6, '/').nth(5).unwrap_or_default().to_string();
                self.file(ds, &file, request.headers(), method == Method::HEAD)
                    .await
            }
            _ if is_route(&segments) => Err(ApiError::method_not_allowed(format!(
                "{method} is not served at {path}"
            ))),
            _ => Err(ApiError::not_found(format!("no route {path}"))),
        }
    }

    fn vast_source(&self, name: &str) -> Option<&Arc<VastSource>> {
        self.vast.iter().find(|v| v.name == name)
    }

    fn dataset(&self, name: &str) -> Result<&Dataset, ApiError> {
        self.datasets
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no dataset {name:?}")))
    }

    async fn list_datasets(&self) -> Answer {
        let mut items = Vec::new();
        for d in &self.datasets {
            items.push(match d.loaded(self.clock.as_ref()).await {
                Ok(l) => {
                    json!({"name": d.name, "status": "ok", "backend": "edge", "label_count": l.manifest.label_count,
                    "point_count": l.manifest.point_count, "dims": l.manifest.dims})
                }
                Err(e) => json!({"name": d.name, "status": "unavailable", "backend": "edge", "error": ApiError::from(e).message}),
            });
        }
        for v in &self.vast {
            items.push(match (v.labels().await, v.dim_names().await) {
                (Ok(labels), Ok(dims)) => {
                    json!({"name": v.name, "status": "ok", "backend": "vastdb", "label_count": labels.len(), "dims": dims})
                }
                (Err(e), _) | (_, Err(e)) => {
                    json!({"name": v.name, "status": "unavailable", "backend": "vastdb", "error": ApiError::from(e).message})
                }
            });
        }
        Ok(json_response(StatusCode::OK, &json!({"datasets": items})))
    }

    async fn dataset_summary(&self, name: &str) -> Answer {
        let d = self.dataset(name)?;
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

    async fn labels(&self, name: &str, query: Option<&str>) -> Answer {
        let options = labels_options(query)?;
        let d = self.dataset(name)?;
        let l = d.loaded(self.clock.as_ref()).await?;
        let labels = d.labels_after(&l, options.after, options.limit).await?;
        let next = (labels.len() == options.limit)
            .then(|| labels.last().map(u64::to_string))
            .flatten();
        let labels: Vec<String> = labels.iter().map(u64::to_string).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"labels": labels, "next_after": next}),
        ))
    }

    async fn label_info(&self, name: &str, label: &str) -> Answer {
        let label = label_param(label)?;
        let d = self.dataset(name)?;
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
        set_timing(r.headers_mut(), &timing);
        Ok(r)
    }

    fn body_labels(&self, body: &Bytes) -> Result<Vec<u64>, ApiError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            labels: Vec<serde_json::Value>,
        }
        let parsed: Body = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be {{\"labels\": [\"<label>\", …]}}: {e}"
            ))
        })?;
        if parsed.labels.len() > self.limits.max_labels {
            return Err(ApiError::too_large(format!(
                "{} labels asked; the limit is {} labels per request",
                parsed.labels.len(),
                self.limits.max_labels
            )));
        }
        if parsed.labels.is_empty() {
            return Err(ApiError::bad_request("the body names no labels"));
        }
        parsed
            .labels
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => label_param(s),
                // Integers travel as strings: a JSON number above 2^53 has already lost digits in most clients.
                serde_json::Value::Number(n) if n.as_u64().is_some_and(|u| u < (1 << 53)) => {
                    Ok(n.as_u64().expect("checked"))
                }
                other => Err(ApiError::bad_label(format!(
                    "label {other} must be a decimal string"
                ))),
            })
            .collect()
    }

    async fn points(
        self: &Arc<Self>,
        name: &str,
        labels: Vec<u64>,
        query: Option<&str>,
        single: bool,
    ) -> Answer {
        let d = self.dataset(name)?;
        let l = d.loaded(self.clock.as_ref()).await?;
        let options = points_options(query, l.manifest.dims())?;
        if options.format == Format::Npy && !single {
            return Err(ApiError::bad_request(
                "format npy holds one label; use arrow, parquet or json for several",
            ));
        }
        let mut timing = Timing::default();
        let t0 = self.clock.now_ms();
        let mut pieces: Vec<Piece> = Vec::new();
        let mut total = 0u64;
        let first = labels.first().copied();
        // The bounds of a one-label answer of every point of its label, from its entry.
        let mut whole_bbox = None;
        for label in labels {
            let entry = find_entry(d, &l, label, &mut timing).await?;
            if single
                && options.bbox.is_none()
                && options.limit.is_none_or(|n| n >= entry.point_count)
            {
                whole_bbox = Some(entry.bbox.clone());
            }
            // A level of detail of a big label reads its coarse level when that suffices.
            let entry = l.manifest.entry_for_limit(&entry, options.limit);
            let meta = d.footer(&l, entry.file)?;
            let chunks = plan_label(&entry, meta, PIECE_BYTES)
                .map_err(|e| ReadError::unavailable(&d.name, e))?;
            let mut first_rank = 0;
            for chunk in chunks {
                let rows = chunk.rows.take;
                pieces.push(Piece {
                    label,
                    chunk,
                    first_rank,
                    count: entry.point_count,
                });
                first_rank += rows;
            }
            total += options
                .limit
                .map_or(entry.point_count, |n| n.min(entry.point_count));
        }
        timing.index += self.clock.now_ms() - t0;
        let encoder = match (options.format, options.shape) {
            (Format::Arrow, Shape::Rows) => {
                Encoder::Arrow(ArrowEncoder::new(&l.manifest.dims, whole_bbox.as_ref()))
            }
            (Format::Arrow, Shape::Columns) => {
                let types = stored_int64_dims(d, &l, &pieces)?
                    .iter()
                    .map(|&wide| {
                        if wide {
                            DataType::Int64
                        } else {
                            DataType::Int32
                        }
                    })
                    .collect();
                Encoder::Columns(ColumnsEncoder::new(
                    &l.manifest.dims,
                    types,
                    single.then_some(first).flatten(),
                    whole_bbox.as_ref(),
                )?)
            }
            (Format::Parquet, _) => {
                // Stored int64 coordinates stay int64, so whole row groups can be copied.
                let wide = stored_int64_dims(d, &l, &pieces)?
                    .first()
                    .copied()
                    .unwrap_or(false);
                let level = formats::answer_zstd_level(total);
                Encoder::Parquet(ParquetEncoder::new(
                    &l.manifest.dims,
                    wide,
                    level,
                    whole_bbox.as_ref(),
                )?)
            }
            (Format::Npy | Format::Json, _) => {
                if total > self.limits.max_points {
                    return Err(ApiError::too_large(format!(
                        "{total} points asked; the limit is {} points per {:?} answer (format=arrow or parquet streams any size)",
                        self.limits.max_points, options.format
                    )));
                }
                return self.buffered(d, &l, pieces, &options, single, timing).await;
            }
        };
        // Known before the answer starts unless a bbox filters the points.
        let count = options.bbox.is_none().then_some(total);
        let mut r = self
            .clone()
            .stream(name.to_string(), l, pieces, options, encoder, timing)
            .await?;
        set_point_count(r.headers_mut(), count);
        Ok(r)
    }

    /// Reads pieces and keeps the points the options select.
    async fn read_pieces(
        &self,
        d: &Dataset,
        l: &Loaded,
        pieces: &[Piece],
        options: &PointsOptions,
        timing: &mut Timing,
    ) -> Result<Vec<PointCloud>, ApiError> {
        let chunks: Vec<Chunk> = pieces.iter().map(|p| p.chunk.clone()).collect();
        let clouds = d
            .read_chunks(l, &chunks, timing, self.clock.as_ref())
            .await?;
        Ok(pieces
            .iter()
            .zip(clouds)
            .map(|(p, cloud)| select(p, cloud, options))
            .collect())
    }

    async fn buffered(
        &self,
        d: &Dataset,
        l: &Loaded,
        pieces: Vec<Piece>,
        options: &PointsOptions,
        single: bool,
        mut timing: Timing,
    ) -> Answer {
        let clouds = self
            .read_pieces(d, l, &pieces, options, &mut timing)
            .await?;
        let mut labels: Vec<(u64, PointCloud)> = Vec::new();
        for (piece, cloud) in pieces.iter().zip(clouds) {
            match labels.last_mut() {
                Some((label, whole)) if *label == piece.label && piece.first_rank > 0 => {
                    whole.extend(&cloud).map_err(ReadError::internal)?
                }
                _ => labels.push((piece.label, cloud)),
            }
        }
        self.encode_whole(&l.manifest.dims, &labels, options, single, timing)
    }

    /// Encodes whole labels as npy, JSON or Parquet.
    fn encode_whole(
        &self,
        dim_names: &[String],
        labels: &[(u64, PointCloud)],
        options: &PointsOptions,
        single: bool,
        mut timing: Timing,
    ) -> Answer {
        let t0 = self.clock.now_ms();
        let body = match options.format {
            Format::Npy => formats::npy(&labels[0].1),
            Format::Json if single => Bytes::from(
                serde_json::to_vec(&formats::json_label(labels[0].0, &labels[0].1))
                    .expect("JSON serialises"),
            ),
            Format::Json => formats::json_many(dim_names.len(), labels),
            Format::Parquet => formats::parquet(dim_names, labels)?,
            Format::Arrow => unreachable!("Arrow answers are streamed"),
        };
        timing.encode += self.clock.now_ms() - t0;
        let mut r = Response::new(Body::Full(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(options.format.content_type()),
        );
        let count = labels.iter().map(|(_, cloud)| cloud.len() as u64).sum();
        set_point_count(r.headers_mut(), Some(count));
        set_timing(r.headers_mut(), &timing);
        Ok(r)
    }

    /// Streams an Arrow or Parquet answer: the stored bytes are fetched [`FETCH_BYTES`] at a
    /// time and encoded a piece at a time; the first piece before answering (so its errors
    /// get a status), the rest as the client reads.
    async fn stream(
        self: Arc<Self>,
        name: String,
        l: Arc<Loaded>,
        pieces: Vec<Piece>,
        options: PointsOptions,
        mut encoder: Encoder,
        mut timing: Timing,
    ) -> Answer {
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
        let content_type = encoder.format().content_type();
        let mut stream = PieceStream {
            groups: groups.into_iter(),
            fetched: HashMap::new(),
            pending: VecDeque::new(),
        };
        self.encode_next(&name, &l, &mut stream, &options, &mut encoder, &mut timing)
            .await?;
        let head = encoder.take();
        let service = self.clone();
        let rest =
            futures::stream::unfold((stream, Some(encoder)), move |(mut stream, encoder)| {
                let (service, name, l, options) =
                    (service.clone(), name.clone(), l.clone(), options.clone());
                async move {
                    let mut encoder = encoder?;
                    let mut timing = Timing::default();
                    match service
                        .encode_next(&name, &l, &mut stream, &options, &mut encoder, &mut timing)
                        .await
                    {
                        Ok(true) => Some((Ok(encoder.take()), (stream, Some(encoder)))),
                        Ok(false) => {
                            Some((encoder.finish().map_err(ApiError::from), (stream, None)))
                        }
                        Err(e) => Some((Err(e), (stream, None))),
                    }
                }
            });
        let body: crate::body::ChunkStream = Box::pin(futures::StreamExt::flat_map(
            futures::StreamExt::chain(futures::stream::iter([Ok(head)]), rest),
            crate::body::chunks,
        ));
        let mut r = Response::new(Body::Stream(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        set_timing(r.headers_mut(), &timing);
        Ok(r)
    }

    /// Encodes the next piece of a streamed answer, fetching its group's bytes first when
    /// needed; `false` when no piece is left.
    async fn encode_next(
        &self,
        name: &str,
        l: &Loaded,
        stream: &mut PieceStream,
        options: &PointsOptions,
        encoder: &mut Encoder,
        timing: &mut Timing,
    ) -> Result<bool, ApiError> {
        let d = self.dataset(name)?;
        if stream.pending.is_empty() {
            let Some(group) = stream.groups.next() else {
                return Ok(false);
            };
            let chunks: Vec<Chunk> = group.iter().map(|p| p.chunk.clone()).collect();
            stream.fetched = d
                .fetch_chunks(l, &chunks, timing, self.clock.as_ref())
                .await?;
            stream.pending = group;
        }
        let piece = stream.pending.pop_front().expect("refilled above");
        let file = stream
            .fetched
            .get(&piece.chunk.file)
            .cloned()
            .unwrap_or_default();
        let t0 = self.clock.now_ms();
        match encoder {
            Encoder::Parquet(p) if encoder_copies(options) => {
                self.copy_piece(d, l, &piece, file, p)?;
                timing.encode += self.clock.now_ms() - t0;
            }
            Encoder::Columns(c) if encoder_copies(options) => {
                let columns =
                    d.decode_chunk_columns(l, piece.chunk.file, file, &piece.chunk.rows)?;
                let t1 = self.clock.now_ms();
                timing.decode += t1 - t0;
                c.push_columns(piece.label, columns.into_iter().map(column_array).collect())?;
                timing.encode += self.clock.now_ms() - t1;
            }
            encoder => {
                let cloud = d.decode_chunk(l, piece.chunk.file, file, &piece.chunk.rows)?;
                let t1 = self.clock.now_ms();
                timing.decode += t1 - t0;
                encoder.push(piece.label, select(&piece, cloud, options))?;
                timing.encode += self.clock.now_ms() - t1;
            }
        }
        Ok(true)
    }

    /// A piece of a whole label into a Parquet answer: row groups that hold only the label
    /// are copied as stored; the rows of shared row groups are decoded and encoded again.
    fn copy_piece(
        &self,
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

    async fn file(&self, name: &str, path: &str, headers: &HeaderMap, head: bool) -> Answer {
        let d = self.dataset(name)?;
        let l = d.loaded(self.clock.as_ref()).await?;
        // Only the files the manifest names are served: no path outside the dataset can match.
        let (size, etag) = if path == "manifest.json" {
            (l.manifest_bytes.len() as u64, l.manifest_etag.clone())
        } else {
            let f = l
                .manifest
                .all_files()
                .find(|f| f.path == path)
                .ok_or_else(|| {
                    ApiError::not_found(format!("no file {path:?} in dataset {name}"))
                })?;
            (f.size, f.etag.clone())
        };
        let mut r = Response::new(Body::Empty);
        let h = r.headers_mut();
        h.insert(header::ETAG, header_value(&format!("\"{etag}\"")));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        if none_match(
            headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok()),
            &etag,
        ) {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            return Ok(r);
        }
        let range_header = headers
            .get(header::RANGE)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::bad_request("Range is not ASCII"))
            })
            .transpose()?;
        let range = parse_range(range_header, size).map_err(|e| {
            if e.status == StatusCode::RANGE_NOT_SATISFIABLE {
                e.with_header(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{size}")),
                )
            } else {
                e
            }
        })?;
        let whole = 0..size;
        let span = range.clone().unwrap_or(whole);
        if let Some(rg) = &range {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{size}", rg.start, rg.end - 1)),
            );
        }
        r.headers_mut().insert(
            header::CONTENT_LENGTH,
            header_value(&(span.end - span.start).to_string()),
        );
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if path.ends_with(".json") {
                "application/json"
            } else {
                "application/octet-stream"
            }),
        );
        if head || span.is_empty() {
            return Ok(r);
        }
        *r.body_mut() = if path == "manifest.json" {
            Body::Full(
                l.manifest_bytes
                    .slice(span.start as usize..span.end as usize),
            )
        } else {
            file_body(d, path, span).await?
        };
        Ok(r)
    }
}

/// The routes of a VastDB table (docs/api.md; docs/vastdb.md).
impl Service {
    async fn route_vast(
        self: &Arc<Self>,
        v: &Arc<VastSource>,
        rest: &[&str],
        method: Method,
        query: Option<&str>,
        body: &Bytes,
    ) -> Answer {
        let get = method == Method::GET || method == Method::HEAD;
        match rest {
            [] if get => {
                let labels = v.labels().await?;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"name": v.name, "backend": "vastdb", "table": v.table(),
                        "layout": format!("{:?}", v.layout()).to_lowercase(),
                        "dims": v.dim_names().await?, "label_count": labels.len(),
                        "point_order": "xyz", "has_blocks": v.layout() == Layout::Pocaduck}),
                ))
            }
            ["labels"] if get => {
                let options = labels_options(query)?;
                let labels = v.labels().await?;
                let start = options
                    .after
                    .map_or(0, |a| labels.partition_point(|&l| l <= a));
                let page: Vec<u64> = labels[start..]
                    .iter()
                    .take(options.limit)
                    .copied()
                    .collect();
                let next = (page.len() == options.limit && start + page.len() < labels.len())
                    .then(|| page.last().map(u64::to_string))
                    .flatten();
                let page: Vec<String> = page.iter().map(u64::to_string).collect();
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"labels": page, "next_after": next}),
                ))
            }
            ["labels", label] if get => {
                let label = label_param(label)?;
                self.vast_known(v, label).await?;
                let mut timing = Timing::default();
                let mut points = v.points(label, &mut timing).await?;
                let (mut count, mut bbox) = (0u64, None::<pocaduck_edge_core::cloud::BBox>);
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
                set_timing(r.headers_mut(), &timing);
                Ok(r)
            }
            ["labels", label, "points"] if get => {
                let label = label_param(label)?;
                self.vast_points(v, vec![label], query, true).await
            }
            ["points"] if method == Method::POST => {
                let labels = self.body_labels(body)?;
                self.vast_points(v, labels, query, false).await
            }
            ["files", ..] if get => Err(ApiError::not_found(format!(
                "dataset {} is a VastDB table: it has no files",
                v.name
            ))),
            _ => Err(ApiError::method_not_allowed(format!(
                "{method} is not served here"
            ))),
        }
    }

    async fn vast_known(&self, v: &Arc<VastSource>, label: u64) -> Result<(), ApiError> {
        if v.has_label(label).await? {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "no label {label} in dataset {}",
                v.name
            )))
        }
    }

    async fn vast_points(
        self: &Arc<Self>,
        v: &Arc<VastSource>,
        labels: Vec<u64>,
        query: Option<&str>,
        single: bool,
    ) -> Answer {
        let dim_names = v.dim_names().await?;
        let options = points_options(query, dim_names.len())?;
        if options.format == Format::Npy && !single {
            return Err(ApiError::bad_request(
                "format npy holds one label; use arrow, parquet or json for several",
            ));
        }
        for &label in &labels {
            self.vast_known(v, label).await?;
        }
        let single = single.then(|| labels.first().copied()).flatten();
        let mut reader = VastReader {
            source: v.clone(),
            options: options.clone(),
            // A columnar table's columns pass through when they need no sampling or filter.
            pass_columns: options.format == Format::Arrow
                && options.shape == Shape::Columns
                && v.layout() == Layout::Columnar
                && encoder_copies(&options),
            labels: labels.into_iter().collect(),
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
                if total > self.limits.max_points {
                    return Err(ApiError::too_large(format!(
                        "over {} points asked; the limit is {} points per {:?} answer (format=arrow streams any size)",
                        self.limits.max_points, self.limits.max_points, options.format
                    )));
                }
                match whole.last_mut() {
                    Some((l, w)) if *l == label => w.extend(&cloud).map_err(ReadError::internal)?,
                    _ => whole.push((label, cloud)),
                }
            }
            let timing = std::mem::take(&mut reader.timing);
            return self.encode_whole(&dim_names, &whole, &options, single.is_some(), timing);
        }
        // Arrow: the first piece is read before answering, so its errors get a status.
        let mut encoder = match options.shape {
            Shape::Rows => Encoder::Arrow(ArrowEncoder::new(&dim_names, None)),
            Shape::Columns => Encoder::Columns(ColumnsEncoder::new(
                &dim_names,
                v.dim_types().await?,
                single,
                None,
            )?),
        };
        if let Some((label, piece)) = reader.next().await? {
            push_vast_piece(&mut encoder, label, piece)?;
        }
        let head = encoder.take();
        let timing = reader.timing.clone();
        let rest = futures::stream::unfold(Some((reader, encoder)), |state| async move {
            let (mut reader, mut encoder) = state?;
            match reader.next().await {
                Ok(Some((label, piece))) => match push_vast_piece(&mut encoder, label, piece) {
                    Ok(()) => Some((Ok(encoder.take()), Some((reader, encoder)))),
                    Err(e) => Some((Err(e), None)),
                },
                Ok(None) => Some((encoder.finish().map_err(ApiError::from), None)),
                Err(e) => Some((Err(e.into()), None)),
            }
        });
        let body: crate::body::ChunkStream = Box::pin(futures::StreamExt::flat_map(
            futures::StreamExt::chain(futures::stream::iter([Ok(head)]), rest),
            crate::body::chunks,
        ));
        let mut r = Response::new(Body::Stream(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(Format::Arrow.content_type()),
        );
        set_timing(r.headers_mut(), &timing);
        Ok(r)
    }
}

/// A piece of a label read from VastDB.
enum VastPiece {
    /// Points as `N × D` rows.
    Rows(PointCloud),
    /// A reply round's coordinate columns, as VastDB sent them.
    Columns(Vec<RecordBatch>),
}

/// Encodes a piece read from VastDB.
fn push_vast_piece(encoder: &mut Encoder, label: u64, piece: VastPiece) -> Result<(), ApiError> {
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

/// Reads labels from a VastDB table piece by piece, applying `limit` and `bbox`.
struct VastReader {
    source: Arc<VastSource>,
    options: PointsOptions,
    /// Hand out a columnar table's reply batches as they are (no `limit` or `bbox`).
    pass_columns: bool,
    labels: std::collections::VecDeque<u64>,
    /// The label being read: its points, the rank of the next point and its point count.
    current: Option<(u64, LabelPoints, u64, u64)>,
    timing: Timing,
}

impl VastReader {
    async fn next(&mut self) -> Result<Option<(u64, VastPiece)>, ReadError> {
        loop {
            let Some((label, points, rank, count)) = self.current.as_mut() else {
                let Some(label) = self.labels.pop_front() else {
                    return Ok(None);
                };
                let count = match self.options.limit {
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
            let mut cloud = match self.options.limit {
                Some(limit) => cloud.spread_sample(first_rank, *count, limit),
                None => cloud,
            };
            if let Some(b) = &self.options.bbox {
                cloud.retain(|point| b.contains(point));
            }
            return Ok(Some((*label, VastPiece::Rows(cloud))));
        }
    }
}

/// Whether `segments` name a route of the API (whatever the method).
fn is_route(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["v1", "datasets"]
            | ["v1", "datasets", _]
            | ["v1", "datasets", _, "labels" | "points"]
            | ["v1", "datasets", _, "labels", _]
            | ["v1", "datasets", _, "labels", _, "points"]
            | ["v1", "datasets", _, "files", _, ..]
    )
}

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

fn label_param(text: &str) -> Result<u64, ApiError> {
    parse_label(text).map_err(|e| ApiError::bad_label(e.to_string()))
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("generated header values are ASCII")
}

/// The header of a points answer that gives its number of points before they arrive, so a
/// client can size its output once; absent when unknown when the answer starts (a `bbox`
/// filter over a streamed answer, or a VastDB table's streamed answer).
pub const POINT_COUNT: &str = "pocaduck-point-count";

fn set_point_count(headers: &mut HeaderMap, count: Option<u64>) {
    if let Some(count) = count {
        headers.insert(POINT_COUNT, HeaderValue::from(count));
    }
}

fn set_timing(headers: &mut HeaderMap, timing: &Timing) {
    headers.insert("server-timing", header_value(&timing.header()));
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::Full(Bytes::from(
        serde_json::to_vec(value).expect("JSON values serialise"),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Bytes per step of a streamed file body.
const FILE_STEP_BYTES: u64 = 8 << 20;

/// Bytes `span` of a dataset's file as a body: fetched now when small (so a failure gets a
/// status), else streamed in steps of [`FILE_STEP_BYTES`].
async fn file_body(d: &Dataset, path: &str, span: std::ops::Range<u64>) -> Result<Body, ApiError> {
    if span.end - span.start <= FILE_STEP_BYTES {
        return Ok(Body::Full(d.read_range(path, span).await?));
    }
    let steps = d.stream_range(path, span, FILE_STEP_BYTES);
    Ok(Body::Stream(Box::pin(futures::StreamExt::map(
        steps,
        |step| step.map_err(ApiError::from),
    ))))
}

/// The JSON response of an error of request `request_id`.
fn error_response(e: &ApiError, request_id: &str) -> Response<Body> {
    let mut r = Response::new(Body::Full(Bytes::from(e.to_json(request_id))));
    *r.status_mut() = e.status;
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in &e.headers {
        headers.insert(name.clone(), value.clone());
    }
    r
}
