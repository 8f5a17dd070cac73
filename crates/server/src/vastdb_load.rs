//! `pocaduck-edge vastdb load`: copies an edge-layout dataset into a VastDB table, in the
//! columnar layout (`label, x, y, z`: one row per point, in the dataset's order) or in
//! PoCADuck's (`label, block_id, points list<int64>`: a row per run of at most 65,536
//! points, with a null block id). The schema and table are created when missing. Each label goes in whole inside
//! one transaction, so a failure leaves only complete labels, and a rerun skips the labels
//! already there: it completes the load without duplicates.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::builder::{Int64Builder, ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pocaduck_edge_core::point_table::check_layout;
use pocaduck_edge_core::Manifest;
use pocaduck_edge_query::store::SystemClock;
use pocaduck_edge_query::upstream::HttpUpstream;
use pocaduck_edge_read::vast::{Layout, DEFAULT_MAX_RETRIES};
use pocaduck_edge_read::{Timing, VastClient};
use pocaduck_edge_vastdb::query::Filter;
use pocaduck_edge_vastdb::request;
use pocaduck_edge_vastdb::{Credentials, Endpoint, QuerySettings, TablePath};

/// Points in one row of PoCADuck's layout.
const POCADUCK_ROW_POINTS: usize = 65_536;
/// Bytes of Arrow data in one insert (VastDB takes at most 5 MiB per request).
const INSERT_BYTES: usize = 4 << 20;

