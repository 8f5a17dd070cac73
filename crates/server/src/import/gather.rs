//! One pass over the input: the rows of a range of labels gathered label by label, each
//! handed over once all its rows are read.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use arrow_array::{Array, RecordBatch, StringArray};
use indicatif::ProgressBar;
use parquet::file::statistics::Statistics;
use pocaduck_edge_core::cloud::PackedRows;

use super::columns::{labels_of, list_values};
use super::{readers, SourceLayout};
use crate::row_groups::{self, FileGroups};

#[derive(Default)]
pub(super) struct LabelRows {
    pub(super) points: Gathered,
    pub(super) blocks: BTreeMap<String, u64>,
    pub(super) rows: u64,
}

/// A label's rows as they are read: rows of 3 as packed keys (8 bytes a row) while they fit
/// around the first row, else int64 values.
#[derive(Default)]
pub(super) enum Gathered {
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
pub(super) fn gather(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
