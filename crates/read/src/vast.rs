//! The VastDB backend: a table served through the same read API as the edge layout. Each
//! read becomes a signed `GET ?data` query inside a transaction; the reply's per-column
//! Arrow streams are re-assembled by `pocaduck-edge-vastdb` and handed on batch by batch,
//! so a label streams through without being held (columnar layout).
//!
//! Two table layouts:
//! * `columnar` (what `pocaduck-edge vastdb load` writes): `label uint64` and one integer
//!   column per dim, one row per distinct point, sorted by label then x, y, z;
//! * `pocaduck` (PoCADuck's `dev` layout): `label uint64, block_id string,
//!   points list<int64>` with several rows per label, each a flat run of `N × D` values.
//!   Every row of a label is read and the points are de-duplicated, as `get_points` does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use pocaduck_edge_core::cloud::row_before;
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_vastdb::query::{Condition, Filter};
use pocaduck_edge_vastdb::{Credentials, Endpoint, QuerySettings, TablePath};

use crate::error::ReadError;
use crate::store::Clock;
use crate::timing::Timing;
use crate::upstream::Upstream;
use crate::vast_client::{QueryRun, VastClient};

/// Milliseconds a table's label list is reused before it is read again.
const LABELS_TTL_MS: f64 = 60_000.0;

/// How the points are laid out in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `label, x, y, z, …`: one row per distinct point, sorted.
    Columnar,
    /// `label, block_id, points list<int64>`: several rows per label.
    Pocaduck,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Columnar => "columnar",
            Layout::Pocaduck => "pocaduck",
        })
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "columnar" => Ok(Layout::Columnar),
            "pocaduck" => Ok(Layout::Pocaduck),
            other => Err(format!(
                "unknown table layout {other:?} (columnar or pocaduck)"
            )),
        }
    }
}

/// The table read unless another is named (PoCADuck's default).
pub const DEFAULT_TABLE: &str = "point_clouds";
/// The table layout unless another is named.
pub const DEFAULT_LAYOUT: Layout = Layout::Pocaduck;
/// Values per point unless another count is given.
pub const DEFAULT_DIMS: usize = 3;
/// Seconds a host waits for VastDB's next bytes before giving up, unless configured.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;

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

/// A VastDB table served as a dataset.
pub struct VastSource {
    /// Its name in URLs.
    pub name: String,
    config: VastConfig,
    client: Arc<VastClient>,
    schema: Mutex<Option<SchemaRef>>,
    labels: Mutex<Option<(Arc<Vec<u64>>, f64)>>,
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
        }
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
        let settings = QuerySettings {
            // One sub-split keeps rows in table order, which is each label's point order.
            num_sub_splits: 1,
            limit_rows: self.config.limit_rows,
            ..QuerySettings::default()
        };
        Ok(self
            .client
            .query(txid, &self.config.table, &schema, columns, filter, settings)?
            .committing())
    }

    /// All labels of the table, ascending (read once a minute at most).
    pub async fn labels(self: &Arc<Self>) -> Result<Arc<Vec<u64>>, ReadError> {
        if let Some((labels, at)) = self.labels.lock().expect("labels lock").clone() {
            if self.client.clock().now_ms() - at < LABELS_TTL_MS {
                return Ok(labels);
            }
        }
        let mut timing = Timing::default();
        let mut run = self.select(&["label"], &Filter::all(), &mut timing).await?;
        let mut labels = Vec::new();
        while let Some(batch) = run.next(&mut timing).await? {
            labels.extend(label_values(&batch)?);
            labels.sort_unstable();
            labels.dedup();
        }
        let labels = Arc::new(labels);
        *self.labels.lock().expect("labels lock") =
            Some((labels.clone(), self.client.clock().now_ms()));
        Ok(labels)
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
        let columns: Vec<String> = match self.config.layout {
            Layout::Columnar => self.dim_names().await?,
            Layout::Pocaduck => vec!["points".to_owned()],
        };
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let run = self.select(&columns, &label_filter(label), timing).await?;
        Ok(LabelPoints {
            run,
            label,
            dims: self.config.dims,
            layout: self.config.layout,
            done: false,
            order: Order::default(),
        })
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
            let ids = batch.column(0).as_string::<i32>();
            let lists = batch.column(1).as_list::<i32>();
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

fn label_filter(label: u64) -> Filter {
    Filter::all().and("label", Condition::eq(label))
}

/// `x, y, z` for three dims, `d0, d1, …` otherwise.
pub fn default_dim_names(dims: usize) -> Vec<String> {
    if dims == 3 {
        ["x", "y", "z"].map(String::from).to_vec()
    } else {
        (0..dims).map(|d| format!("d{d}")).collect()
    }
}

fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer()
}