/// Where to load and how.
pub(crate) struct LoadOptions {
    /// The VastDB endpoint.
    pub endpoint: String,
    /// Keys to sign with.
    pub credentials: Credentials,
    /// Bucket, schema and table.
    pub table: TablePath,
    /// The table layout to write.
    pub layout: Layout,
    /// Bytes inserted in one transaction before it is committed (at a label boundary).
    pub transaction_bytes: usize,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadReport {
    /// Labels inserted by this run.
    pub labels_loaded: u64,
    /// Labels skipped because the table had them.
    pub labels_skipped: u64,
    /// Points inserted by this run.
    pub points_loaded: u64,
    /// Rows inserted by this run.
    pub rows_inserted: u64,
}

/// The table's columns for `manifest`'s dims in `layout`. A columnar table's coordinate
/// column is int32 when the dataset's bounds show that every value of the dim fits (half
/// the bytes stored and read), int64 otherwise.
pub(crate) fn table_schema(layout: Layout, manifest: &Manifest) -> Schema {
    let label = Field::new("label", DataType::UInt64, true);
    let fits_int32 = |d: usize| {
        manifest.bbox.as_ref().is_some_and(|b| {
            let range = i64::from(i32::MIN)..=i64::from(i32::MAX);
            range.contains(&b.min[d]) && range.contains(&b.max[d])
        })
    };
    match layout {
        Layout::Columnar => Schema::new(
            std::iter::once(label)
                .chain(manifest.dims.iter().enumerate().map(|(d, name)| {
                    let data_type = if fits_int32(d) {
                        DataType::Int32
                    } else {
                        DataType::Int64
                    };
                    Field::new(name, data_type, true)
                }))
                .collect::<Vec<_>>(),
        ),
        Layout::Pocaduck => Schema::new(vec![
            label,
            Field::new("block_id", DataType::Utf8, true),
            Field::new_list("points", Field::new("item", DataType::Int64, true), true),
        ]),
    }
}

/// Loads the edge-layout dataset in `dataset` into the table.
pub(crate) fn load(dataset: &Path, options: &LoadOptions) -> anyhow::Result<LoadReport> {
    let manifest_path = dataset.join("manifest.json");
    let manifest = Manifest::from_json(
        &std::fs::read(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?,
    )
    .with_context(|| format!("{} is not an edge-layout manifest", manifest_path.display()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(load_async(dataset, &manifest, options))
}

async fn load_async(
    dataset: &Path,
    manifest: &Manifest,
    options: &LoadOptions,
) -> anyhow::Result<LoadReport> {
    let upstream = HttpUpstream::new(std::time::Duration::from_secs(60))?;
    let client = Arc::new(VastClient::new(
        Endpoint::parse(&options.endpoint)?,
        options.credentials.clone(),
        Arc::new(upstream),
        Arc::new(SystemClock::new()),
        DEFAULT_MAX_RETRIES,
    ));
    let table = &options.table;
    let mut timing = Timing::default();
    let wanted = Arc::new(table_schema(options.layout, manifest));

    // The schema (each level of a nested one) and the table, when missing.
    let txid = client.begin(&mut timing).await?;
    let mut path = String::new();
    for part in table.schema().split('/') {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(part);
        if !client
            .schema_exists(txid, table.bucket(), &path, &mut timing)
            .await?
        {
            let create = request::create_schema(txid, table.bucket(), &path)?;
            client.call(create, &mut timing).await?;
        }
    }
    let schema: SchemaRef = if client.table_exists(txid, table, &mut timing).await? {
        Arc::new(client.columns(txid, table, &mut timing).await?)
    } else {
        let create = request::create_table(txid, table, &wanted)?;
        client.call(create, &mut timing).await?;
        wanted.clone()
    };
    client.commit(txid, &mut timing).await?;
    check_layout(&schema, options.layout, manifest.dims())
        .map_err(|reason| anyhow::anyhow!("table {table} {reason}"))?;

    // Labels already there are complete (each went in whole in one transaction).
    let present = present_labels(&client, table, &schema, &mut timing).await?;

    let bar = if options.progress {
        let bar = ProgressBar::new(manifest.point_count);
        bar.set_style(
            ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} points ({per_sec}, {eta})")
                .expect("a valid template"),
        );
        bar.set_message("loading");
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut writer = Writer {
        client: &client,
        table,
        layout: options.layout,
        schema: insert_schema(&wanted, &schema, options.layout),
        dims: manifest.dims(),
        txid: None,
        txn_bytes: 0,
        transaction_bytes: options.transaction_bytes,
        timing,
        report: LoadReport {
            labels_loaded: 0,
            labels_skipped: 0,
            points_loaded: 0,
            rows_inserted: 0,
        },
    };
    if let Err(e) = write_files(&mut writer, dataset, manifest, &present, &bar).await {
        // Only whole labels were committed: drop the one in flight.
        writer.abandon().await;
        return Err(e);
    }
    writer.finish().await?;
    bar.finish_and_clear();
    Ok(writer.report)
}

/// Inserts every label of the dataset's points files that the table does not have.
async fn write_files(
    writer: &mut Writer<'_>,
    dataset: &Path,
    manifest: &Manifest,
    present: &BTreeSet<u64>,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    for file in &manifest.files {
        let path = dataset.join(&file.path);
        let reader = ParquetRecordBatchReaderBuilder::try_new(
            File::open(&path).with_context(|| format!("opening {}", path.display()))?,
        )
        .with_context(|| format!("{} is not readable Parquet", path.display()))?
        .with_batch_size(64 << 10)
        .build()?;
        let mut label: Option<u64> = None;
        let mut points: Vec<i64> = Vec::new();
        for batch in reader {
            let batch = batch.with_context(|| format!("reading {}", path.display()))?;
            let (labels, values) = label_points(&batch, manifest.dims())
                .with_context(|| format!("reading {}", path.display()))?;
            for (i, &l) in labels.iter().enumerate() {
                if label != Some(l) {
                    if let Some(done) = label {
                        writer.label(done, &mut points, present, bar).await?;
                    }
                    label = Some(l);
                }
                let d = manifest.dims();
                points.extend_from_slice(&values[i * d..(i + 1) * d]);
            }
            // Bounded memory: a long label goes in as it is read, in the same transaction.
            if let Some(l) = label {
                if !present.contains(&l) && points.len() * 8 >= INSERT_BYTES {
                    writer.part(l, &mut points, bar).await?;
                }
            }
        }
        if let Some(done) = label {
            writer.label(done, &mut points, present, bar).await?;
        }
    }
    Ok(())
}

/// The columns inserts carry: `wanted`, except that a columnar table made before keeps its
/// coordinate columns' types (int32 or int64).
fn insert_schema(wanted: &SchemaRef, table: &Schema, layout: Layout) -> SchemaRef {
    if layout == Layout::Pocaduck {
        return wanted.clone();
    }
    let fields: Vec<Field> = wanted
        .fields()
        .iter()
        .map(|f| match table.field_with_name(f.name()) {
            Ok(t) if f.name() != "label" => {
                f.as_ref().clone().with_data_type(t.data_type().clone())
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

async fn present_labels(
    client: &Arc<VastClient>,
    table: &TablePath,
    schema: &Schema,
    timing: &mut Timing,
) -> anyhow::Result<BTreeSet<u64>> {
    let txid = client.begin(timing).await?;
    let settings = QuerySettings::default();
    let mut run = client
        .query(txid, table, schema, &["label"], &Filter::all(), settings)?
        .committing();
    let mut present = BTreeSet::new();
    while let Some(batch) = run.next(timing).await? {
        let labels = batch.column(0);
        if labels.null_count() > 0 {
            bail!("table {table} has rows without a label");
        }
        present.extend(labels.as_primitive::<UInt64Type>().values().iter().copied());
    }
    Ok(present)
}

/// The labels and the `N × D` points of a batch of an edge-layout points file.
fn label_points(batch: &RecordBatch, dims: usize) -> anyhow::Result<(Vec<u64>, Vec<i64>)> {
    if batch.num_columns() != dims + 1 {
        bail!(
            "{} columns, not a label and {dims} dims",
            batch.num_columns()
        );
    }
    let labels = batch
        .column(0)
        .as_primitive::<UInt64Type>()
        .values()
        .to_vec();
    let n = batch.num_rows();
    let mut values = vec![0i64; n * dims];
    for d in 0..dims {
        let column = batch.column(d + 1);
        match column.data_type() {
            DataType::Int32 => {
                for (i, v) in column
                    .as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .enumerate()
                {
                    values[i * dims + d] = i64::from(*v);
                }
            }
            DataType::Int64 => {
                for (i, v) in column
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .enumerate()
                {
                    values[i * dims + d] = *v;
                }
            }
            other => bail!("dim column {d} has type {other}"),
        }
    }
    Ok((labels, values))
}

struct Writer<'a> {
    client: &'a Arc<VastClient>,
    table: &'a TablePath,
    layout: Layout,
    schema: SchemaRef,
    dims: usize,
    txid: Option<u64>,
    txn_bytes: usize,
    transaction_bytes: usize,
    timing: Timing,
    report: LoadReport,
}

impl Writer<'_> {
    async fn transaction(&mut self) -> anyhow::Result<u64> {
        if let Some(txid) = self.txid {
            return Ok(txid);
        }
        let txid = self.client.begin(&mut self.timing).await?;
        self.txid = Some(txid);
        Ok(txid)
    }

    /// Inserts part of a label that is still being read.
    async fn part(
        &mut self,
        label: u64,
        points: &mut Vec<i64>,
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        let txid = self.transaction().await?;
        let rows = self.insert(txid, label, points).await?;
        bar.inc((points.len() / self.dims) as u64);
        self.report.points_loaded += (points.len() / self.dims) as u64;
        self.report.rows_inserted += rows;
        points.clear();
        Ok(())
    }

    /// Ends a label: inserts the rest of it (or skips it when the table has it) and commits
    /// at a label boundary once the transaction is large.
    async fn label(
        &mut self,
        label: u64,
        points: &mut Vec<i64>,
        present: &BTreeSet<u64>,
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        if present.contains(&label) {
            bar.inc((points.len() / self.dims) as u64);
            self.report.labels_skipped += 1;
            points.clear();
            return Ok(());
        }
        self.part(label, points, bar).await?;
        self.report.labels_loaded += 1;
        if self.txn_bytes >= self.transaction_bytes {
            self.finish().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(txid) = self.txid.take() {
            self.client.commit(txid, &mut self.timing).await?;
        }
        self.txn_bytes = 0;
        Ok(())
    }

    /// Rolls the open transaction back (best effort: the load is failing already).
    async fn abandon(&mut self) {
        if let Some(txid) = self.txid.take() {
            if let Err(e) = self.client.rollback(txid, &mut self.timing).await {
                tracing::warn!(txid, error = %e, "rolling the load's transaction back failed");
            }
        }
    }

    /// Inserts a label's points in requests of at most [`INSERT_BYTES`]; returns the rows.
    async fn insert(&mut self, txid: u64, label: u64, points: &[i64]) -> anyhow::Result<u64> {
        let d = self.dims;
        let per_insert = match self.layout {
            Layout::Columnar => (INSERT_BYTES / (8 * (d + 1))).max(1),
            Layout::Pocaduck => {
                POCADUCK_ROW_POINTS * (INSERT_BYTES / (POCADUCK_ROW_POINTS * 8 * d)).max(1)
            }
        };
        let mut rows = 0;
        for chunk in points.chunks(per_insert * d) {
            let batch = match self.layout {
                Layout::Columnar => columnar_batch(&self.schema, label, chunk, d)?,
                Layout::Pocaduck => pocaduck_batch(&self.schema, label, chunk, d)?,
            };
            rows += batch.num_rows() as u64;
            self.txn_bytes += batch.get_array_memory_size();
            self.client
                .insert(txid, self.table, &batch, &mut self.timing)
                .await?;
        }
        Ok(rows)
    }
}

fn columnar_batch(
    schema: &SchemaRef,
    label: u64,
    points: &[i64],
    d: usize,
) -> anyhow::Result<RecordBatch> {
    let n = points.len() / d;
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(vec![label; n]))];
    for dim in 0..d {
        let values = points.iter().skip(dim).step_by(d).copied();
        let field = schema.field(dim + 1);
        let column: ArrayRef = match field.data_type() {
            DataType::Int64 => Arc::new(Int64Array::from_iter_values(values)),
            DataType::Int32 => Arc::new(Int32Array::from_iter_values(
                values
                    .map(i32::try_from)
                    .collect::<Result<Vec<i32>, _>>()
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "label {label}: a value of {} does not fit the table's int32 column",
                            field.name()
                        )
                    })?,
            )),
            other => bail!(
                "the table's column {} has type {other}: columnar tables hold int32 or int64",
                field.name()
            ),
        };
        columns.push(column);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn pocaduck_batch(
    schema: &SchemaRef,
    label: u64,
    points: &[i64],
    d: usize,
) -> anyhow::Result<RecordBatch> {
    let rows: Vec<&[i64]> = points.chunks(POCADUCK_ROW_POINTS * d).collect();
    let mut blocks = StringBuilder::new();
    let mut lists = ListBuilder::new(Int64Builder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Int64,
        true,
    )));
    for row in &rows {
        // An edge dataset does not know which PoCADuck block a point came from: no block.
        blocks.append_null();
        lists.values().append_slice(row);
        lists.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![label; rows.len()])),
        Arc::new(blocks.finish()),
        Arc::new(lists.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(bbox: &str) -> Manifest {
        let json = format!(
            r#"{{"format": "pocaduck-edge", "version": 2, "dims": ["x", "y", "z"],
                "label_count": 1, "point_count": 2, {bbox} "point_order": "xyz",
                "files": [{{"path": "points/part-00000.parquet", "size": 10, "etag": "e", "rows": 2,
                            "footer": {{"offset": 2, "length": 8}}}}],
                "label_index": {{"file": {{"path": "labels.idx", "size": 5, "etag": "f", "rows": 0}},
                  "pages": [{{"first_label": "1", "last_label": "1", "count": 1,
                              "range": {{"offset": 0, "length": 5}}}}]}}}}"#
        );
        Manifest::from_json(json.as_bytes()).unwrap()
    }

