//! A points file being written: rows buffered by column and written a row group at a
//! time, the labels placed in it until its row groups are known, and its row groups'
//! hashes recorded in its footer.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::Schema;
use parquet::file::metadata::RowGroupMetaData;

use super::encoders::ParallelFileWriter;
use super::hashing::HashingWriter;
use crate::cloud::BBox;
use crate::error::{Error, Result};
use crate::index::Coarse;
use crate::manifest::DataFile;

/// A label placed in the open points file, waiting for its row groups to be known.
pub(super) struct Placed {
    pub(super) label: u64,
    pub(super) first_row: u64,
    pub(super) count: u64,
    pub(super) blocks_row: u64,
    pub(super) blocks_count: u32,
    pub(super) coarse: Option<Coarse>,
    pub(super) bbox: BBox,
}

pub(super) struct PointsFile {
    pub(super) path: String,
    pub(super) wide: bool,
    pub(super) writer: ParallelFileWriter<HashingWriter>,
    pub(super) schema: Arc<Schema>,
    pub(super) rows: u64,
    pub(super) pending: RowBuffer,
    pub(super) placed: Vec<Placed>,
}

#[derive(Default)]
pub(super) struct RowBuffer {
    pub(super) labels: Vec<u64>,
    pub(super) columns: Vec<Vec<i64>>,
}

impl PointsFile {
    /// Appends a label's rows (`D` values each) to the pending row group, as many at a time
    /// as it has room for, writing each row group as it fills.
    pub(super) fn append(
        &mut self,
        label: u64,
        mut rows: &[i64],
        row_group_rows: usize,
    ) -> Result<()> {
        let d = self.pending.columns.len();
        let count = rows.len() / d;
        while !rows.is_empty() {
            let room = row_group_rows - self.pending.labels.len();
            let (head, rest) = rows.split_at(room.min(rows.len() / d) * d);
            let pending = &mut self.pending;
            pending
                .labels
                .resize(pending.labels.len() + head.len() / d, label);
            for (i, col) in pending.columns.iter_mut().enumerate() {
                col.extend(head.iter().skip(i).step_by(d));
            }
            if pending.labels.len() == row_group_rows {
                self.flush_row_group()?;
            }
            rows = rest;
        }
        self.rows += count as u64;
        Ok(())
    }

    /// Every row group written so far.
    pub(super) fn row_groups(&mut self) -> Result<&[RowGroupMetaData]> {
        self.writer.row_groups().map_err(|e| Error::Parquet {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Writes the last row group, the row groups' hashes and the footer, and describes the
    /// file.
    pub(super) fn close(mut self) -> Result<DataFile> {
        self.flush_row_group()?;
        self.writer.finish_hashed(&self.path, self.rows)
    }

    pub(super) fn flush_row_group(&mut self) -> Result<()> {
        if self.pending.labels.is_empty() {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(std::mem::take(
            &mut self.pending.labels,
        )))];
        for col in &mut self.pending.columns {
            let values = std::mem::take(col);
            columns.push(if self.wide {
                Arc::new(Int64Array::from(values))
            } else {
                Arc::new(Int32Array::from_iter_values(
                    values.into_iter().map(|v| v as i32),
                ))
            });
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        let parquet = |e| Error::Parquet {
            path: self.path.clone(),
            source: e,
        };
        self.writer.write_row_group(&batch).map_err(parquet)
    }
}
