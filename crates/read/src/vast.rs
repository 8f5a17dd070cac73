//! The VastDB backend: a table served through the same read API as the edge layout. Each
//! read becomes a signed `GET ?data` query inside a transaction; the reply's per-column
//! Arrow streams are re-assembled by `pocaduck-edge-vastdb` and handed on batch by batch,
//! so a label streams through without being held (columnar layout). A label's reply can
//! also be handed on page by page as VastDB sent it ([`VastSource::reply_page`]), for a
//! client that de-frames it itself. The table layouts are `pocaduck-edge-core`'s
//! [`point_table`](pocaduck_edge_core::point_table).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use pocaduck_edge_core::point_table::{
    check_layout, columnar_cloud, coordinates, default_dim_names, describe, pocaduck_cloud,
    point_columns, PieceOrder,
};
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_vastdb::query::{self, Condition, Filter};
use pocaduck_edge_vastdb::{
    Credentials, Endpoint, Progress, QueryCursor, QuerySettings, TablePath,
};

use crate::error::ReadError;
use crate::store::Clock;
use crate::timing::Timing;
use crate::upstream::{ByteStream, HostBody, Task, Upstream};
use crate::vast_client::{QueryRun, VastClient};

pub use pocaduck_edge_core::point_table::Layout;

/// Seconds a table's label list is served before it is read again, unless configured.
pub const DEFAULT_LABELS_TTL_SECS: u64 = 60;

/// The table read unless another is named (PoCADuck's default).
pub const DEFAULT_TABLE: &str = "point_clouds";
/// The table layout unless another is named.
pub const DEFAULT_LAYOUT: Layout = Layout::Pocaduck;
/// Values per point unless another count is given.
pub const DEFAULT_DIMS: usize = 3;
/// Seconds a host waits for VastDB's next bytes before giving up, unless configured.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;

/// How many times larger a reply page is for readers that return whole labels (the `Query`
/// API, a client reading pass-through) than for the streamed answers: they hold the label
/// anyway, so fewer, larger replies cost them no memory and save a round trip (and a re-scan)
/// per page.
pub const WHOLE_LABEL_PAGE_FACTOR: u64 = 16;

/// Labels one query of several labels' points names (`label IN (…)`).
pub const LABELS_PER_QUERY: usize = 1000;

/// Retries of a request answered `503 SlowDown` or cut mid-reply, unless configured.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Rows per sub-split per reply, unless configured (the SDK's default page).
pub use pocaduck_edge_vastdb::paging::DEFAULT_LIMIT_ROWS;

/// Where the table is and how to read it.
#[derive(Debug, Clone)]
pub struct VastConfig {
    /// The endpoint, e.g. `http://vast.example:80`.
    pub endpoint: Endpoint,
    /// Keys to sign with (never logged or answered).
    pub credentials: Credentials,
    /// Bucket, schema and table.
    pub table: TablePath,
    /// The table layout.
    pub layout: Layout,
    /// Values per point, explicit (never guessed from data).
    pub dims: usize,
    /// Retries of a request answered `503 SlowDown` or cut mid-reply.
    pub max_retries: u32,
    /// Rows per sub-split per reply (bounds a reply round).
    pub limit_rows: u64,
}

/// A setting of a VastDB table, which each host names its own way (a flag, a variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSetting {
    /// The endpoint URL.
    Endpoint,
    /// The access key.
    AccessKey,
    /// The secret key.
    SecretKey,
    /// The bucket holding the schema.
    Bucket,
    /// The schema holding the table.
    Schema,
    /// The table.
    Table,
    /// Values per point.
    Dims,
    /// Rows per sub-split per reply.
    LimitRows,
    /// Seconds to wait for VastDB's next bytes.
    ReadTimeout,
}

