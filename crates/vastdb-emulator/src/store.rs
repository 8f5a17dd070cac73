//! The emulator's catalog and rows: buckets (seeded, since the SDK cannot create them),
//! nested schemas, and tables with an Arrow schema and rows in row id order. Schemas and
//! tables are created and dropped at once. Inserts, updates and deletes are held by their
//! transaction, seen only by it, and take effect (written to disk first) when it commits; a
//! rollback, or a transaction never committed, leaves nothing behind. Row ids are handed out
//! in increasing order per table and never again, not after a delete nor a restart, so a
//! restarted emulator serves the same tables with the same ids.
//!
//! On disk: `catalog.json` (schemas, tables and the next row id of each) and, per table,
//! `tables/<n>/schema.arrow` and one Arrow IPC file per insert named by its first row id.
//! A file whose rows' ids are not consecutive from that id holds them in a leading
//! `$row_id` column.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{new_null_array, ArrayRef, RecordBatch};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pocaduck_edge_vastdb::query::ROW_ID;
use serde::{Deserialize, Serialize};

use crate::edit::{self, Update};
use crate::table::{Chunk, RowIds, Table};

#[derive(Default, Serialize, Deserialize)]
struct CatalogFile {
    /// Schema paths per bucket.
    schemas: BTreeMap<String, Vec<String>>,
    /// `bucket/schema/table` → table id.
    tables: BTreeMap<String, u64>,
    next_table_id: u64,
    /// `bucket/schema/table` → the next row id to hand out, as of the last commit that
    /// inserted (the ids of rows deleted since are not handed out again).
    #[serde(default)]
    next_row_ids: BTreeMap<String, u64>,
}

/// An update or delete of committed rows by an open transaction.
#[derive(Debug)]
enum Edit {
    Update(Update),
    Delete(Vec<u64>),
}

impl Edit {
    /// Applies the edit, returning the files of the chunks it changed.
    fn apply(&self, table: &mut Table) -> Result<Vec<u64>, String> {
        match self {
            Self::Update(update) => table.update(update),
            Self::Delete(ids) => table.delete(ids),
        }
    }

    /// The edit of the rows `keep` picks, and the edit of the others.
    fn split(&self, keep: impl Fn(u64) -> bool) -> (Edit, Edit) {
        match self {
            Self::Update(update) => {
                let (picked, others) = edit::split(update, keep);
                (Self::Update(picked), Self::Update(others))
            }
            Self::Delete(ids) => {
                let (picked, others) = ids.iter().partition(|&&id| keep(id));
                (Self::Delete(picked), Self::Delete(others))
            }
        }
    }

    /// Whether it names no row.
    fn is_empty(&self) -> bool {
        match self {
            Self::Update(update) => update.ids.is_empty(),
            Self::Delete(ids) => ids.is_empty(),
        }
    }
}

/// What an open transaction did to one table.
#[derive(Debug, Default)]
struct Pending {
    /// The rows it inserted, with its own updates and deletes of them applied.
    inserted: Vec<Chunk>,
    /// Its updates and deletes of committed rows, in order.
    edits: Vec<Edit>,
}

