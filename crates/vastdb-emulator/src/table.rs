//! A table's rows: chunks of rows in row id order, each with the ids of its rows and the
//! value range of its integer columns, and the updates and deletes that rewrite them.
//!
//! A chunk holds the rows of one insert. Its ids run without a gap from the id of its first
//! row until an update or delete leaves gaps; they then are listed. Every id a chunk holds
//! lies in the range the insert was given, so chunks never overlap and stay in order.

use std::sync::Arc;

use arrow_arith::aggregate::{max, min};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, BooleanArray, RecordBatch, UInt64Array};
use arrow_schema::{DataType, SchemaRef};
use arrow_select::filter::filter_record_batch;
use arrow_select::interleave::interleave;

use crate::edit::Update;

/// A table: its schema and its rows, in chunks in row id order.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// The table's number, naming its directory and returned as its handle.
    pub id: u64,
    /// The columns, in creation order.
    pub schema: SchemaRef,
    /// The rows, in row id order.
    pub batches: Vec<Chunk>,
}

/// Per column of a chunk: the least and greatest non-null value of an integer column.
pub(crate) type Bounds = [Option<(i128, i128)>];

/// The ids of a chunk's rows, ascending.
#[derive(Debug, Clone)]
pub(crate) enum RowIds {
    /// Consecutive ids from this one.
    Run(u64),
    /// Each row's id.
    Listed(UInt64Array),
}

impl RowIds {
    /// The id of row `i`.
    pub(crate) fn get(&self, i: usize) -> u64 {
        match self {
            Self::Run(first) => first + i as u64,
            Self::Listed(ids) => ids.value(i),
        }
    }

    /// The ids of rows `offset..offset + len`.
    pub(crate) fn slice(&self, offset: usize, len: usize) -> Self {
        match self {
            Self::Run(first) => Self::Run(first + offset as u64),
            Self::Listed(ids) => Self::Listed(ids.slice(offset, len)),
        }
    }

    /// The ids of the first `len` rows as an array.
    pub(crate) fn to_array(&self, len: usize) -> ArrayRef {
        match self {
            Self::Run(first) => {
                Arc::new(UInt64Array::from_iter_values(*first..*first + len as u64))
            }
            Self::Listed(ids) => Arc::new(ids.slice(0, len)),
        }
    }

    /// Of the first `len` rows, the position of the first whose id is at least `id`.
    pub(crate) fn position(&self, id: u64, len: usize) -> usize {
        match self {
            Self::Run(first) => (id.saturating_sub(*first) as usize).min(len),
            Self::Listed(ids) => ids.values()[..len].partition_point(|&v| v < id),
        }
    }
}

/// Rows of one insert: a batch, its rows' ids, and the range of each integer column (as a
/// VAST cluster keeps per-chunk statistics, so a scan can skip chunks). Never empty.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// The id of the insert's first row, naming the chunk's file.
    pub file: u64,
    /// The rows' ids.
    pub ids: RowIds,
    /// The rows.
    pub batch: RecordBatch,
    /// The columns' value ranges.
    pub bounds: Arc<Bounds>,
}

impl Chunk {
    /// A chunk of `batch`, its rows having consecutive ids from `first`.
    pub(crate) fn new(first: u64, batch: RecordBatch) -> Self {
        Self::with_ids(first, RowIds::Run(first), batch)
    }

    /// A chunk of `batch` with these ids, from the insert whose first row had id `file`.
    pub(crate) fn with_ids(file: u64, ids: RowIds, batch: RecordBatch) -> Self {
        let ids = match ids {
            RowIds::Listed(listed)
                if !listed.is_empty()
                    && listed.value(listed.len() - 1) - listed.value(0) + 1
                        == listed.len() as u64 =>
            {
                RowIds::Run(listed.value(0))
            }
            ids => ids,
        };
        let bounds = batch.columns().iter().map(integer_range).collect();
        Self {
            file,
            ids,
            batch,
            bounds,
        }
    }

    /// The id of the first row.
    pub(crate) fn first(&self) -> u64 {
        self.ids.get(0)
    }

    /// One past the id of the last row.
    pub(crate) fn end(&self) -> u64 {
        self.ids.get(self.batch.num_rows() - 1) + 1
    }

