//! The emulator's catalog and rows: buckets (seeded, since the SDK cannot create them),
//! nested schemas, tables with an Arrow schema and rows in insertion order, each row with an
//! increasing id. Schemas and tables are created and dropped at once; inserted rows are held
//! by their transaction, seen only by it, and become visible (and written to disk) when it
//! commits; a rollback, or a transaction never committed, leaves nothing behind. Every change
//! is written to the data directory before it is applied, so a restarted emulator serves the
//! same tables.
//!
//! On disk: `catalog.json` (schemas and tables) and, per table, `tables/<n>/schema.arrow`
//! and one Arrow IPC file per insert named by its first row id.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_arith::aggregate::{max, min};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{new_null_array, ArrayRef, ArrowPrimitiveType, RecordBatch};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// A table: its schema and its rows, in batches with contiguous row ids.
#[derive(Debug)]
pub(crate) struct Table {
    /// The table's number, naming its directory and returned as its handle.
    pub id: u64,
    /// The columns, in creation order.
    pub schema: SchemaRef,
    /// Inserted batches, in row id order.
    pub batches: Vec<Chunk>,
}

/// Per column of a chunk: the least and greatest non-null value of an integer column.
pub(crate) type Bounds = [Option<(i128, i128)>];

/// Inserted rows: a batch, the id of its first row, and the range of each integer column
/// (as a VAST cluster keeps per-chunk statistics, so a scan can skip chunks).
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// The id of the first row.
    pub first: u64,
    /// The rows.
    pub batch: RecordBatch,
    /// The columns' value ranges.
    pub bounds: Arc<Bounds>,
}

impl Chunk {
    /// A chunk of `batch`, its first row having id `first`.
    pub(crate) fn new(first: u64, batch: RecordBatch) -> Self {
        let bounds = batch.columns().iter().map(integer_range).collect();
        Self {
            first,
            batch,
            bounds,
        }
    }
}

/// The least and greatest non-null value of an integer column.
fn integer_range(column: &ArrayRef) -> Option<(i128, i128)> {
    fn range<T>(column: &ArrayRef) -> Option<(i128, i128)>
    where
        T: ArrowPrimitiveType,
        T::Native: Into<i128>,
    {
        let values = column.as_primitive::<T>();
        Some((min(values)?.into(), max(values)?.into()))
    }
    match column.data_type() {
        DataType::Int8 => range::<Int8Type>(column),
        DataType::Int16 => range::<Int16Type>(column),
        DataType::Int32 => range::<Int32Type>(column),
        DataType::Int64 => range::<Int64Type>(column),
        DataType::UInt8 => range::<UInt8Type>(column),
        DataType::UInt16 => range::<UInt16Type>(column),
        DataType::UInt32 => range::<UInt32Type>(column),
        DataType::UInt64 => range::<UInt64Type>(column),
        _ => None,
    }
}

impl Table {
    /// The number of rows.
    pub(crate) fn num_rows(&self) -> u64 {
        self.batches.iter().map(|c| c.batch.num_rows() as u64).sum()
    }

    /// One past the highest row id.
    pub(crate) fn end_row_id(&self) -> u64 {
        self.batches
            .last()
            .map_or(0, |c| c.first + c.batch.num_rows() as u64)
    }

    /// The rows with ids in `start..end`, as zero-copy slices with their first row id and
    /// the bounds of the chunk they come from.
    pub(crate) fn rows(&self, start: u64, end: u64) -> Vec<(u64, RecordBatch, &Bounds)> {
        let mut out = Vec::new();
        for chunk in &self.batches {
            let first = chunk.first;
            let last = first + chunk.batch.num_rows() as u64;
            let (from, to) = (start.max(first), end.min(last));
            if from < to {
                out.push((
                    from,
                    chunk
                        .batch
                        .slice((from - first) as usize, (to - from) as usize),
                    &chunk.bounds[..],
                ));
            }
        }
        out
    }
}

#[derive(Default, Serialize, Deserialize)]
struct CatalogFile {
    /// Schema paths per bucket.
    schemas: BTreeMap<String, Vec<String>>,
    /// `bucket/schema/table` → table id.
    tables: BTreeMap<String, u64>,
    next_table_id: u64,
}