/// A table's settings as a host reads them, before they are checked ([`TableSettings::check`]);
/// a missing one is `None` or empty.
#[derive(Debug, Clone, Default)]
pub struct TableSettings {
    /// The endpoint URL.
    pub endpoint: String,
    /// The access key.
    pub access_key: Option<String>,
    /// The secret key.
    pub secret_key: Option<String>,
    /// The bucket.
    pub bucket: Option<String>,
    /// The schema.
    pub schema: Option<String>,
    /// The table ([`DEFAULT_TABLE`] when unset).
    pub table: Option<String>,
    /// The table layout ([`DEFAULT_LAYOUT`] when unset).
    pub layout: Option<Layout>,
    /// Values per point ([`DEFAULT_DIMS`] when unset).
    pub dims: Option<u64>,
    /// Rows per sub-split per reply ([`DEFAULT_LIMIT_ROWS`] when unset).
    pub limit_rows: Option<u64>,
    /// Seconds to wait for VastDB's next bytes ([`DEFAULT_READ_TIMEOUT_SECS`] when unset).
    pub read_timeout_secs: Option<u64>,
}

/// A table's settings, checked: where the table is, how to read it, and how long to wait.
#[derive(Debug, Clone)]
pub struct CheckedTable {
    /// The table's name, as the dataset's unless another is given.
    pub table_name: String,
    /// Where the table is and how to read it.
    pub config: VastConfig,
    /// Seconds to wait for VastDB's next bytes.
    pub read_timeout_secs: u64,
}

impl TableSettings {
    /// Checks the settings: the one that is missing or wrong, and why (never a key's value).
    pub fn check(self) -> Result<CheckedTable, (TableSetting, String)> {
        let endpoint =
            Endpoint::parse(&self.endpoint).map_err(|e| (TableSetting::Endpoint, e.to_string()))?;
        let given = |value: Option<String>, setting: TableSetting| {
            value
                .filter(|v| !v.is_empty())
                .ok_or((setting, "not set".to_owned()))
        };
        let credentials = Credentials::new(
            given(self.access_key, TableSetting::AccessKey)?,
            given(self.secret_key, TableSetting::SecretKey)?,
        );
        let table_name = self.table.unwrap_or_else(|| DEFAULT_TABLE.to_owned());
        let table = TablePath::new(
            &given(self.bucket, TableSetting::Bucket)?,
            &given(self.schema, TableSetting::Schema)?,
            &table_name,
        )
        .map_err(|e| (TableSetting::Table, e.to_string()))?;
        let at_least_one = |value: Option<u64>, default: u64, setting: TableSetting| match value
            .unwrap_or(default)
        {
            0 => Err((setting, "must be at least 1".to_owned())),
            n => Ok(n),
        };
        let dims = at_least_one(self.dims, DEFAULT_DIMS as u64, TableSetting::Dims)?;
        let limit_rows =
            at_least_one(self.limit_rows, DEFAULT_LIMIT_ROWS, TableSetting::LimitRows)?;
        let read_timeout_secs = at_least_one(
            self.read_timeout_secs,
            DEFAULT_READ_TIMEOUT_SECS,
            TableSetting::ReadTimeout,
        )?;
        Ok(CheckedTable {
            table_name,
            config: VastConfig {
                endpoint,
                credentials,
                table,
                layout: self.layout.unwrap_or(DEFAULT_LAYOUT),
                dims: dims as usize,
                max_retries: DEFAULT_MAX_RETRIES,
                limit_rows,
            },
            read_timeout_secs,
        })
    }
}

/// A VastDB table served as a dataset.
pub struct VastSource {
    /// Its name in URLs.
    pub name: String,
    config: VastConfig,
    client: Arc<VastClient>,
    schema: Mutex<Option<SchemaRef>>,
    labels: Mutex<Option<(Arc<Vec<u64>>, f64)>>,
    /// Milliseconds the label list is served before it is read again.
    labels_ttl_ms: f64,
    /// Held while the label list is read.
    reading_labels: futures::lock::Mutex<()>,
    /// Set while a stale label list is read again in the background.
    refreshing_labels: AtomicBool,
}