/// The coordinate columns of a columnar table: every column but `label`.
fn coordinates(schema: &SchemaRef) -> impl Iterator<Item = &arrow_schema::FieldRef> {
    schema.fields().iter().filter(|f| f.name() != "label")
}

/// Checks the table's columns against the layout and the dims.
pub fn check_layout(schema: &SchemaRef, layout: Layout, dims: usize) -> Result<(), String> {
    let label = schema
        .field_with_name("label")
        .map_err(|_| "has no label column".to_owned())?;
    if !matches!(label.data_type(), DataType::UInt64 | DataType::Int64) {
        return Err(format!(
            "has label of type {}, not uint64",
            label.data_type()
        ));
    }
    match layout {
        Layout::Columnar => {
            let coords: Vec<_> = coordinates(schema).collect();
            if coords.len() != dims {
                return Err(format!(
                    "has {} coordinate columns, not {dims}",
                    coords.len()
                ));
            }
            if let Some(f) = coords.iter().find(|f| !is_integer(f.data_type())) {
                return Err(format!("has column {} of type {}", f.name(), f.data_type()));
            }
        }
        Layout::Pocaduck => {
            let points = schema
                .field_with_name("points")
                .map_err(|_| "has no points column (pocaduck layout)".to_owned())?;
            let ok = matches!(points.data_type(), DataType::List(item) if item.data_type() == &DataType::Int64);
            if !ok {
                return Err(format!(
                    "has points of type {}, not list<int64>",
                    points.data_type()
                ));
            }
            schema
                .field_with_name("block_id")
                .map_err(|_| "has no block_id column (pocaduck layout)".to_owned())?;
        }
    }
    Ok(())
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

/// A label's points from a query, as point clouds.
pub struct LabelPoints {
    run: QueryRun,
    label: u64,
    dims: usize,
    layout: Layout,
    done: bool,
    order: Order,
}

/// Whether a sequence of pieces is strictly ascending, point after point.
#[derive(Debug)]
struct Order {
    ascending: bool,
    /// The last point so far.
    last: Vec<i64>,
}

impl Default for Order {
    fn default() -> Self {
        Self {
            ascending: true,
            last: Vec::new(),
        }
    }
}

impl Order {
    /// Takes in the next piece, `ascending` telling whether it is in itself.
    fn follow(&mut self, piece: &PointCloud, ascending: bool) {
        let Some(first) = piece.rows().next() else {
            return;
        };
        self.ascending &= ascending && (self.last.is_empty() || self.last.as_slice() < first);
        let tail = piece.values().len() - piece.dims();
        self.last = piece.values()[tail..].to_vec();
    }
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
                    let (cloud, ascending) = columnar_cloud(&batches, self.dims)?;
                    self.order.follow(&cloud, ascending);
                    Ok(Some(cloud))
                }
                None => {
                    self.done = true;
                    Ok(None)
                }
            },
            Layout::Pocaduck => {
                // Each batch's rows lie one after another in its list values: they are kept
                // as they are, then joined once into a vector of the right size.
                let mut spans = Vec::new();
                while let Some(batch) = self.run.next(timing).await? {
                    let lists = batch.column(0).as_list::<i32>();
                    for row in lists.offsets().windows(2) {
                        let len = (row[1] - row[0]) as usize;
                        if len % self.dims != 0 {
                            return Err(ReadError::upstream(format!(
                                "a row of label {} holds {len} values, not a multiple of {} dims",
                                self.label, self.dims
                            )));
                        }
                    }
                    let offsets = lists.value_offsets();
                    let (first, last) = (offsets[0] as usize, offsets[lists.len()] as usize);
                    let values = lists.values().as_primitive::<Int64Type>();
                    spans.push(values.values().slice(first, last - first));
                }
                let mut values = Vec::with_capacity(spans.iter().map(|s| s.len()).sum());
                for span in &spans {
                    values.extend_from_slice(span);
                }
                self.done = true;
                let mut cloud = PointCloud::new(self.dims, values).map_err(ReadError::upstream)?;
                cloud.sort_unique();
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
        self.order.ascending
    }
}