    /// The position of the row with this id, if the chunk holds it.
    fn position_of(&self, id: u64) -> Option<usize> {
        let at = self.ids.position(id, self.batch.num_rows());
        (at < self.batch.num_rows() && self.ids.get(at) == id).then_some(at)
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

/// A chunk's index and, per row of an edit it holds, the row's position in the chunk and
/// in the edit.
type Group = (usize, Vec<(usize, usize)>);

impl Table {
    /// The number of rows.
    pub(crate) fn num_rows(&self) -> u64 {
        self.batches.iter().map(|c| c.batch.num_rows() as u64).sum()
    }

    /// One past the highest row id.
    pub(crate) fn end_row_id(&self) -> u64 {
        self.batches.last().map_or(0, Chunk::end)
    }

    /// Adds a chunk in row id order.
    pub(crate) fn add(&mut self, chunk: Chunk) {
        let at = self.batches.partition_point(|c| c.first() < chunk.first());
        self.batches.insert(at, chunk);
    }

    /// Whether a row has this id.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.locate(id).is_some()
    }

    /// The chunk and position of the row with this id.
    fn locate(&self, id: u64) -> Option<(usize, usize)> {
        let chunk = self.batches.partition_point(|c| c.end() <= id);
        let at = self.batches.get(chunk)?.position_of(id)?;
        Some((chunk, at))
    }

    /// The rows with ids in `start..end`, as zero-copy slices with their ids and the bounds
    /// of the chunk they come from.
    pub(crate) fn rows(&self, start: u64, end: u64) -> Vec<(RowIds, RecordBatch, &Bounds)> {
        let mut out = Vec::new();
        for chunk in &self.batches {
            let len = chunk.batch.num_rows();
            let (from, to) = (chunk.ids.position(start, len), chunk.ids.position(end, len));
            if from < to {
                out.push((
                    chunk.ids.slice(from, to - from),
                    chunk.batch.slice(from, to - from),
                    &chunk.bounds[..],
                ));
            }
        }
        out
    }

    /// Per chunk holding some of `ids` (ascending), the positions of those rows; or the first
    /// id no row has.
    fn group(&self, ids: &[u64]) -> Result<Vec<Group>, String> {
        let mut groups: Vec<Group> = Vec::new();
        for (source, &id) in ids.iter().enumerate() {
            let (chunk, at) = self.locate(id).ok_or_else(|| format!("no row {id}"))?;
            match groups.last_mut() {
                Some((c, rows)) if *c == chunk => rows.push((at, source)),
                _ => groups.push((chunk, vec![(at, source)])),
            }
        }
        Ok(groups)
    }

    /// Writes the update's values into its rows and returns the files of the chunks changed.
    /// Nothing changes when a row is missing or a value does not fit its column.
    pub(crate) fn update(&mut self, update: &Update) -> Result<Vec<u64>, String> {
        let groups = self.group(&update.ids)?;
        let mut rewritten = Vec::with_capacity(groups.len());
        for (chunk, rows) in &groups {
            let old = &self.batches[*chunk];
            let mut columns = old.batch.columns().to_vec();
            for (column, values) in &update.columns {
                let mut picks: Vec<(usize, usize)> =
                    (0..old.batch.num_rows()).map(|i| (0, i)).collect();
                for &(at, source) in rows {
                    picks[at] = (1, source);
                }
                columns[*column] =
                    interleave(&[columns[*column].as_ref(), values.as_ref()], &picks)
                        .map_err(|e| e.to_string())?;
            }
            let batch = RecordBatch::try_new(self.schema.clone(), columns)
                .map_err(|e| format!("the update does not fit the table: {e}"))?;
            rewritten.push((*chunk, Chunk::with_ids(old.file, old.ids.clone(), batch)));
        }
        let mut files = Vec::with_capacity(rewritten.len());
        for (at, chunk) in rewritten {
            files.push(chunk.file);
            self.batches[at] = chunk;
        }
        Ok(files)
    }

    /// Removes the rows with these ids (ascending) and returns the files of the chunks
    /// changed. Nothing changes when a row is missing.
    pub(crate) fn delete(&mut self, ids: &[u64]) -> Result<Vec<u64>, String> {
        let groups = self.group(ids)?;
        let mut files = Vec::with_capacity(groups.len());
        for (chunk, rows) in groups.into_iter().rev() {
            let old = &self.batches[chunk];
            let len = old.batch.num_rows();
            files.push(old.file);
            if rows.len() == len {
                self.batches.remove(chunk);
                continue;
            }
            let mut keep = vec![true; len];
            for (at, _) in rows {
                keep[at] = false;
            }
            let keep = BooleanArray::from(keep);
            let batch = filter_record_batch(&old.batch, &keep).map_err(|e| e.to_string())?;
            let kept = arrow_select::filter::filter(&old.ids.to_array(len), &keep)
                .map_err(|e| e.to_string())?;
            let ids = RowIds::Listed(kept.as_primitive::<UInt64Type>().clone());
            self.batches[chunk] = Chunk::with_ids(old.file, ids, batch);
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    /// Chunks of rows 0..4 and 10..13 (`x` is the row id, `name` "r<id>").
    fn table() -> Table {
        let schema = schema();
        let chunk = |first: u64, len: u64| {
            let ids = first..first + len;
            let xs = Int64Array::from_iter_values(ids.clone().map(|i| i as i64));
            let names = StringArray::from_iter_values(ids.map(|i| format!("r{i}")));
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(xs), Arc::new(names)]).unwrap();
            Chunk::new(first, batch)
        };
        Table {
            id: 0,
            schema: schema.clone(),
            batches: vec![chunk(0, 4), chunk(10, 3)],
        }
    }

    /// (row id, x, name) of every row, through `rows`.
    fn contents(table: &Table) -> Vec<(u64, i64, String)> {
        let mut out = Vec::new();
        for (ids, batch, _) in table.rows(0, u64::MAX) {
            let xs = batch.column(0).as_primitive::<Int64Type>();
            let names = batch.column(1).as_string::<i32>();
            for i in 0..batch.num_rows() {
                out.push((ids.get(i), xs.value(i), names.value(i).to_owned()));
            }
        }
        out
    }

    fn update(ids: Vec<u64>, xs: Vec<i64>) -> Update {
        Update {
            ids,
            columns: vec![(0, Arc::new(Int64Array::from(xs)))],
        }
    }

    #[test]
    fn updates_rewrite_only_the_named_rows_and_columns() {
        let mut table = table();
        let files = table
            .update(&update(vec![1, 3, 11], vec![-1, -3, -11]))
            .unwrap();
        assert_eq!(files, vec![0, 10]);
        let got = contents(&table);
        assert_eq!(got[1], (1, -1, "r1".into()));
        assert_eq!(got[3], (3, -3, "r3".into()));
        assert_eq!(got[5], (11, -11, "r11".into()));
        assert_eq!(got[0], (0, 0, "r0".into()));
        // The chunk's statistics follow its values.
        assert_eq!(table.batches[0].bounds[0], Some((-3, 2)));
    }

    #[test]
    fn deletes_leave_gaps_in_the_ids_and_drop_emptied_chunks() {
        let mut table = table();
        assert_eq!(table.delete(&[0, 2]).unwrap(), vec![0]);
        assert!(matches!(table.batches[0].ids, RowIds::Listed(_)));
        let ids: Vec<u64> = contents(&table).iter().map(|r| r.0).collect();
        assert_eq!(ids, vec![1, 3, 10, 11, 12]);
        // Rows in a gap's range are not there; paging from inside a gap resumes after it.
        assert!(!table.contains(2));
        let (ids, batch, _) = &table.rows(2, 11)[0];
        assert_eq!((ids.get(0), batch.num_rows()), (3, 1));
        assert_eq!(table.delete(&[10, 11, 12]).unwrap(), vec![10]);
        assert_eq!(table.batches.len(), 1);
        assert_eq!(table.end_row_id(), 4);
        // Deleting the first rows of a run leaves a run.
        let mut table = self::table();
        table.delete(&[10]).unwrap();
        assert!(matches!(table.batches[1].ids, RowIds::Run(11)));
        assert_eq!(table.batches[1].file, 10);
    }

    #[test]
    fn an_edit_naming_a_missing_row_changes_nothing() {
        let mut table = table();
        let before = contents(&table);
        for missing in [4, 9, 13, u64::MAX] {
            let err = table
                .update(&update(vec![1, missing], vec![7, 7]))
                .unwrap_err();
            assert_eq!(err, format!("no row {missing}"));
            assert_eq!(
                table.delete(&[0, missing]).unwrap_err(),
                format!("no row {missing}")
            );
        }
        table.delete(&[2]).unwrap();
        assert_eq!(table.delete(&[2]).unwrap_err(), "no row 2");
        assert_eq!(contents(&table).len(), before.len() - 1);
    }

    #[test]
    fn an_update_that_breaks_a_column_is_refused_whole() {
        let mut table = table();
        table.schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let null = Update {
            ids: vec![1, 11],
            columns: vec![(0, Arc::new(Int64Array::from(vec![Some(5), None])))],
        };
        let err = table.update(&null).unwrap_err();
        assert!(
            err.starts_with("the update does not fit the table"),
            "{err}"
        );
        assert_eq!(contents(&table)[1], (1, 1, "r1".into()));
    }
}