impl VastSource {
    /// A table served as dataset `name`.
    pub fn new(
        name: impl Into<String>,
        config: VastConfig,
        upstream: Arc<dyn Upstream>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let client = VastClient::new(
            config.endpoint.clone(),
            config.credentials.clone(),
            upstream,
            clock,
            config.max_retries,
        );
        Self {
            name: name.into(),
            config,
            client: Arc::new(client),
            schema: Mutex::new(None),
            labels: Mutex::new(None),
            labels_ttl_ms: DEFAULT_LABELS_TTL_SECS as f64 * 1000.0,
            reading_labels: futures::lock::Mutex::new(()),
            refreshing_labels: AtomicBool::new(false),
        }
    }

    /// The source, serving its label list `secs` seconds before reading it again.
    pub fn with_labels_ttl_secs(mut self, secs: u64) -> Self {
        self.labels_ttl_ms = secs as f64 * 1000.0;
        self
    }

    /// The table layout.
    pub fn layout(&self) -> Layout {
        self.config.layout
    }

    /// The table, as `bucket/schema/table`.
    pub fn table(&self) -> String {
        self.config.table.to_string()
    }

    /// The dim names of answers: the coordinate columns (columnar) or x, y, z.
    pub async fn dim_names(&self) -> Result<Vec<String>, ReadError> {
        let schema = self.schema().await?;
        Ok(match self.config.layout {
            Layout::Columnar => coordinates(&schema).map(|f| f.name().clone()).collect(),
            Layout::Pocaduck => default_dim_names(self.config.dims),
        })
    }

    /// The integer type of each dim's answer column: int32 for a columnar table's int32
    /// column, else int64.
    pub async fn dim_types(&self) -> Result<Vec<DataType>, ReadError> {
        let schema = self.schema().await?;
        Ok(match self.config.layout {
            Layout::Columnar => coordinates(&schema)
                .map(|f| match f.data_type() {
                    DataType::Int32 => DataType::Int32,
                    _ => DataType::Int64,
                })
                .collect(),
            Layout::Pocaduck => vec![DataType::Int64; self.config.dims],
        })
    }

    /// The table's columns, read once and checked against the layout.
    pub async fn schema(&self) -> Result<SchemaRef, ReadError> {
        if let Some(schema) = self.schema.lock().expect("schema lock").clone() {
            return Ok(schema);
        }
        let mut timing = Timing::default();
        let txid = self.client.begin(&mut timing).await?;
        let columns = self
            .client
            .columns(txid, &self.config.table, &mut timing)
            .await;
        self.client.commit(txid, &mut timing).await?;
        let schema = Arc::new(columns?);
        check_layout(&schema, self.config.layout, self.config.dims).map_err(|reason| {
            ReadError::unavailable(&self.name, format!("table {} {reason}", self.config.table))
        })?;
        *self.schema.lock().expect("schema lock") = Some(schema.clone());
        Ok(schema)
    }

    /// Starts a query in its own transaction, committed once the rows are read.
    async fn select(
        &self,
        columns: &[&str],
        filter: &Filter,
        timing: &mut Timing,
    ) -> Result<QueryRun, ReadError> {
        let schema = self.schema().await?;
        let txid = self.client.begin(timing).await?;
        let settings = self.settings();
        match self
            .client
            .query(txid, &self.config.table, &schema, columns, filter, settings)
        {
            Ok(run) => Ok(run.committing()),
            Err(e) => {
                let _ = self.client.rollback(txid, timing).await;
                Err(e)
            }
        }
    }

    /// How every query of the table is split and paged.
    fn settings(&self) -> QuerySettings {
        QuerySettings {
            // One sub-split keeps rows in table order, which is each label's point order.
            num_sub_splits: 1,
            limit_rows: self.config.limit_rows,
            ..QuerySettings::default()
        }
    }