/// Interleaves the coordinate columns of a round's batches into `N × D` points, and tells
/// whether those are strictly ascending (for rows of 3, checked in the same pass).
fn columnar_cloud(batches: &[RecordBatch], dims: usize) -> Result<(PointCloud, bool), ReadError> {
    let n = batches.iter().map(RecordBatch::num_rows).sum::<usize>();
    if dims == 3 {
        let mut ascending = true;
        let mut rows: Vec<i64> = Vec::with_capacity(n * 3);
        let mut before: Option<[i64; 3]> = None;
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            // Columns the loader wrote as int32 are widened on the way, not cast first.
            if (0..3).all(|d| {
                batch.column(d).data_type() == &DataType::Int32 && batch.column(d).null_count() == 0
            }) {
                let columns = [0, 1, 2].map(|d| {
                    batch
                        .column(d)
                        .as_primitive::<Int32Type>()
                        .values()
                        .as_ref()
                });
                append_rows(&mut rows, columns, &mut before, &mut ascending);
            } else {
                let columns = int64_columns(batch, dims)?;
                let columns =
                    [0, 1, 2].map(|d| columns[d].as_primitive::<Int64Type>().values().as_ref());
                append_rows(&mut rows, columns, &mut before, &mut ascending);
            }
        }
        let cloud = PointCloud::new(3, rows).map_err(ReadError::upstream)?;
        return Ok((cloud, ascending));
    }
    let mut values = vec![0i64; n * dims];
    let mut start = 0;
    for batch in batches {
        let columns = int64_columns(batch, dims)?;
        let end = start + batch.num_rows() * dims;
        for (d, column) in columns.iter().enumerate() {
            let slots = values[start..end].iter_mut().skip(d).step_by(dims);
            let column = column.as_primitive::<Int64Type>().values();
            slots.zip(column.iter()).for_each(|(s, v)| *s = *v);
        }
        start = end;
    }
    let cloud = PointCloud::new(dims, values).map_err(ReadError::upstream)?;
    let ascending = cloud.is_sorted_unique();
    Ok((cloud, ascending))
}

/// Appends the rows of three coordinate columns to `rows` (memory never zeroed first), and
/// keeps `ascending` true only while they ascend strictly after `before`, the last row
/// appended: the data is expected to be sorted.
fn append_rows<T: Copy + Ord + Into<i64>>(
    rows: &mut Vec<i64>,
    [x, y, z]: [&[T]; 3],
    before: &mut Option<[i64; 3]>,
    ascending: &mut bool,
) {
    let row = |i: usize| [x[i].into(), y[i].into(), z[i].into()];
    *ascending =
        *ascending && before.is_none_or(|b| row_before(&b, &row(0))) && columns_ascend([x, y, z]);
    *before = Some(row(x.len() - 1));
    let xyz = x.iter().zip(y).zip(z);
    rows.extend(xyz.flat_map(|((x, y), z)| [(*x).into(), (*y).into(), (*z).into()]));
}

/// Whether the rows of three columns ascend strictly, in one branch-free pass over the
/// columns (which the compiler vectorises).
fn columns_ascend<T: Copy + Ord>([x, y, z]: [&[T]; 3]) -> bool {
    let n = x.len();
    let (y, z) = (&y[..n], &z[..n]);
    (1..n).fold(true, |up, i| {
        let (x0, x1, y0, y1, z0, z1) = (x[i - 1], x[i], y[i - 1], y[i], z[i - 1], z[i]);
        up & ((x0 < x1) | ((x0 == x1) & ((y0 < y1) | ((y0 == y1) & (z0 < z1)))))
    })
}

