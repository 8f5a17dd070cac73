//! PoCADuck's columns read in place: labels, and point lists of `D` int64 values each
//! (with `D` found from the first point).

use std::fs::File;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use arrow_array::{Array, Int64Array, LargeListArray, ListArray, RecordBatch, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::row_groups::FileGroups;

/// D: the length of the first point's list.
pub(super) fn find_dims(first: &FileGroups) -> anyhow::Result<usize> {
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

/// The labels of column `col`, int64 (PoCADuck's type; reinterpreted as u64) or uint64.
pub(super) fn labels_of(path: &Path, batch: &RecordBatch, col: usize) -> anyhow::Result<Vec<u64>> {
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
pub(super) fn list_values<'a>(
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
}