    /// One page of the reply to a query of `label`'s points, as VastDB sends it (pages
    /// [`WHOLE_LABEL_PAGE_FACTOR`] times the streamed answers'): from the start, or from
    /// `resume` (the row ids where each sub-split resumes, as
    /// [`Progress::resume_text`] writes them, which the previous page's rounds give). The
    /// page runs in a transaction of its own, which [`PageEnd::run`] closes once the body is
    /// read.
    pub async fn reply_page(
        self: &Arc<Self>,
        label: u64,
        resume: Option<&str>,
        timing: &mut Timing,
    ) -> Result<ReplyPage, ReadError> {
        let table_schema = self.schema().await?;
        let settings = QuerySettings {
            limit_rows: self
                .config
                .limit_rows
                .saturating_mul(WHOLE_LABEL_PAGE_FACTOR),
            ..self.settings()
        };
        let progress = match resume {
            Some(text) => Progress::resumed(&settings, text).map_err(ReadError::bad_request)?,
            None => Progress::new(&settings),
        };
        if progress.is_done() {
            return Err(ReadError::bad_request(
                "every sub-split of the resume point has ended: no page follows",
            ));
        }
        let columns = point_columns(&table_schema, self.config.layout);
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let encoded = query::encode(&table_schema, &columns, &label_filter(label))
            .map_err(ReadError::internal)?;
        let schema = describe(
            &encoded.response_schema,
            self.config.layout,
            self.config.dims,
        );
        let mut cursor =
            QueryCursor::resuming(self.config.table.clone(), encoded.body, settings, progress);
        let txid = self.client.begin(timing).await?;
        let request = cursor.next_request(txid).expect("a page is left");
        let end = PageEnd {
            client: self.client.clone(),
            txid: Some(txid),
        };
        match self.client.send_passing_on(&request, timing).await {
            Ok(response) => Ok(ReplyPage {
                schema: Arc::new(schema),
                sub_splits: settings.num_sub_splits,
                host_body: response.extensions().get::<HostBody>().copied(),
                body: response.into_body(),
                end,
            }),
            Err(e) => {
                end.run().await?;
                Err(e)
            }
        }
    }

    /// All labels of the table, ascending. The list is read once, then served as it is:
    /// the first request to find it older than its time to live has it read again in the
    /// background (through the host's [`Upstream::spawn`]; inline where the host cannot), and
    /// the list goes on being served meanwhile, and while reading it fails. Only the first
    /// reading is waited for: callers that find no list wait for that one reading rather than
    /// scan the table again.
    pub async fn labels(self: &Arc<Self>) -> Result<Arc<Vec<u64>>, ReadError> {
        if let Some((labels, fresh)) = self.cached_labels() {
            if !fresh && !self.refreshing_labels.swap(true, Ordering::AcqRel) {
                let source = Arc::clone(self);
                let refresh: Task = Box::pin(async move {
                    // On failure the list stays as it is; the next request tries again.
                    let _ = source.read_labels().await;
                    source.refreshing_labels.store(false, Ordering::Release);
                });
                if let Some(inline) = self.client.spawn(refresh) {
                    inline.await;
                    return Ok(self.cached_labels().map_or(labels, |(l, _)| l));
                }
            }
            return Ok(labels);
        }
        let _reading = self.reading_labels.lock().await;
        if let Some((labels, _)) = self.cached_labels() {
            return Ok(labels);
        }
        self.read_labels().await
    }

    /// Reads the label list (a scan of the label column) and keeps it.
    async fn read_labels(&self) -> Result<Arc<Vec<u64>>, ReadError> {
        let mut timing = Timing::default();
        let mut run = self.select(&["label"], &Filter::all(), &mut timing).await?;
        let mut labels = Vec::new();
        while let Some(batch) = run.next(&mut timing).await? {
            labels.extend(label_values(&batch)?);
        }
        labels.sort_unstable();
        labels.dedup();
        let labels = Arc::new(labels);
        *self.labels.lock().expect("labels lock") =
            Some((labels.clone(), self.client.clock().now_ms()));
        Ok(labels)
    }

    /// The label list when it has been read, and whether it is within its time to live.
    fn cached_labels(&self) -> Option<(Arc<Vec<u64>>, bool)> {
        let (labels, at) = self.labels.lock().expect("labels lock").clone()?;
        let fresh = self.client.clock().now_ms() - at < self.labels_ttl_ms;
        Some((labels, fresh))
    }

    /// Whether `label` is in the table.
    pub async fn has_label(self: &Arc<Self>, label: u64) -> Result<bool, ReadError> {
        Ok(self.labels().await?.binary_search(&label).is_ok())
    }