/// All buckets, schemas and tables.
pub(crate) struct Store {
    dir: PathBuf,
    buckets: Vec<String>,
    catalog: CatalogFile,
    tables: BTreeMap<String, Table>,
    /// Rows inserted by open transactions: txid → (table key, first row id, rows).
    pending: BTreeMap<u64, Vec<(String, u64, RecordBatch)>>,
    /// The next row id per table, counting pending rows.
    next_row_id: BTreeMap<String, u64>,
}

/// Why a change was refused (mapped to an S3-style error by the caller).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Something named does not exist.
    NotFound(String),
    /// It exists already, or is not empty.
    Conflict(String),
    /// The request does not make sense.
    BadRequest(String),
}

fn key(bucket: &str, schema: &str, table: &str) -> String {
    format!("{bucket}/{schema}/{table}")
}

impl Store {
    /// Opens (or creates) the data directory and serves `buckets`.
    pub(crate) fn open(dir: &Path, buckets: Vec<String>) -> anyhow::Result<Self> {
        fs::create_dir_all(dir.join("tables"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let catalog_path = dir.join("catalog.json");
        let catalog: CatalogFile = match fs::read(&catalog_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", catalog_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogFile::default(),
            Err(e) => return Err(e).context(catalog_path.display().to_string()),
        };
        let mut tables = BTreeMap::new();
        for (name, id) in &catalog.tables {
            tables.insert(
                name.clone(),
                load_table(&dir.join("tables").join(id.to_string()), *id)?,
            );
        }
        let next_row_id = tables
            .iter()
            .map(|(k, t)| (k.clone(), t.end_row_id()))
            .collect();
        Ok(Self {
            dir: dir.to_owned(),
            buckets,
            catalog,
            tables,
            pending: BTreeMap::new(),
            next_row_id,
        })
    }

    /// Whether the bucket is served.
    pub(crate) fn has_bucket(&self, bucket: &str) -> bool {
        self.buckets.iter().any(|b| b == bucket)
    }

    fn check_bucket(&self, bucket: &str) -> Result<(), Refusal> {
        if self.has_bucket(bucket) {
            Ok(())
        } else {
            Err(Refusal::NotFound(format!("no bucket {bucket:?}")))
        }
    }

    fn has_schema(&self, bucket: &str, schema: &str) -> bool {
        self.catalog
            .schemas
            .get(bucket)
            .is_some_and(|s| s.iter().any(|p| p == schema))
    }

    /// The child schema names directly under `parent` (`""` for the bucket's root), sorted.
    pub(crate) fn child_schemas(&self, bucket: &str, parent: &str) -> Result<Vec<String>, Refusal> {
        self.check_bucket(bucket)?;
        let mut names: Vec<String> = self
            .catalog
            .schemas
            .get(bucket)
            .into_iter()
            .flatten()
            .filter_map(|path| match path.rsplit_once('/') {
                Some((p, name)) if p == parent => Some(name.to_owned()),
                None if parent.is_empty() => Some(path.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Tables of a schema with their row counts, sorted by name.
    pub(crate) fn tables_of(
        &self,
        bucket: &str,
        schema: &str,
    ) -> Result<Vec<(String, &Table)>, Refusal> {
        self.check_bucket(bucket)?;
        let prefix = format!("{bucket}/{schema}/");
        Ok(self
            .tables
            .iter()
            .filter_map(|(k, t)| {
                k.strip_prefix(&prefix)
                    .filter(|name| !name.contains('/'))
                    .map(|name| (name.to_owned(), t))
            })
            .collect())
    }

    /// Creates a schema whose parent exists.
    pub(crate) fn create_schema(&mut self, bucket: &str, schema: &str) -> Result<(), Refusal> {
        self.check_bucket(bucket)?;
        if self.has_schema(bucket, schema) {
            return Err(Refusal::Conflict(format!("schema {schema:?} exists")));
        }
        if let Some((parent, _)) = schema.rsplit_once('/') {
            if !self.has_schema(bucket, parent) {
                return Err(Refusal::NotFound(format!("no schema {parent:?}")));
            }
        }
        let mut next = self.catalog_clone();
        next.schemas
            .entry(bucket.to_owned())
            .or_default()
            .push(schema.to_owned());
        self.save(next)
    }

    /// Drops an empty schema.
    pub(crate) fn drop_schema(&mut self, bucket: &str, schema: &str) -> Result<(), Refusal> {
        self.check_bucket(bucket)?;
        if !self.has_schema(bucket, schema) {
            return Err(Refusal::NotFound(format!("no schema {schema:?}")));
        }
        let nested = format!("{schema}/");
        let busy = self.catalog.schemas[bucket]
            .iter()
            .any(|p| p.starts_with(&nested))
            || !self.tables_of(bucket, schema)?.is_empty();
        if busy {
            return Err(Refusal::Conflict(format!("schema {schema:?} is not empty")));
        }
        let mut next = self.catalog_clone();
        next.schemas
            .entry(bucket.to_owned())
            .or_default()
            .retain(|p| p != schema);
        self.save(next)
    }

    /// Creates an empty table.
    pub(crate) fn create_table(
        &mut self,
        bucket: &str,
        schema: &str,
        table: &str,
        columns: Schema,
    ) -> Result<(), Refusal> {
        self.check_bucket(bucket)?;
        if !self.has_schema(bucket, schema) {
            return Err(Refusal::NotFound(format!("no schema {schema:?}")));
        }
        let name = key(bucket, schema, table);
        if self.tables.contains_key(&name) {
            return Err(Refusal::Conflict(format!("table {table:?} exists")));
        }
        let mut next = self.catalog_clone();
        let id = next.next_table_id;
        next.next_table_id += 1;
        next.tables.insert(name.clone(), id);
        let dir = self.table_dir(id);
        let columns = Arc::new(columns);
        write_ipc(&dir.join("schema.arrow"), &columns, None).map_err(internal)?;
        self.save(next)?;
        self.tables.insert(
            name,
            Table {
                id,
                schema: columns,
                batches: Vec::new(),
            },
        );
        Ok(())
    }

    /// Drops a table and its rows.
    pub(crate) fn drop_table(
        &mut self,
        bucket: &str,
        schema: &str,
        table: &str,
    ) -> Result<(), Refusal> {
        let name = key(bucket, schema, table);
        let Some(id) = self.catalog.tables.get(&name).copied() else {
            return Err(Refusal::NotFound(format!("no table {table:?}")));
        };
        let mut next = self.catalog_clone();
        next.tables.remove(&name);
        self.save(next)?;
        self.tables.remove(&name);
        self.next_row_id.remove(&name);
        let _ = fs::remove_dir_all(self.table_dir(id));
        Ok(())
    }

    /// The table as transaction `txid` sees it: committed rows and its own pending ones.
    pub(crate) fn table(
        &self,
        bucket: &str,
        schema: &str,
        table: &str,
        txid: u64,
    ) -> Result<Table, Refusal> {
        let name = key(bucket, schema, table);
        let committed = self
            .tables
            .get(&name)
            .ok_or_else(|| Refusal::NotFound(format!("no table {bucket}/{schema}/{table}")))?;
        let mut batches = committed.batches.clone();
        for (k, first, rows) in self.pending.get(&txid).into_iter().flatten() {
            if *k == name {
                batches.push(Chunk::new(*first, rows.clone()));
            }
        }
        batches.sort_by_key(|c| c.first);
        Ok(Table {
            id: committed.id,
            schema: committed.schema.clone(),
            batches,
        })
    }

    /// Makes transaction `txid`'s rows visible, writing them to disk first.
    pub(crate) fn commit(&mut self, txid: u64) -> Result<(), Refusal> {
        for (name, first, rows) in self.pending.remove(&txid).unwrap_or_default() {
            let Some(table) = self.tables.get(&name) else {
                continue; // dropped meanwhile
            };
            let dir = self.table_dir(table.id);
            write_ipc(
                &dir.join(format!("{first:020}.arrow")),
                &table.schema,
                Some(&rows),
            )
            .map_err(internal)?;
            let table = self.tables.get_mut(&name).expect("looked up above");
            let at = table.batches.partition_point(|c| c.first < first);
            table.batches.insert(at, Chunk::new(first, rows));
        }
        Ok(())
    }

    /// Forgets transaction `txid`'s rows.
    pub(crate) fn rollback(&mut self, txid: u64) {
        self.pending.remove(&txid);
    }

    /// Adds rows to transaction `txid`, matching columns by name (missing ones are null,
    /// types are cast), and returns the new rows' ids.
    pub(crate) fn insert(
        &mut self,
        txid: u64,
        bucket: &str,
        schema: &str,
        table: &str,
        batch: &RecordBatch,
    ) -> Result<std::ops::Range<u64>, Refusal> {
        let name = key(bucket, schema, table);
        let target = self
            .tables
            .get(&name)
            .ok_or_else(|| Refusal::NotFound(format!("no table {name}")))?;
        let rows = conform(&target.schema, batch)?;
        let next = self.next_row_id.entry(name.clone()).or_insert(0);
        let first = *next;
        *next += rows.num_rows() as u64;
        let ids = first..*next;
        if rows.num_rows() > 0 {
            self.pending
                .entry(txid)
                .or_default()
                .push((name, first, rows));
        }
        Ok(ids)
    }

    fn table_dir(&self, id: u64) -> PathBuf {
        self.dir.join("tables").join(id.to_string())
    }

    fn catalog_clone(&self) -> CatalogFile {
        CatalogFile {
            schemas: self.catalog.schemas.clone(),
            tables: self.catalog.tables.clone(),
            next_table_id: self.catalog.next_table_id,
        }
    }

    /// Writes the catalog aside and renames it into place, then adopts it.
    fn save(&mut self, next: CatalogFile) -> Result<(), Refusal> {
        let path = self.dir.join("catalog.json");
        let aside = self.dir.join("catalog.json.tmp");
        let bytes = serde_json::to_vec_pretty(&next).map_err(|e| internal(e.into()))?;
        fs::write(&aside, bytes)
            .and_then(|()| fs::rename(&aside, &path))
            .map_err(|e| internal(e.into()))?;
        self.catalog = next;
        Ok(())
    }
}

fn internal(e: anyhow::Error) -> Refusal {
    Refusal::BadRequest(format!("storage failed: {e:#}"))
}

/// The batch in the table's schema: columns by name, missing ones null, types cast.
fn conform(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, Refusal> {
    for field in batch.schema().fields() {
        if schema.field_with_name(field.name()).is_err() {
            return Err(Refusal::BadRequest(format!("no column {:?}", field.name())));
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => c.clone(),
            Some(c) => arrow_cast::cast(c, field.data_type())
                .map_err(|e| Refusal::BadRequest(format!("column {:?}: {e}", field.name())))?,
            None => new_null_array(field.data_type(), batch.num_rows()),
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| Refusal::BadRequest(e.to_string()))
}

fn write_ipc(path: &Path, schema: &Schema, batch: Option<&RecordBatch>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let aside = path.with_extension("tmp");
    let mut writer = FileWriter::try_new(fs::File::create(&aside)?, schema)?;
    if let Some(batch) = batch {
        writer.write(batch)?;
    }
    writer.finish()?;
    writer.into_inner()?.sync_all()?;
    fs::rename(&aside, path)?;
    Ok(())
}

fn load_table(dir: &Path, id: u64) -> anyhow::Result<Table> {
    let open = |path: &Path| -> anyhow::Result<FileReader<fs::File>> {
        Ok(FileReader::try_new(
            fs::File::open(path).with_context(|| path.display().to_string())?,
            None,
        )?)
    };
    let schema = open(&dir.join("schema.arrow"))?.schema();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "arrow") && !p.ends_with("schema.arrow"));
    files.sort();
    let mut batches = Vec::new();
    let mut next = 0u64;
    for file in files {
        let first: u64 = file
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("unexpected file {}", file.display()))?;
        if first < next {
            bail!(
                "{}: rows from {first} overlap rows up to {next}",
                file.display()
            );
        }
        next = first;
        for batch in open(&file)? {
            let batch = batch?;
            let start = next;
            next += batch.num_rows() as u64;
            batches.push(Chunk::new(start, batch));
        }
    }
    Ok(Table {
        id,
        schema,
        batches,
    })
}
