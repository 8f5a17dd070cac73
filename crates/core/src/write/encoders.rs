//! Parquet row groups written with each column encoded on a thread of its own (parquet's
//! `ArrowColumnWriter` API), so that writing a big label (delta packing and zstd of each
//! coordinate column) uses every core instead of one. Each row group reaches the output as
//! one segment of its own ([`SegmentedWrite`]).

use std::sync::mpsc;
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn,
    ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{KeyValue, RowGroupMetaData};
use parquet::file::writer::SerializedFileWriter;

use super::hashing::{HashingWriter, SegmentedWrite};
use crate::integrity::ROW_GROUP_HASHES_KEY;
use crate::manifest::DataFile;
use crate::plan::group_range;

/// One column's share of a row group: its writer and its values.
type Job = (ArrowColumnWriter, Vec<ArrowLeafColumn>);

/// A Parquet file written a row group at a time, each column encoded on a long-lived
/// thread of its own. A row group is encoded while the caller prepares the next one; it is
/// appended to the file when the next comes, or when the row groups are asked for. Columns
/// are of primitive types (one Parquet leaf each), as the points files' are.
pub(super) struct ParallelFileWriter<W: SegmentedWrite + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    encoders: Encoders,
    /// Row groups handed to the encoders.
    row_groups: usize,
    /// Whether the last of them is still to be appended.
    encoding: bool,
}

/// The column threads: a job channel in and a chunk channel out each. Dropping this ends
/// them.
struct Encoders {
    jobs: Vec<mpsc::Sender<Job>>,
    chunks: Vec<mpsc::Receiver<Result<ArrowColumnChunk>>>,
    threads: Vec<JoinHandle<()>>,
}