    /// The number of distinct points of `label` (a count-only query for the columnar layout).
    pub async fn count(
        self: &Arc<Self>,
        label: u64,
        timing: &mut Timing,
    ) -> Result<u64, ReadError> {
        if self.config.layout == Layout::Pocaduck {
            let mut points = self.points(label, timing).await?;
            let mut n = 0;
            while let Some(cloud) = points.next(timing).await? {
                n += cloud.len() as u64;
            }
            return Ok(n);
        }
        let mut run = self.select(&[], &label_filter(label), timing).await?;
        let mut n = 0;
        while let Some(batch) = run.next(timing).await? {
            n += batch.num_rows() as u64;
        }
        Ok(n)
    }

    /// `label`'s points in stored order, piece by piece (one piece, de-duplicated and sorted,
    /// for the PoCADuck layout).
    pub async fn points(
        self: &Arc<Self>,
        label: u64,
        timing: &mut Timing,
    ) -> Result<LabelPoints, ReadError> {
        let columns = point_columns(&self.schema().await?, self.config.layout);
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let run = self.select(&columns, &label_filter(label), timing).await?;
        Ok(LabelPoints {
            run,
            label,
            dims: self.config.dims,
            layout: self.config.layout,
            done: false,
            order: PieceOrder::default(),
        })
    }

    /// The points of each of `labels` (distinct), read by one query per
    /// [`LABELS_PER_QUERY`] labels (`label IN (…)`) rather than one per label: each label's
    /// points whole (in stored order; de-duplicated and sorted for the PoCADuck layout).
    /// Fails as [`ReadError::TooLarge`] once more than `max_points` stored points have
    /// arrived, before holding more.
    pub async fn points_of(
        self: &Arc<Self>,
        labels: &[u64],
        max_points: u64,
        timing: &mut Timing,
    ) -> Result<HashMap<u64, PointCloud>, ReadError> {
        let schema = self.schema().await?;
        let mut columns = vec!["label".to_owned()];
        columns.extend(point_columns(&schema, self.config.layout));
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut rows: HashMap<u64, Vec<RecordBatch>> = HashMap::new();
        let mut held = 0u64;
        for batch in labels.chunks(LABELS_PER_QUERY) {
            let filter = Filter::all().and_any("label", batch.iter().map(|&l| Condition::eq(l)));
            let mut run = self.select(&columns, &filter, timing).await?;
            while let Some(batch) = run.next(timing).await? {
                held += stored_points(&batch, self.config.layout, self.config.dims)?;
                if held > max_points {
                    return Err(ReadError::TooLarge {
                        message: format!("the labels hold more than {max_points} points"),
                    });
                }
                for (label, run) in label_runs(&batch)? {
                    rows.entry(label).or_default().push(run);
                }
            }
        }
        let dims = self.config.dims;
        labels
            .iter()
            .map(|&label| {
                let batches = rows.remove(&label).unwrap_or_default();
                let cloud = match self.config.layout {
                    Layout::Columnar => columnar_cloud(&batches, dims).map(|(cloud, _)| cloud),
                    Layout::Pocaduck => pocaduck_cloud(&batches, dims),
                }
                .map_err(|e| ReadError::upstream(format!("the rows of label {label}: {e}")))?;
                Ok((label, cloud))
            })
            .collect()
    }

    /// PoCADuck block ids of `label` with their point counts (none in the columnar layout).
    pub async fn blocks(
        self: &Arc<Self>,
        label: u64,
        timing: &mut Timing,
    ) -> Result<Vec<(String, u64)>, ReadError> {
        if self.config.layout == Layout::Columnar {
            return Ok(Vec::new());
        }
        let mut run = self
            .select(&["block_id", "points"], &label_filter(label), timing)
            .await?;
        let mut blocks: BTreeMap<String, u64> = BTreeMap::new();
        while let Some(batch) = run.next(timing).await? {
            // The columns are typed as the table lists them: checked, not assumed.
            let (Some(ids), Some(lists)) = (
                batch.column(0).as_string_opt::<i32>(),
                batch.column(1).as_list_opt::<i32>(),
            ) else {
                return Err(ReadError::unavailable(
                    &self.name,
                    format!(
                        "table {}: block_id is {} and points {}, not utf8 and a list",
                        self.config.table,
                        batch.column(0).data_type(),
                        batch.column(1).data_type()
                    ),
                ));
            };
            for i in 0..batch.num_rows() {
                // A row without a block id (e.g. loaded from an edge dataset) is in no block.
                if ids.is_null(i) {
                    continue;
                }
                let values = lists.value_length(i) as u64;
                *blocks.entry(ids.value(i).to_owned()).or_default() +=
                    values / self.config.dims as u64;
            }
        }
        Ok(blocks.into_iter().collect())
    }
}

