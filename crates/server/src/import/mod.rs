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

mod columns;
mod gather;
mod source;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::ensure;
use indicatif::{ProgressBar, ProgressStyle};
use pocaduck_edge_core::write::{BlockCount, DatasetWriter, FileSink, WriterOptions};
use pocaduck_edge_core::PointCloud;

use crate::output_dir::write_aside;
use crate::row_groups::{self, FileGroups};
use columns::{find_dims, labels_of};
use gather::{gather, Gathered, LabelRows};
use source::find_files;

pub(crate) use source::SourceLayout;

/// How to import.
#[derive(Debug, Clone)]
pub(crate) struct ImportOptions {
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

/// What an import did.
#[derive(Debug, Clone)]
pub(crate) struct ImportReport {
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
pub(crate) struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink writing below `root`.
    pub(crate) fn new(root: &Path) -> Self {
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
pub(crate) fn import(
    source: &Path,
    out: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
