//! `pocaduck-edge import`: a PoCADuck dataset (raw or optimized layout) into the edge
//! layout, read straight from its Parquet files (no DuckDB).
//!
//! Pass 1 reads only the label column of every file and counts rows per label. Labels are
//! then cut into partitions, contiguous label ranges whose rows fit the memory budget; each
//! partition is one pass over the files (skipping row groups whose label statistics lie
//! outside it, and decoding the others on a thread per core, handed over in order) that
//! gathers its labels' points. A label goes to the writer as soon as all
//! its rows are read and every smaller label has gone (at once for input sorted by label,
//! as PoCADuck's optimized layout is); the writer runs on its own thread, so sorting and
//! encoding overlap reading. Memory is therefore bounded by the budget plus the two labels
//! being handed over (or by the largest single label, which is never split), whatever the
//! input's size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use arrow_array::{
    Array, Int64Array, LargeListArray, ListArray, RecordBatch, StringArray, UInt64Array,
};
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::statistics::Statistics;
use pocaduck_edge_core::cloud::PackedRows;
use pocaduck_edge_core::write::{BlockCount, DatasetWriter, FileSink, WriterOptions};
use pocaduck_edge_core::PointCloud;

use crate::output_dir::write_aside;
use crate::row_groups::{self, FileGroups};

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Memory for gathering points by label; larger inputs take several passes.
    pub memory_budget_bytes: u64,
    /// Layout tuning of the output.
    pub writer: WriterOptions,
    /// Show progress bars (only on a terminal).
    pub progress: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            memory_budget_bytes: 512 << 20,
            writer: WriterOptions::default(),
            progress: false,
        }
    }
}