fn io_error(e: std::io::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

fn stopped() -> ParquetError {
    ParquetError::General("a column encoder stopped".into())
}

impl<W: SegmentedWrite + Send> ParallelFileWriter<W> {
    /// Takes over a fresh `ArrowWriter` (its schema, properties and Arrow metadata) and
    /// starts a thread per column.
    pub(super) fn new(writer: ArrowWriter<W>) -> Result<Self> {
        let (mut file, factory) = writer.into_serialized_writer()?;
        // The magic is a segment of its own, so each row group's bytes are one.
        file.flush().map_err(io_error)?;
        file.inner_mut().end_segment();
        let columns = file.schema_descr().num_columns();
        let mut encoders = Encoders {
            jobs: Vec::with_capacity(columns),
            chunks: Vec::with_capacity(columns),
            threads: Vec::with_capacity(columns),
        };
        for _ in 0..columns {
            let (job_tx, job_rx) = mpsc::channel::<Job>();
            let (chunk_tx, chunk_rx) = mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("parquet-column".into())
                .spawn(move || {
                    for (writer, leaves) in job_rx {
                        if chunk_tx.send(encode(writer, leaves)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| ParquetError::External(Box::new(e)))?;
            encoders.jobs.push(job_tx);
            encoders.chunks.push(chunk_rx);
            encoders.threads.push(thread);
        }
        Ok(Self {
            file,
            factory,
            encoders,
            row_groups: 0,
            encoding: false,
        })
    }

    /// Hands `batch` to the encoders as the next row group (after appending the one before).
    pub(super) fn write_row_group(&mut self, batch: &RecordBatch) -> Result<()> {
        self.append_encoded()?;
        let writers = self.factory.create_column_writers(self.row_groups)?;
        let schema = batch.schema();
        if writers.len() != schema.fields().len() {
            return Err(ParquetError::General(
                "columns must be of primitive types, one Parquet leaf each".into(),
            ));
        }
        let columns = schema.fields().iter().zip(batch.columns());
        for ((writer, (field, column)), job) in
            writers.into_iter().zip(columns).zip(&self.encoders.jobs)
        {
            let leaves = compute_leaves(field, column)?;
            job.send((writer, leaves)).map_err(|_| stopped())?;
        }
        self.row_groups += 1;
        self.encoding = true;
        Ok(())
    }

    /// Waits for the row group being encoded, if any, and appends it to the file.
    fn append_encoded(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.encoding) {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(self.encoders.chunks.len());
        for chunks in &self.encoders.chunks {
            encoded.push(chunks.recv().map_err(|_| stopped())?);
        }
        let mut row_group = self.file.next_row_group()?;
        for chunk in encoded {
            chunk?.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.file.flush().map_err(io_error)?;
        self.file.inner_mut().end_segment();
        Ok(())
    }

    /// Every row group written so far.
    pub(super) fn row_groups(&mut self) -> Result<&[RowGroupMetaData]> {
        self.append_encoded()?;
        Ok(self.file.flushed_row_groups())
    }

    /// The output, as far as it is written.
    pub(super) fn sink(&self) -> &W {
        self.file.inner()
    }

    /// Adds `kv` to the footer's key-value metadata.
    pub(super) fn append_key_value_metadata(&mut self, kv: KeyValue) {
        self.file.append_key_value_metadata(kv);
    }

    /// Writes the last row group and the footer, and hands back the output.
    pub(super) fn into_inner(mut self) -> Result<W> {
        self.append_encoded()?;
        drop(self.encoders);
        self.file.into_inner()
    }
}

impl ParallelFileWriter<HashingWriter> {
    /// Writes the last row group, the row groups' hashes ([`ROW_GROUP_HASHES_KEY`]) and the
    /// footer, and describes file `path` of `rows` rows.
    pub(super) fn finish_hashed(mut self, path: &str, rows: u64) -> crate::error::Result<DataFile> {
        let parquet = |source| crate::Error::Parquet {
            path: path.into(),
            source,
        };
        let ranges = self
            .row_groups()
            .map_err(parquet)?
            .iter()
            .map(group_range)
            .collect::<crate::error::Result<Vec<_>>>()?;
        let hashes = ranges
            .iter()
            .map(|r| {
                let hash = self.sink().segment_hash(r.offset..r.end()).ok_or_else(|| {
                    crate::Error::Write {
                        path: path.into(),
                        message: format!("row group bytes {r:?} were not written as one segment"),
                    }
                })?;
                Ok(format!("{hash:016x}"))
            })
            .collect::<crate::error::Result<Vec<String>>>()?;
        self.append_key_value_metadata(KeyValue::new(
            ROW_GROUP_HASHES_KEY.to_string(),
            hashes.join(","),
        ));
        self.into_inner().map_err(parquet)?.finish(path, rows)
    }
}

impl Drop for Encoders {
    fn drop(&mut self) {
        self.jobs.clear();
        for thread in self.threads.drain(..) {
            // A panicked encoder already surfaced as an error of the row group it dropped.
            let _ = thread.join();
        }
    }
}

fn encode(mut writer: ArrowColumnWriter, leaves: Vec<ArrowLeafColumn>) -> Result<ArrowColumnChunk> {
    for leaf in &leaves {
        writer.write(leaf)?;
    }
    writer.close()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::basic::{Compression, Encoding, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use parquet::schema::types::ColumnPath;

    use super::*;

    /// In memory, segments are not kept.
    impl SegmentedWrite for Vec<u8> {}

    #[test]
    fn files_equal_those_of_the_arrow_writer_byte_for_byte() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::UInt64, false),
            Field::new("x", DataType::Int32, false),
            Field::new("y", DataType::Int32, false),
        ]));
        let props = || {
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
                .set_column_encoding(ColumnPath::from("x"), Encoding::DELTA_BINARY_PACKED)
                .set_column_dictionary_enabled(ColumnPath::from("x"), false)
                .build()
        };
        let batches: Vec<RecordBatch> = (0..5)
            .map(|g: i32| {
                let n = 1000 + g as usize * 333;
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(UInt64Array::from(vec![u64::MAX - g as u64; n])),
                    Arc::new(Int32Array::from_iter_values(
                        (0..n as i32).map(|i| i * 7 - g),
                    )),
                    Arc::new(Int32Array::from_iter_values(
                        (0..n as i32).map(|i| (i * 31) % 97),
                    )),
                ];
                RecordBatch::try_new(schema.clone(), columns).unwrap()
            })
            .collect();

        let mut expected = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props())).unwrap();
        for batch in &batches {
            expected.write(batch).unwrap();
            expected.flush().unwrap();
        }
        let expected = expected.into_inner().unwrap();

        let arrow = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props())).unwrap();
        let mut parallel = ParallelFileWriter::new(arrow).unwrap();
        for (i, batch) in batches.iter().enumerate() {
            // Row groups are appended when the next one comes or when they are asked for.
            assert_eq!(parallel.row_groups().unwrap().len(), i);
            parallel.write_row_group(batch).unwrap();
        }
        assert_eq!(parallel.row_groups().unwrap().len(), batches.len());
        assert_eq!(parallel.into_inner().unwrap(), expected);
    }
}