/// The first `dims` columns of `batch` as int64 without nulls.
fn int64_columns(
    batch: &RecordBatch,
    dims: usize,
) -> Result<Vec<arrow_array::ArrayRef>, ReadError> {
    (0..dims)
        .map(|d| {
            let column = pocaduck_edge_core::columns::int64_column(batch.column(d))
                .map_err(|e| ReadError::upstream(format!("coordinate column {d}: {e}")))?;
            if column.null_count() > 0 {
                return Err(ReadError::upstream(format!(
                    "coordinate column {d} has nulls"
                )));
            }
            Ok(column)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrowPrimitiveType, Int32Array, Int64Array, PrimitiveArray};
    use arrow_schema::{Field, Schema};

    /// Columns `x, y, z` of type `T` holding `rows`.
    fn xyz_batch<T: ArrowPrimitiveType>(rows: &[[T::Native; 3]]) -> RecordBatch {
        let schema = Arc::new(Schema::new(
            ["x", "y", "z"]
                .map(|n| Field::new(n, T::DATA_TYPE, false))
                .to_vec(),
        ));
        let columns = (0..3)
            .map(|d| {
                Arc::new(PrimitiveArray::<T>::from_iter_values(
                    rows.iter().map(|r| r[d]),
                )) as _
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn batch(rows: &[[i64; 3]]) -> RecordBatch {
        xyz_batch::<Int64Type>(rows)
    }

    #[test]
    fn columns_are_interleaved_and_their_order_checked_in_the_same_pass() {
        let up = [[0, 0, 1], [0, 1, 0], [1, -5, -5]];
        let (cloud, ascending) =
            columnar_cloud(&[batch(&[]), batch(&up), batch(&[[2, 0, 0]])], 3).unwrap();
        assert_eq!(cloud.values(), &[0, 0, 1, 0, 1, 0, 1, -5, -5, 2, 0, 0]);
        assert!(ascending);
        let cases: [&[&[[i64; 3]]]; 4] = [
            &[&[[0, 0, 1], [0, 0, 0]]],               // down within a batch
            &[&[[0, 0, 1], [0, 0, 1]]],               // a repeated point
            &[&[[0, 0, 1]], &[[0, 0, 0], [5, 5, 5]]], // down across batches
            &[&[[7, 0, 0]], &[[7, 0, 0]]],            // repeated across batches
        ];
        for case in cases {
            let batches: Vec<_> = case.iter().map(|rows| batch(rows)).collect();
            let (cloud, ascending) = columnar_cloud(&batches, 3).unwrap();
            assert_eq!(cloud.len(), case.iter().map(|r| r.len()).sum::<usize>());
            assert!(!ascending, "{case:?}");
        }
        // Int32 columns (as the loader writes them when the values fit) are widened, and
        // the order is checked across batches of either width.
        let narrow = xyz_batch::<Int32Type>;
        let wide = batch(&[[i64::from(i32::MAX) + 1, 0, 0]]);
        let mixed = [narrow(&[[-1, i32::MIN, 3], [i32::MAX, 0, 0]]), wide.clone()];
        let (cloud, ascending) = columnar_cloud(&mixed, 3).unwrap();
        let min = i64::from(i32::MIN);
        let max = i64::from(i32::MAX);
        assert_eq!(cloud.values(), &[-1, min, 3, max, 0, 0, max + 1, 0, 0]);
        assert!(ascending);
        assert!(!columnar_cloud(&[wide, narrow(&[[5, 0, 0]])], 3).unwrap().1);
        assert!(
            !columnar_cloud(&[narrow(&[[5, 0, 0], [5, 0, 0]])], 3)
                .unwrap()
                .1
        );
        // Other dims and narrower integer columns take the general path.
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Int64, false),
        ]));
        let two = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 1, 2])),
                Arc::new(Int64Array::from(vec![5, 6, i64::MIN])),
            ],
        )
        .unwrap();
        let (cloud, ascending) = columnar_cloud(std::slice::from_ref(&two), 2).unwrap();
        assert_eq!(cloud.values(), &[1, 5, 1, 6, 2, i64::MIN]);
        assert!(ascending);
        assert!(!columnar_cloud(&[two.clone(), two], 2).unwrap().1);
    }

    #[test]
    fn order_follows_pieces_across_their_boundaries() {
        let piece = |v: Vec<i64>| PointCloud::new(3, v).unwrap();
        let mut order = Order::default();
        order.follow(&piece(vec![0, 0, 0, 0, 0, 1]), true);
        order.follow(&piece(vec![]), true);
        order.follow(&piece(vec![0, 0, 2]), true);
        assert!(order.ascending);
        order.follow(&piece(vec![0, 0, 2, 9, 9, 9]), true);
        assert!(!order.ascending, "a point repeated across pieces");
        let mut order = Order::default();
        order.follow(&piece(vec![1, 0, 0]), false);
        assert!(!order.ascending, "a piece out of order in itself");
    }
}