/// All buckets, schemas and tables.
pub(crate) struct Store {
    dir: PathBuf,
    buckets: Vec<String>,
    catalog: CatalogFile,
    tables: BTreeMap<String, Table>,
    /// What open transactions did: txid → table key → changes.
    pending: BTreeMap<u64, BTreeMap<String, Pending>>,
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
            .map(|(k, t)| {
                let saved = catalog.next_row_ids.get(k).copied().unwrap_or(0);
                (k.clone(), t.end_row_id().max(saved))
            })
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
        next.next_row_ids.remove(&name);
        self.save(next)?;
        self.tables.remove(&name);
        self.next_row_id.remove(&name);
        let _ = fs::remove_dir_all(self.table_dir(id));
        Ok(())
    }

    /// The table as transaction `txid` sees it: committed rows with its own changes.
    pub(crate) fn table(
        &self,
        bucket: &str,
        schema: &str,
        table: &str,
        txid: u64,
    ) -> Result<Table, Refusal> {
        let name = key(bucket, schema, table);
        let pending = self.pending.get(&txid).and_then(|p| p.get(&name));
        let mut view = self.committed_view(&name, pending)?;
        for chunk in pending.into_iter().flat_map(|p| &p.inserted) {
            view.add(chunk.clone());
        }
        Ok(view)
    }

    /// The committed rows with the transaction's edits of them applied (an edit whose rows
    /// another transaction has deleted since is a conflict).
    fn committed_view(&self, name: &str, pending: Option<&Pending>) -> Result<Table, Refusal> {
        let mut view = self
            .tables
            .get(name)
            .ok_or_else(|| Refusal::NotFound(format!("no table {name}")))?
            .clone();
        for edit in pending.into_iter().flat_map(|p| &p.edits) {
            edit.apply(&mut view).map_err(Refusal::Conflict)?;
        }
        Ok(view)
    }

    /// Applies transaction `txid`'s changes, writing them to disk first. A conflict leaves
    /// every table as it was, and the transaction's changes are gone.
    pub(crate) fn commit(&mut self, txid: u64) -> Result<(), Refusal> {
        let mut changed = Vec::new();
        for (name, pending) in self.pending.remove(&txid).unwrap_or_default() {
            let Some(committed) = self.tables.get(&name) else {
                continue; // dropped meanwhile
            };
            let mut table = committed.clone();
            let mut files = Vec::new();
            for edit in &pending.edits {
                files.extend(edit.apply(&mut table).map_err(Refusal::Conflict)?);
            }
            let inserted = !pending.inserted.is_empty();
            for chunk in pending.inserted {
                files.push(chunk.file);
                table.add(chunk);
            }
            files.sort_unstable();
            files.dedup();
            changed.push((name, table, files, inserted));
        }
        let mut next = self.catalog_clone();
        for (name, table, files, inserted) in &changed {
            let dir = self.table_dir(table.id);
            for &file in files {
                let path = dir.join(format!("{file:020}.arrow"));
                match table.batches.iter().find(|c| c.file == file) {
                    Some(chunk) => write_chunk(&path, &table.schema, chunk).map_err(internal)?,
                    None => match fs::remove_file(&path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(internal(e.into()))
                        }
                        _ => {}
                    },
                }
            }
            if *inserted {
                next.next_row_ids
                    .insert(name.clone(), self.next_row_id[name.as_str()]);
            }
        }
        if changed.iter().any(|(.., inserted)| *inserted) {
            self.save(next)?;
        }
        for (name, table, ..) in changed {
            self.tables.insert(name, table);
        }
        Ok(())
    }

    /// Forgets transaction `txid`'s changes.
    pub(crate) fn rollback(&mut self, txid: u64) {
        self.pending.remove(&txid);
    }

    /// The changes transaction `txid` made to the table so far.
    fn pending_mut(&mut self, txid: u64, name: &str) -> &mut Pending {
        self.pending
            .entry(txid)
            .or_default()
            .entry(name.to_owned())
            .or_default()
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
            self.pending_mut(txid, &name)
                .inserted
                .push(Chunk::new(first, rows));
        }
        Ok(ids)
    }

    /// Sets, in transaction `txid`, the values a `PUT ?rows` batch gives (`$row_id`, then
    /// columns by name). Every row must exist as the transaction sees the table.
    pub(crate) fn update(
        &mut self,
        txid: u64,
        bucket: &str,
        schema: &str,
        table: &str,
        batch: &RecordBatch,
    ) -> Result<(), Refusal> {
        self.edit(txid, key(bucket, schema, table), |view| {
            Update::from_batch(&view.schema, batch).map(Edit::Update)
        })
    }

    /// Deletes, in transaction `txid`, the rows a `DELETE ?rows` batch names (a lone
    /// `$row_id` column). Every row must exist as the transaction sees the table.
    pub(crate) fn delete(
        &mut self,
        txid: u64,
        bucket: &str,
        schema: &str,
        table: &str,
        batch: &RecordBatch,
    ) -> Result<(), Refusal> {
        self.edit(txid, key(bucket, schema, table), |_| {
            edit::delete_ids(batch).map(Edit::Delete)
        })
    }

    /// Makes, in transaction `txid`, the edit `read` takes from a request of table `name` as
    /// the transaction sees it: at once on the rows the transaction inserted, and, checked on
    /// a copy, kept to apply on commit for the committed rows.
    fn edit(
        &mut self,
        txid: u64,
        name: String,
        read: impl FnOnce(&Table) -> Result<Edit, String>,
    ) -> Result<(), Refusal> {
        let mut view =
            self.committed_view(&name, self.pending.get(&txid).and_then(|p| p.get(&name)))?;
        let edit = read(&view).map_err(Refusal::BadRequest)?;
        let pending = self.pending_mut(txid, &name);
        let mut own = Table {
            id: view.id,
            schema: view.schema.clone(),
            batches: std::mem::take(&mut pending.inserted),
        };
        let (mine, committed) = edit.split(|id| own.contains(id));
        let outcome = if committed.is_empty() {
            Ok(())
        } else {
            committed.apply(&mut view).map(drop)
        }
        .and_then(|()| mine.apply(&mut own).map(drop));
        pending.inserted = own.batches;
        outcome.map_err(Refusal::BadRequest)?;
        if !committed.is_empty() {
            pending.edits.push(committed);
        }
        Ok(())
    }

    fn table_dir(&self, id: u64) -> PathBuf {
        self.dir.join("tables").join(id.to_string())
    }

    fn catalog_clone(&self) -> CatalogFile {
        CatalogFile {
            schemas: self.catalog.schemas.clone(),
            tables: self.catalog.tables.clone(),
            next_table_id: self.catalog.next_table_id,
            next_row_ids: self.catalog.next_row_ids.clone(),
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

/// Writes a chunk to its file: its rows, after a `$row_id` column unless their ids run
/// from the number naming the file.
fn write_chunk(path: &Path, schema: &SchemaRef, chunk: &Chunk) -> anyhow::Result<()> {
    if matches!(chunk.ids, RowIds::Run(first) if first == chunk.file) {
        return write_ipc(path, schema, Some(&chunk.batch));
    }
    let mut fields = vec![Arc::new(Field::new(ROW_ID, DataType::UInt64, false))];
    fields.extend(schema.fields().iter().cloned());
    let mut columns = vec![chunk.ids.to_array(chunk.batch.num_rows())];
    columns.extend(chunk.batch.columns().iter().cloned());
    let schema = Arc::new(Schema::new(fields));
    write_ipc(
        path,
        &schema,
        Some(&RecordBatch::try_new(schema.clone(), columns)?),
    )
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
    let mut table = Table {
        id,
        schema: schema.clone(),
        batches: Vec::new(),
    };
    for file in files {
        let first: u64 = file
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("unexpected file {}", file.display()))?;
        let mut next = first;
        for batch in open(&file)? {
            let batch = batch?;
            let chunk = if batch
                .schema()
                .fields()
                .first()
                .is_some_and(|f| f.name() == ROW_ID)
            {
                let ids = batch.column(0).as_primitive::<UInt64Type>().clone();
                let rows = RecordBatch::try_new(schema.clone(), batch.columns()[1..].to_vec())
                    .with_context(|| file.display().to_string())?;
                Chunk::with_ids(first, RowIds::Listed(ids), rows)
            } else {
                Chunk::new(next, batch)
            };
            if chunk.batch.num_rows() == 0 {
                continue;
            }
            if chunk.first() < table.end_row_id().max(first) {
                bail!(
                    "{}: rows from {} overlap rows up to {}",
                    file.display(),
                    chunk.first(),
                    table.end_row_id()
                );
            }
            next = chunk.end();
            table.batches.push(chunk);
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int64Type;
    use arrow_array::{Int64Array, UInt64Array};

    fn open(dir: &Path) -> Store {
        let mut store = Store::open(dir, vec!["b".into()]).unwrap();
        if !store.has_schema("b", "s") {
            store.create_schema("b", "s").unwrap();
            let columns = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
            store.create_table("b", "s", "t", columns).unwrap();
        }
        store
    }

    fn xs(values: Vec<i64>) -> RecordBatch {
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(values)) as ArrayRef)]).unwrap()
    }

    fn edit(ids: Vec<u64>, x: Option<Vec<i64>>) -> RecordBatch {
        let mut columns = vec![(ROW_ID, Arc::new(UInt64Array::from(ids)) as ArrayRef)];
        if let Some(x) = x {
            columns.push(("x", Arc::new(Int64Array::from(x))));
        }
        RecordBatch::try_from_iter(columns).unwrap()
    }

    /// (row id, x) of every row as transaction `txid` sees the table.
    fn rows(store: &Store, txid: u64) -> Vec<(u64, i64)> {
        let table = store.table("b", "s", "t", txid).unwrap();
        let mut out = Vec::new();
        for (ids, batch, _) in table.rows(0, u64::MAX) {
            let x = batch.column(0).as_primitive::<Int64Type>();
            out.extend((0..batch.num_rows()).map(|i| (ids.get(i), x.value(i))));
        }
        out
    }

    #[test]
    fn edits_are_seen_by_their_transaction_and_kept_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        assert_eq!(
            store
                .insert(1, "b", "s", "t", &xs(vec![10, 11, 12, 13]))
                .unwrap(),
            0..4
        );
        store.commit(1).unwrap();
        // Transaction 2 edits committed rows and its own.
        assert_eq!(
            store.insert(2, "b", "s", "t", &xs(vec![14, 15])).unwrap(),
            4..6
        );
        store
            .update(2, "b", "s", "t", &edit(vec![5, 1], Some(vec![-5, -1])))
            .unwrap();
        store
            .delete(2, "b", "s", "t", &edit(vec![0, 4], None))
            .unwrap();
        let edited = vec![(1, -1), (2, 12), (3, 13), (5, -5)];
        assert_eq!(rows(&store, 2), edited);
        assert_eq!(rows(&store, 3), vec![(0, 10), (1, 11), (2, 12), (3, 13)]);
        // A row deleted in the transaction is gone for it.
        let err = store.update(2, "b", "s", "t", &edit(vec![0], Some(vec![1])));
        assert!(matches!(err, Err(Refusal::BadRequest(m)) if m == "no row 0"));
        store.rollback(2);
        assert_eq!(rows(&store, 2), vec![(0, 10), (1, 11), (2, 12), (3, 13)]);
        // The same again, committed: kept, and kept across a restart with the same ids.
        store.insert(4, "b", "s", "t", &xs(vec![14, 15])).unwrap();
        store
            .update(4, "b", "s", "t", &edit(vec![7, 1], Some(vec![-7, -1])))
            .unwrap();
        store
            .delete(4, "b", "s", "t", &edit(vec![0, 6], None))
            .unwrap();
        let edited = vec![(1, -1), (2, 12), (3, 13), (7, -7)];
        store.commit(4).unwrap();
        assert_eq!(rows(&store, 5), edited);
        drop(store);
        let mut store = open(dir.path());
        assert_eq!(rows(&store, 5), edited);
        // Ids are not handed out again, not even those of deleted rows at the end.
        store
            .delete(5, "b", "s", "t", &edit(vec![7], None))
            .unwrap();
        store.commit(5).unwrap();
        drop(store);
        let mut store = open(dir.path());
        assert_eq!(store.insert(6, "b", "s", "t", &xs(vec![16])).unwrap(), 8..9);
    }

    #[test]
    fn an_edit_of_rows_another_transaction_deleted_fails_its_commit_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store.insert(1, "b", "s", "t", &xs(vec![10, 11])).unwrap();
        store.commit(1).unwrap();
        store.insert(2, "b", "s", "t", &xs(vec![12])).unwrap();
        store
            .update(2, "b", "s", "t", &edit(vec![0], Some(vec![-10])))
            .unwrap();
        store
            .delete(3, "b", "s", "t", &edit(vec![0], None))
            .unwrap();
        store.commit(3).unwrap();
        assert!(
            matches!(store.table("b", "s", "t", 2), Err(Refusal::Conflict(m)) if m == "no row 0")
        );
        assert!(matches!(store.commit(2), Err(Refusal::Conflict(_))));
        assert_eq!(rows(&store, 4), vec![(1, 11)]);
    }

    #[test]
    fn edits_of_a_missing_table_or_by_a_bad_batch_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let missing = store.update(1, "b", "s", "nope", &edit(vec![0], Some(vec![1])));
        assert!(matches!(missing, Err(Refusal::NotFound(_))));
        let missing = store.delete(1, "b", "s", "nope", &edit(vec![0], None));
        assert!(matches!(missing, Err(Refusal::NotFound(_))));
        let bad = store.delete(1, "b", "s", "t", &xs(vec![0]));
        assert!(matches!(bad, Err(Refusal::BadRequest(m)) if m.contains("$row_id")));
        let unknown = store.delete(1, "b", "s", "t", &edit(vec![0], None));
        assert!(matches!(unknown, Err(Refusal::BadRequest(m)) if m == "no row 0"));
    }
}