/// Which PoCADuck layout was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceLayout {
    /// `worker_*/data/*.parquet`: `label, block_id, data`.
    Raw,
    /// `optimized/**/*.parquet`: `label, data`.
    Optimized,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The layout read.
    pub layout: SourceLayout,
    /// Parquet files read.
    pub files_read: usize,
    /// Rows (points, duplicates included) read.
    pub rows_read: u64,
    /// Labels written.
    pub labels: u64,
    /// Distinct points written.
    pub points: u64,
    /// Passes over the input after the label count.
    pub passes: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Writes dataset files under a directory, creating folders as needed.
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink writing below `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
}

impl FileSink for DirSink {
    fn create(&mut self, path: &str) -> std::io::Result<Box<dyn Write + Send>> {
        let full = path
            .split('/')
            .fold(self.root.clone(), |p, part| p.join(part));
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(full)?,
        )))
    }
}

/// Imports the PoCADuck dataset at `source` into a new edge-layout dataset at `out`.
/// The output is written beside `out` and renamed into place only when complete.
pub fn import(source: &Path, out: &Path, options: &ImportOptions) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let (layout, files) = find_files(source)?;
    let (labels, points, rows_read, passes) =
        write_aside(out, |partial| import_into(partial, layout, &files, options))?;
    Ok(ImportReport {
        layout,
        files_read: files.len(),
        rows_read,
        labels,
        points,
        passes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The layout and its Parquet files, sorted by path.
fn find_files(source: &Path) -> anyhow::Result<(SourceLayout, Vec<PathBuf>)> {
    ensure!(source.is_dir(), "{} is not a directory", source.display());
    let mut optimized = Vec::new();
    let opt_dir = source.join("optimized");
    if opt_dir.is_dir() {
        walk_parquet(&opt_dir, &mut optimized)?;
    }
    if !optimized.is_empty() {
        optimized.sort();
        return Ok((SourceLayout::Optimized, optimized));
    }
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(source)? {
        let dir = entry?.path();
        let is_worker = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("worker_"));
        if is_worker && dir.join("data").is_dir() {
            for f in std::fs::read_dir(dir.join("data"))? {
                let f = f?.path();
                if f.extension().is_some_and(|e| e == "parquet") {
                    raw.push(f);
                }
            }
        }
    }
    if raw.is_empty() {
        bail!(
            "{} holds no PoCADuck data: neither optimized/**/*.parquet nor worker_*/data/*.parquet",
            source.display()
        );
    }
    raw.sort();
    Ok((SourceLayout::Raw, raw))
}

fn walk_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk_parquet(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

fn progress_bar(options: &ImportOptions, total: u64, what: &'static str) -> ProgressBar {
    if !options.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

/// Runs the passes; returns (labels, distinct points, rows read, passes).
fn import_into(
    partial: &Path,
    layout: SourceLayout,
    files: &[PathBuf],
    options: &ImportOptions,
) -> anyhow::Result<(u64, u64, u64, usize)> {
    // Every file's footer, read once for the count and every pass.
    let files = files
        .iter()
        .map(|path| FileGroups::whole(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let counts = count_labels(&files, options)?;
    let total_rows: u64 = counts.values().sum();
    ensure!(total_rows > 0, "the PoCADuck dataset has no points");
    let dims = find_dims(&files[0])?;
    // Each label's points are gathered into a vector sized from the count pass: the values
    // and a little per-row slack for the block map and the writer's buffers.
    let row_bytes = 8 * dims as u64 + 16;
    let partitions = partitions(&counts, options.memory_budget_bytes / row_bytes);
    let dim_names: Vec<String> = ["x", "y", "z"]
        .iter()
        .map(|s| s.to_string())
        .chain((3..dims).map(|d| format!("d{d}")))
        .take(dims)
        .collect();
    let writer = DatasetWriter::new(DirSink::new(partial), dim_names, options.writer.clone())?;
    let bar = progress_bar(options, total_rows, "importing");
    let (labels_tx, labels_rx) = std::sync::mpsc::sync_channel::<(u64, LabelRows)>(1);
    let (labels, rows_read, manifest) = std::thread::scope(|scope| {
        let writing = scope.spawn(move || write_labels(writer, dims, labels_rx));
        let mut rows_read = 0u64;
        let read = partitions.iter().try_for_each(|range| {
            gather(
                &files,
                layout,
                range,
                dims,
                &counts,
                &bar,
                &mut |label, acc| {
                    rows_read += acc.rows;
                    // A closed channel means the writer failed: its error is reported below.
                    labels_tx
                        .send((label, acc))
                        .map_err(|_| anyhow::anyhow!("the writer stopped"))
                },
            )
        });
        drop(labels_tx);
        let written = writing
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        let (labels, manifest) = written?;
        read?;
        anyhow::Ok((labels, rows_read, manifest))
    })?;
    bar.finish_and_clear();
    ensure!(
        rows_read == total_rows,
        "read {rows_read} rows in all, counted {total_rows}"
    );
    Ok((labels, manifest.point_count, rows_read, partitions.len()))
}

/// The writer's side of an import: labels in ascending order until the channel closes;
/// returns how many were written and the manifest.
fn write_labels(
    mut writer: DatasetWriter<DirSink>,
    dims: usize,
    labels: std::sync::mpsc::Receiver<(u64, LabelRows)>,
) -> anyhow::Result<(u64, pocaduck_edge_core::Manifest)> {
    let mut count = 0u64;
    for (label, acc) in labels {
        let blocks: Vec<BlockCount> = acc
            .blocks
            .into_iter()
            .map(|(block_id, point_count)| BlockCount {
                block_id,
                point_count,
            })
            .collect();
        match acc.points {
            Gathered::Packed(rows) => writer.push_packed(label, rows, &blocks)?,
            Gathered::Values(values) => {
                writer.push_label(label, PointCloud::new(dims, values)?, &blocks)?
            }
            Gathered::Empty => {}
        }
        count += 1;
    }
    Ok((count, writer.finish()?))
}

/// Rows per label, from the label column alone.
fn count_labels(
    files: &[FileGroups],
    options: &ImportOptions,
) -> anyhow::Result<BTreeMap<u64, u64>> {
    let rows: i64 = files
        .iter()
        .map(|f| f.metadata.metadata().file_metadata().num_rows())
        .sum();
    let bar = progress_bar(options, rows.max(0) as u64, "counting");
    let mut counts = BTreeMap::new();
    row_groups::read_in_order(files, &["label"], readers(), &mut |path, batch| {
        for label in labels_of(path, &batch, 0)? {
            *counts.entry(label).or_insert(0u64) += 1;
        }
        bar.inc(batch.num_rows() as u64);
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(counts)
}

/// Threads that read input row groups: one per core.
fn readers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// D: the length of the first point's list.
fn find_dims(first: &FileGroups) -> anyhow::Result<usize> {
    let path = first.path.as_path();
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, first.metadata.clone());
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["data"]);
    let mut reader = builder.with_projection(mask).with_batch_size(1).build()?;
    let batch = reader
        .next()
        .with_context(|| format!("{} has no rows", path.display()))??;
    let (offsets, _) = list_parts(path, batch.column(0).as_ref())?;
    let dims = offsets.length(0) as usize;
    ensure!(
        dims > 0,
        "{}: the first point has no coordinates",
        path.display()
    );
    Ok(dims)
}

/// Cuts the labels into contiguous ranges of at most `max_rows` rows (a bigger label alone).
fn partitions(counts: &BTreeMap<u64, u64>, max_rows: u64) -> Vec<RangeInclusive<u64>> {
    let mut out = Vec::new();
    let mut start: Option<u64> = None;
    let mut rows = 0u64;
    let mut last = 0u64;
    for (&label, &n) in counts {
        if let Some(s) = start {
            if rows + n > max_rows {
                out.push(s..=last);
                start = None;
                rows = 0;
            }
        }
        start.get_or_insert(label);
        rows += n;
        last = label;
    }
    if let Some(s) = start {
        out.push(s..=last);
    }
    out
}

#[derive(Default)]
struct LabelRows {
    points: Gathered,
    blocks: BTreeMap<String, u64>,
    rows: u64,
}

/// A label's rows as they are read: rows of 3 as packed keys (8 bytes a row) while they fit
/// around the first row, else int64 values.
#[derive(Default)]
enum Gathered {
    #[default]
    Empty,
    Packed(PackedRows),
    Values(Vec<i64>),
}

impl Gathered {
    /// Appends rows of `dims` values; `capacity` is the label's row count.
    fn extend(&mut self, values: &[i64], dims: usize, capacity: usize) {
        if values.is_empty() {
            return;
        }
        if let Gathered::Empty = self {
            *self = match PackedRows::new(&values[..dims], capacity) {
                Some(packed) => Gathered::Packed(packed),
                None => Gathered::Values(Vec::with_capacity(capacity * dims)),
            };
        }
        match self {
            Gathered::Packed(packed) => {
                if !packed.extend(values) {
                    // A row too far from the first: the label goes on as int64 values.
                    let Gathered::Packed(packed) = std::mem::take(self) else {
                        unreachable!("matched above");
                    };
                    let mut all = packed.into_cloud().into_values();
                    all.extend_from_slice(values);
                    *self = Gathered::Values(all);
                }
            }
            Gathered::Values(all) => all.extend_from_slice(values),
            Gathered::Empty => unreachable!("set above"),
        }
    }
}

/// One pass: every row whose label is in `range`, grouped by label; each label goes to
/// `done` once all its rows (as counted) are read and every smaller label of the range has
/// gone, so labels go in ascending order.
fn gather(
    files: &[FileGroups],
    layout: SourceLayout,
    range: &RangeInclusive<u64>,
    dims: usize,
    counts: &BTreeMap<u64, u64>,
    bar: &ProgressBar,
    done: &mut dyn FnMut(u64, LabelRows) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut out: BTreeMap<u64, LabelRows> = BTreeMap::new();
    let mut order = counts.range(range.clone()).peekable();
    let mut hand_over = |out: &mut BTreeMap<u64, LabelRows>| -> anyhow::Result<()> {
        while let Some((&label, &count)) = order.peek() {
            match out.get(&label) {
                Some(acc) if acc.rows == count => {
                    let acc = out.remove(&label).expect("just seen");
                    done(label, acc)?;
                    order.next();
                }
                _ => break,
            }
        }
        Ok(())
    };
    let columns: &[&str] = match layout {
        SourceLayout::Raw => &["label", "block_id", "data"],
        SourceLayout::Optimized => &["label", "data"],
    };
    let chosen: Vec<FileGroups> = files
        .iter()
        .map(|f| f.filtered(|g| may_hold(g, range)))
        .filter(|f| !f.groups.is_empty())
        .collect();
    row_groups::read_in_order(&chosen, columns, readers(), &mut |path, batch| {
        add_batch(path, &batch, layout, range, dims, counts, &mut out)?;
        bar.inc(batch.num_rows() as u64);
        hand_over(&mut out)
    })?;
    if let Some((label, acc)) = out.into_iter().next() {
        let counted = counts.get(&label).copied().unwrap_or(0);
        bail!(
            "label {label}: read {} rows, the label column counted {counted}",
            acc.rows
        );
    }
    if let Some((label, counted)) = order.next() {
        bail!("label {label}: read 0 rows, the label column counted {counted}");
    }
    Ok(())
}

/// Whether a row group's label statistics (when present) overlap `range`.
fn may_hold(
    group: &parquet::file::metadata::RowGroupMetaData,
    range: &RangeInclusive<u64>,
) -> bool {
    let Some(stats) = group.columns().first().and_then(|c| c.statistics()) else {
        return true;
    };
    match stats {
        Statistics::Int64(s) => match (s.min_opt(), s.max_opt()) {
            // Signed statistics order labels ≥ 2^63 first; only trust them when both are non-negative.
            (Some(&lo), Some(&hi)) if lo >= 0 => {
                (lo as u64) <= *range.end() && *range.start() <= hi as u64
            }
            _ => true,
        },
        _ => true,
    }
}

/// Adds a batch's rows in `range` to `out`, a run of rows of one label at a time (the
/// points of a run are contiguous in the list column: one copy per run).
fn add_batch(
    path: &Path,
    batch: &RecordBatch,
    layout: SourceLayout,
    range: &RangeInclusive<u64>,
    dims: usize,
    counts: &BTreeMap<u64, u64>,
    out: &mut BTreeMap<u64, LabelRows>,
) -> anyhow::Result<()> {
    let labels = labels_of(path, batch, 0)?;
    let data_col = batch.num_columns() - 1;
    let values = list_values(path, batch.column(data_col).as_ref(), &labels, dims)?;
    let blocks = match layout {
        SourceLayout::Raw => Some(
            batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .with_context(|| format!("{}: block_id is not a string column", path.display()))?,
        ),
        SourceLayout::Optimized => None,
    };
    let mut start = 0;
    while start < labels.len() {
        let label = labels[start];
        let end = start + labels[start..].iter().take_while(|l| **l == label).count();
        if range.contains(&label) {
            let acc = out.entry(label).or_default();
            acc.points.extend(
                &values[start * dims..end * dims],
                dims,
                counts.get(&label).copied().unwrap_or(0) as usize,
            );
            acc.rows += (end - start) as u64;
            if let Some(blocks) = blocks {
                add_blocks(path, blocks, start..end, &mut acc.blocks)?;
            }
        }
        start = end;
    }
    Ok(())
}

/// Counts rows per block id over `rows`, a run of equal ids at a time.
fn add_blocks(
    path: &Path,
    blocks: &StringArray,
    rows: std::ops::Range<usize>,
    counts: &mut BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    let mut start = rows.start;
    while start < rows.end {
        ensure!(
            blocks.is_valid(start),
            "{}: row {start} has no block_id",
            path.display()
        );
        let id = blocks.value(start);
        let end = start
            + (start..rows.end)
                .take_while(|&r| blocks.is_valid(r) && blocks.value(r) == id)
                .count();
        match counts.get_mut(id) {
            Some(n) => *n += (end - start) as u64,
            None => {
                counts.insert(id.to_string(), (end - start) as u64);
            }
        }
        start = end;
    }
    Ok(())
}

/// The labels of column `col`, int64 (PoCADuck's type; reinterpreted as u64) or uint64.
fn labels_of(path: &Path, batch: &RecordBatch, col: usize) -> anyhow::Result<Vec<u64>> {
    let column = batch.column(col);
    ensure!(
        column.null_count() == 0,
        "{}: the label column has nulls",
        path.display()
    );
    if let Some(a) = column.as_any().downcast_ref::<Int64Array>() {
        Ok(a.values().iter().map(|v| *v as u64).collect())
    } else if let Some(a) = column.as_any().downcast_ref::<UInt64Array>() {
        Ok(a.values().to_vec())
    } else {
        bail!(
            "{}: the label column is {}, expected int64 or uint64",
            path.display(),
            column.data_type()
        )
    }
}

/// The offsets of a `list` or a `large_list` column.
#[derive(Debug)]
enum ListOffsets<'a> {
    List(&'a [i32]),
    Large(&'a [i64]),
}

impl ListOffsets<'_> {
    /// The number of values in list `r`.
    fn length(&self, r: usize) -> i64 {
        match self {
            Self::List(o) => i64::from(o[r + 1] - o[r]),
            Self::Large(o) => o[r + 1] - o[r],
        }
    }

    /// Where the first list's values start.
    fn first(&self) -> usize {
        match self {
            Self::List(o) => o[0] as usize,
            Self::Large(o) => o[0] as usize,
        }
    }
}

/// The offsets and int64 values of a `list<int64>` column without nulls.
fn list_parts<'a>(
    path: &Path,
    column: &'a dyn Array,
) -> anyhow::Result<(ListOffsets<'a>, &'a [i64])> {
    ensure!(
        column.null_count() == 0,
        "{}: the data column has null points",
        path.display()
    );
    let (offsets, values) = if let Some(l) = column.as_any().downcast_ref::<ListArray>() {
        (ListOffsets::List(l.value_offsets()), l.values())
    } else if let Some(l) = column.as_any().downcast_ref::<LargeListArray>() {
        (ListOffsets::Large(l.value_offsets()), l.values())
    } else {
        bail!(
            "{}: the data column is {}, expected list<int64>",
            path.display(),
            column.data_type()
        )
    };
    let ints = values
        .as_any()
        .downcast_ref::<Int64Array>()
        .with_context(|| format!("{}: the data column does not hold int64", path.display()))?;
    ensure!(
        ints.null_count() == 0,
        "{}: the data column has null coordinates",
        path.display()
    );
    Ok((offsets, ints.values()))
}

/// The int64 values of a `list<int64>` column without nulls whose every list holds `dims`
/// values (checked: a row that does not is named, with its label): row `r`'s values are
/// `[r * dims, (r + 1) * dims)` of the returned slice.
fn list_values<'a>(
    path: &Path,
    column: &'a dyn Array,
    labels: &[u64],
    dims: usize,
) -> anyhow::Result<&'a [i64]> {
    let (offsets, values) = list_parts(path, column)?;
    match offsets {
        ListOffsets::List(o) => check_lengths(path, o, labels, dims)?,
        ListOffsets::Large(o) => check_lengths(path, o, labels, dims)?,
    }
    let first = offsets.first();
    Ok(&values[first..first + labels.len() * dims])
}

/// Checks that every list (between consecutive `offsets`) holds `dims` values.
fn check_lengths<O: Copy + Into<i64>>(
    path: &Path,
    offsets: &[O],
    labels: &[u64],
    dims: usize,
) -> anyhow::Result<()> {
    let length = |r: usize| offsets[r + 1].into() - offsets[r].into();
    let all = offsets.windows(2).fold(true, |ok, w| {
        ok & (w[1].into() - w[0].into() == dims as i64)
    });
    if !all {
        let row = (0..labels.len())
            .find(|&r| length(r) != dims as i64)
            .expect("a list of another length");
        bail!(
            "{}: row {row} (label {}) has {} coordinates, the dataset {dims}",
            path.display(),
            labels[row],
            length(row)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow_array::types::Int64Type;

    use super::*;

    #[test]
    fn point_lists_are_read_in_place_and_bad_ones_refused_by_row_and_label() {
        let path = Path::new("part.parquet");
        let rows = [
            Some(vec![Some(1), Some(2), Some(3)]),
            Some(vec![Some(-4), Some(5), Some(i64::MAX)]),
        ];
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(rows.clone());
        let large = LargeListArray::from_iter_primitive::<Int64Type, _, _>(rows);
        for column in [&list as &dyn Array, &large] {
            let (offsets, _) = list_parts(path, column).unwrap();
            assert_eq!(offsets.length(0), 3);
            // A slice starts its values past the first list's.
            let tail = column.slice(1, 1);
            assert_eq!(
                list_values(path, tail.as_ref(), &[9], 3).unwrap(),
                [-4, 5, i64::MAX]
            );
        }
        let short = ListArray::from_iter_primitive::<Int64Type, _, _>([
            Some(vec![Some(1), Some(2), Some(3)]),
            Some(vec![Some(4), Some(5)]),
        ]);
        let e = list_values(path, &short, &[7, 8], 3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1 (label 8) has 2 coordinates, the dataset 3"),
            "{e}"
        );
        let null_point =
            ListArray::from_iter_primitive::<Int64Type, _, _>([None, Some(vec![Some(1)])]);
        let e = list_parts(path, &null_point).unwrap_err().to_string();
        assert!(
            e.contains("part.parquet: the data column has null points"),
            "{e}"
        );
        let null_value =
            ListArray::from_iter_primitive::<Int64Type, _, _>([Some(vec![Some(1), None])]);
        let e = list_parts(path, &null_value).unwrap_err().to_string();
        assert!(e.contains("null coordinates"), "{e}");
        let e = list_parts(path, &Int64Array::from(vec![1]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the data column is Int64, expected list<int64>"),
            "{e}"
        );
    }

    fn values(g: Gathered) -> Vec<i64> {
        match g {
            Gathered::Packed(p) => p.into_cloud().into_values(),
            Gathered::Values(v) => v,
            Gathered::Empty => Vec::new(),
        }
    }

    #[test]
    fn rows_gather_packed_until_one_lies_too_far() {
        let near = [5, -6, 7, 5 + (1 << 19), -6, 7 - (1 << 19)];
        let mut g = Gathered::default();
        g.extend(&near[..3], 3, 4);
        g.extend(&near[3..], 3, 4);
        assert!(matches!(g, Gathered::Packed(ref p) if p.len() == 2));
        let far = [1, 2, 3, i64::MAX, 0, 0];
        g.extend(&far, 3, 4);
        assert!(matches!(g, Gathered::Values(_)));
        assert_eq!(
            values(g),
            [&near[..], &far[..]].concat(),
            "every row, in order"
        );

        let mut flat = Gathered::default();
        flat.extend(&[1, 2, 3, 4], 2, 2);
        assert!(matches!(flat, Gathered::Values(_)));
        assert_eq!(values(flat), [1, 2, 3, 4]);
    }

    #[test]
    fn partitions_respect_the_budget_and_never_split_a_label() {
        let counts: BTreeMap<u64, u64> = [(1, 5), (2, 5), (3, 20), (4, 1), (5, 1)]
            .into_iter()
            .collect();
        assert_eq!(partitions(&counts, 10), vec![1..=2, 3..=3, 4..=5]);
        assert_eq!(partitions(&counts, 1000), vec![1..=5]);
        assert_eq!(
            partitions(&counts, 1),
            vec![1..=1, 2..=2, 3..=3, 4..=4, 5..=5]
        );
    }
}