/// The points `batch` holds (its first column the label): a row each in the columnar
/// layout, its `points` list's values over `dims` in the PoCADuck one.
fn stored_points(batch: &RecordBatch, layout: Layout, dims: usize) -> Result<u64, ReadError> {
    match layout {
        Layout::Columnar => Ok(batch.num_rows() as u64),
        Layout::Pocaduck => {
            let lists = batch
                .columns()
                .get(1)
                .and_then(|c| c.as_list_opt::<i32>())
                .ok_or_else(|| ReadError::upstream("a reply without a points list column"))?;
            let offsets = lists.value_offsets();
            let values = offsets[offsets.len() - 1] - offsets[0];
            Ok(u64::try_from(values).unwrap_or(0) / dims as u64)
        }
    }
}

fn label_filter(label: u64) -> Filter {
    Filter::all().and("label", Condition::eq(label))
}

/// The runs of rows of one label in `batch` (its first column the label), each without the
/// label column: slices of the batch, not copies.
fn label_runs(batch: &RecordBatch) -> Result<Vec<(u64, RecordBatch)>, ReadError> {
    let labels = label_values(batch)?;
    let points: Vec<usize> = (1..batch.num_columns()).collect();
    let points = batch.project(&points).map_err(ReadError::internal)?;
    let mut runs = Vec::new();
    let mut start = 0;
    for end in 1..=labels.len() {
        if end == labels.len() || labels[end] != labels[start] {
            runs.push((labels[start], points.slice(start, end - start)));
            start = end;
        }
    }
    Ok(runs)
}

fn label_values(batch: &RecordBatch) -> Result<Vec<u64>, ReadError> {
    let column = batch.column(0);
    match column.data_type() {
        DataType::UInt64 => Ok(column.as_primitive::<UInt64Type>().values().to_vec()),
        DataType::Int64 => Ok(column
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|&v| v as u64)
            .collect()),
        other => Err(ReadError::upstream(format!("labels arrived as {other}"))),
    }
}

/// One page of a query's reply as VastDB sent it, and what a client needs to de-frame it.
pub struct ReplyPage {
    /// The reply's columns, with the table layout and dims in their metadata
    /// ([`describe`]).
    pub schema: SchemaRef,
    /// The number of sub-splits the reply multiplexes.
    pub sub_splits: u32,
    /// The reply's bytes, unchanged; none when the host keeps them ([`ReplyPage::host_body`]).
    pub body: ByteStream,
    /// The host's own copy of the reply's bytes, which it sends on as they are, when its
    /// upstream kept them to itself; `body` then ends once they have been sent.
    pub host_body: Option<HostBody>,
    /// Closes the page's transaction.
    pub end: PageEnd,
}

/// The transaction of a [`ReplyPage`], to close once its body is read; dropped without
/// [`PageEnd::run`] (a client gone mid-page), it rolls back in the background.
pub struct PageEnd {
    client: Arc<VastClient>,
    txid: Option<u64>,
}

impl PageEnd {
    /// Rolls the page's transaction back: it only read.
    pub async fn run(mut self) -> Result<(), ReadError> {
        match self.txid.take() {
            Some(txid) => self.client.rollback(txid, &mut Timing::default()).await,
            None => Ok(()),
        }
    }
}

impl Drop for PageEnd {
    fn drop(&mut self) {
        if let Some(txid) = self.txid.take() {
            self.client.roll_back_later(txid);
        }
    }
}