    fn coordinate_types(schema: &Schema) -> Vec<DataType> {
        schema.fields()[1..]
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    #[test]
    fn columnar_tables_hold_int32_where_the_bounds_fit() {
        let min = i64::from(i32::MIN);
        let max = i64::from(i32::MAX);
        let fits = manifest(&format!(
            r#""bbox": {{"min": [{min}, 0, -5], "max": [{max}, 9, 5]}},"#
        ));
        let (i32, i64) = (DataType::Int32, DataType::Int64);
        let schema = table_schema(Layout::Columnar, &fits);
        assert_eq!(
            coordinate_types(&schema),
            [i32.clone(), i32.clone(), i32.clone()]
        );
        let wide = manifest(&format!(
            r#""bbox": {{"min": [0, {}, 0], "max": [1, 1, {}]}},"#,
            min - 1,
            max + 1
        ));
        let schema = table_schema(Layout::Columnar, &wide);
        assert_eq!(
            coordinate_types(&schema),
            [i32.clone(), i64.clone(), i64.clone()]
        );
        // Without bounds nothing is known to fit.
        let schema = table_schema(Layout::Columnar, &manifest(""));
        assert_eq!(coordinate_types(&schema), [i64.clone(), i64.clone(), i64]);
    }

    #[test]
    fn a_table_made_before_keeps_its_column_types() {
        let fits = manifest(r#""bbox": {"min": [0, 0, 0], "max": [1, 1, 1]},"#);
        let wanted = Arc::new(table_schema(Layout::Columnar, &fits));
        let older = table_schema(Layout::Columnar, &manifest(""));
        let schema = insert_schema(&wanted, &older, Layout::Columnar);
        assert_eq!(schema.as_ref(), &older);
        let batch = columnar_batch(&schema, 7, &[1, 2, 3, -1, -2, i64::MAX], 3).unwrap();
        assert_eq!(
            batch
                .column(3)
                .as_primitive::<Int64Type>()
                .values()
                .as_ref(),
            [3, i64::MAX]
        );
    }

    #[test]
    fn a_value_too_wide_for_an_int32_column_is_refused_by_name() {
        let fits = manifest(r#""bbox": {"min": [0, 0, 0], "max": [1, 1, 1]},"#);
        let schema = Arc::new(table_schema(Layout::Columnar, &fits));
        let batch = columnar_batch(&schema, 7, &[1, -2, 3, 4, 5, 6], 3).unwrap();
        assert_eq!(
            batch
                .column(2)
                .as_primitive::<Int32Type>()
                .values()
                .as_ref(),
            [-2, 5]
        );
        let wide = i64::from(i32::MAX) + 1;
        let e = columnar_batch(&schema, 7, &[1, 2, 3, 4, wide, 6], 3).unwrap_err();
        assert!(
            e.to_string().contains("label 7: a value of y does not fit"),
            "{e}"
        );
    }
}
