//! The blocks file (`blocks.parquet`): how many points of each label came from each
//! PoCADuck block.

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::encoders::ParallelFileWriter;
use super::hashing::HashingWriter;
use super::{write_error, zstd_level, BlockCount, FileSink, WriterOptions};
use crate::error::{Error, Result};
use crate::manifest::DataFile;

/// Writes `blocks.parquet`: `label u64, block_id string, point_count u64`, by label, with
/// its row groups' hashes in its footer (as a points file has them).
pub(super) struct BlocksWriter {
    /// Opened with the first block, so a dataset without blocks has no blocks file.
    writer: Option<ParallelFileWriter<HashingWriter>>,
    schema: Arc<Schema>,
    props: WriterProperties,
    pub(super) rows: u64,
    labels: Vec<u64>,
    ids: Vec<String>,
    counts: Vec<u64>,
    batch_rows: usize,
}

impl BlocksWriter {
    const PATH: &'static str = "blocks.parquet";

    pub(super) fn new(options: &WriterOptions) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::UInt64, false),
            Field::new("block_id", DataType::Utf8, false),
            Field::new("point_count", DataType::UInt64, false),
        ]));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd_level(options.zstd_level)?))
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .build();
        Ok(Self {
            writer: None,
            schema,
            props,
            rows: 0,
            labels: vec![],
            ids: vec![],
            counts: vec![],
            batch_rows: options.row_group_rows,
        })
    }

    fn parquet_error(e: parquet::errors::ParquetError) -> Error {
        Error::Parquet {
            path: Self::PATH.into(),
            source: e,
        }
    }

    pub(super) fn push(
        &mut self,
        sink: &mut dyn FileSink,
        label: u64,
        block: &BlockCount,
    ) -> Result<()> {
        if self.writer.is_none() {
            let out = HashingWriter::segmented(
                sink.create(Self::PATH)
                    .map_err(|e| write_error(Self::PATH, e))?,
            );
            let writer = ArrowWriter::try_new(out, self.schema.clone(), Some(self.props.clone()))
                .and_then(ParallelFileWriter::new)
                .map_err(Self::parquet_error)?;
            self.writer = Some(writer);
        }
        self.labels.push(label);
        self.ids.push(block.block_id.clone());
        self.counts.push(block.point_count);
        self.rows += 1;
        if self.labels.len() >= self.batch_rows {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Writes the pending rows as one row group.
    fn write_batch(&mut self) -> Result<()> {
        let Some(writer) = self.writer.as_mut().filter(|_| !self.labels.is_empty()) else {
            return Ok(());
        };
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(UInt64Array::from(std::mem::take(&mut self.labels))),
                Arc::new(StringArray::from(std::mem::take(&mut self.ids))),
                Arc::new(UInt64Array::from(std::mem::take(&mut self.counts))),
            ],
        )?;
        writer.write_row_group(&batch).map_err(Self::parquet_error)
    }

    /// Closes the file; `None` when no label had blocks.
    pub(super) fn finish(mut self) -> Result<Option<DataFile>> {
        self.write_batch()?;
        let Some(writer) = self.writer else {
            return Ok(None);
        };
        writer.finish_hashed(Self::PATH, self.rows).map(Some)
    }
}