/// A label's points from a query, as point clouds.
pub struct LabelPoints {
    run: QueryRun,
    label: u64,
    dims: usize,
    layout: Layout,
    done: bool,
    order: PieceOrder,
}

impl LabelPoints {
    /// The next piece of points, or `None` at the end.
    pub async fn next(&mut self, timing: &mut Timing) -> Result<Option<PointCloud>, ReadError> {
        if self.done {
            return Ok(None);
        }
        match self.layout {
            Layout::Columnar => match self.run.next_round(timing).await? {
                Some(batches) => {
                    let (cloud, ascending) =
                        columnar_cloud(&batches, self.dims).map_err(ReadError::upstream)?;
                    self.order.follow(&cloud, ascending);
                    Ok(Some(cloud))
                }
                None => {
                    self.done = true;
                    Ok(None)
                }
            },
            Layout::Pocaduck => {
                let mut batches = Vec::new();
                while let Some(batch) = self.run.next(timing).await? {
                    batches.push(batch);
                }
                self.done = true;
                let cloud = pocaduck_cloud(&batches, self.dims).map_err(|e| {
                    ReadError::upstream(format!("the rows of label {}: {e}", self.label))
                })?;
                Ok(Some(cloud))
            }
        }
    }

    /// The next reply round of a columnar table as VastDB sent it, one batch of coordinate
    /// columns per sub-stream message, or `None` at the end (no order check).
    pub async fn next_batches(
        &mut self,
        timing: &mut Timing,
    ) -> Result<Option<Vec<RecordBatch>>, ReadError> {
        if self.layout != Layout::Columnar {
            return Err(ReadError::internal(
                "only a columnar table's batches pass through",
            ));
        }
        if self.done {
            return Ok(None);
        }
        let round = self.run.next_round(timing).await?;
        self.done = round.is_none();
        Ok(round)
    }

    /// Whether the points handed out so far are strictly ascending, each piece after the
    /// one before: PoCADuck's order, so they need no sorting.
    pub fn ascending(&self) -> bool {
        self.order.ascending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TableSettings {
        TableSettings {
            endpoint: "http://vast.example:8080".to_owned(),
            access_key: Some("AKIA".to_owned()),
            secret_key: Some("secret".to_owned()),
            bucket: Some("b".to_owned()),
            schema: Some("s".to_owned()),
            ..TableSettings::default()
        }
    }

    #[test]
    fn unset_settings_take_the_defaults() {
        let checked = settings().check().unwrap();
        assert_eq!(checked.table_name, DEFAULT_TABLE);
        assert_eq!(
            checked.config.table.to_string(),
            format!("b/s/{DEFAULT_TABLE}")
        );
        assert_eq!(checked.config.layout, DEFAULT_LAYOUT);
        assert_eq!(checked.config.dims, DEFAULT_DIMS);
        assert_eq!(checked.config.limit_rows, DEFAULT_LIMIT_ROWS);
        assert_eq!(checked.read_timeout_secs, DEFAULT_READ_TIMEOUT_SECS);
    }

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut TableSettings);
        let cases: [(Spoil, TableSetting); 9] = [
            (
                |s| s.endpoint = "vast.example".into(),
                TableSetting::Endpoint,
            ),
            (|s| s.access_key = None, TableSetting::AccessKey),
            (
                |s| s.secret_key = Some(String::new()),
                TableSetting::SecretKey,
            ),
            (|s| s.bucket = None, TableSetting::Bucket),
            (|s| s.schema = Some(String::new()), TableSetting::Schema),
            (|s| s.table = Some("a/b".into()), TableSetting::Table),
            (|s| s.dims = Some(0), TableSetting::Dims),
            (|s| s.limit_rows = Some(0), TableSetting::LimitRows),
            (|s| s.read_timeout_secs = Some(0), TableSetting::ReadTimeout),
        ];
        for (spoil, setting) in cases {
            let mut s = settings();
            spoil(&mut s);
            let (named, why) = s.check().unwrap_err();
            assert_eq!(named, setting, "{why}");
            assert!(!why.contains("secret"), "{why}");
        }
    }
}
