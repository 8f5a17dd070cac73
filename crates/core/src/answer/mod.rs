//! Whole answers of the read API, decoded: an Arrow IPC stream (`label: uint64,
//! points: fixed_size_list<int64>[D]`, or `label` and one integer column per dim) or a
//! Parquet file (`label` and one int32/int64 column per dim, as the API's `format=parquet`
//! and the edge layout's points files), into one `N × D` cloud with its label runs.

mod arrow_stream;
mod parquet_file;
mod points;

use std::ops::Range;

use arrow_buffer::ScalarBuffer;

use crate::cloud::{BBox, Column};

pub use arrow_stream::decode_arrow;
pub use parquet_file::decode_parquet;

/// Rows of one label in a [`Labelled`] cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRun {
    /// The label.
    pub label: u64,
    /// Its rows in the cloud.
    pub rows: Range<usize>,
    /// The bounds of those rows as the answer names them (the label's index entry, or an
    /// answer's `pocaduck_edge:bbox`): unchecked, so only a hint.
    pub bbox_hint: Option<BBox>,
}

/// How a [`Labelled`] answer holds its points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `N × D` row-major int64 in pieces of whole rows (Arrow answers: each record batch's
    /// values, held in place in the answer).
    Rows(Vec<ScalarBuffer<i64>>),
    /// One column per dim, as stored, in pieces of whole rows (each an Arrow answer's
    /// record batch, held where it lies in the answer, or a Parquet answer's columns).
    Columns(Vec<Vec<Column>>),
}

/// Points of several labels: their values, and the runs of rows that belong to each label
/// in the order the answer gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// Values per point.
    pub dims: usize,
    /// Every point.
    pub points: Storage,
    /// Consecutive rows with one label.
    pub runs: Vec<LabelRun>,
}

/// How many labels from the start equal the first.
fn run_length(labels: &[u64]) -> usize {
    const STEP: usize = 16;
    let Some(&label) = labels.first() else {
        return 0;
    };
    // Whole steps first, each compared without branching so it vectorises.
    let steps = labels
        .chunks_exact(STEP)
        .take_while(|c| c.iter().fold(true, |same, l| same & (*l == label)))
        .count();
    let start = steps * STEP;
    start + labels[start..].iter().take_while(|l| **l == label).count()
}

/// Appends a run of `label`, extending the last run when it continues it.
fn push_run(runs: &mut Vec<LabelRun>, label: u64, rows: Range<usize>) {
    match runs.last_mut() {
        Some(run) if run.label == label && run.rows.end == rows.start => run.rows.end = rows.end,
        _ => runs.push(LabelRun {
            label,
            rows,
            bbox_hint: None,
        }),
    }
}

/// Runs of equal consecutive labels, appended after `first_row`.
fn push_runs(runs: &mut Vec<LabelRun>, first_row: usize, labels: &[u64]) {
    let mut start = 0;
    while start < labels.len() {
        let len = run_length(&labels[start..]);
        let rows = first_row + start..first_row + start + len;
        push_run(runs, labels[start], rows);
        start += len;
    }
}
