//! Decoding: Parquet footers and fetched byte ranges of a points file into `N × D` int64
//! points, without the rest of the file.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{Array, Int32Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};

use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// Decodes a Parquet footer: the bytes of the manifest's `footer` range (metadata, its
/// length, `PAR1`).
pub fn parse_footer(path: &str, footer: &[u8]) -> Result<Arc<ParquetMetaData>> {
    let err = |message: String| Error::Parquet {
        path: path.into(),
        source: ParquetError::General(message),
    };
    if footer.len() < 8 || &footer[footer.len() - 4..] != b"PAR1" {
        return Err(err("footer does not end in PAR1".into()));
    }
    let len = u32::from_le_bytes(
        footer[footer.len() - 8..footer.len() - 4]
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    if len + 8 != footer.len() {
        return Err(err(format!(
            "footer says {len} metadata bytes, {} were given",
            footer.len() - 8
        )));
    }
    let meta = ParquetMetaDataReader::decode_metadata(&footer[..len]).map_err(|source| {
        Error::Parquet {
            path: path.into(),
            source,
        }
    })?;
    Ok(Arc::new(meta))
}

/// Parts of one file fetched by range, readable by the Parquet decoder as if whole.
#[derive(Debug, Clone, Default)]
pub struct SparseFile {
    size: u64,
    parts: Vec<(u64, Bytes)>,
}

impl SparseFile {
    /// A file of `size` bytes of which nothing is fetched yet.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            parts: Vec::new(),
        }
    }

    /// Adds the bytes fetched at `offset`.
    pub fn insert(&mut self, offset: u64, bytes: Bytes) {
        self.parts.push((offset, bytes));
    }

    fn slice(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        for (offset, bytes) in &self.parts {
            if *offset <= start && start + length as u64 <= offset + bytes.len() as u64 {
                let from = (start - offset) as usize;
                return Ok(bytes.slice(from..from + length));
            }
        }
        Err(ParquetError::General(format!(
            "bytes {start}..{} were not fetched",
            start + length as u64
        )))
    }
}

impl Length for SparseFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for SparseFile {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        for (offset, bytes) in &self.parts {
            if *offset <= start && start < offset + bytes.len() as u64 {
                return Ok(bytes.slice((start - offset) as usize..).reader());
            }
        }
        Err(ParquetError::General(format!(
            "byte {start} was not fetched"
        )))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, length)
    }
}

/// Which rows of a points file to decode: row groups, then rows to skip and to take
/// within their concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSpan {
    /// Row groups to read.
    pub row_groups: Range<usize>,
    /// Rows to skip at the start of the first row group.
    pub skip: u64,
    /// Rows to decode after that.
    pub take: u64,
}

/// A batch reader over `span` of a file, projected to the root columns `columns`.
fn span_reader(
    path: &str,
    meta: &Arc<ParquetMetaData>,
    file: SparseFile,
    span: &RowSpan,
    columns: Range<usize>,
) -> Result<ParquetRecordBatchReader> {
    let parquet = |source| Error::Parquet {
        path: path.into(),
        source,
    };
    if span.row_groups.end > meta.num_row_groups() {
        return Err(Error::Points(format!(
            "{path} has no row group {}",
            span.row_groups.end - 1
        )));
    }
    let reader_meta =
        ArrowReaderMetadata::try_new(meta.clone(), ArrowReaderOptions::new()).map_err(parquet)?;
    let mask = ProjectionMask::roots(meta.file_metadata().schema_descr(), columns);
    let selection = RowSelection::from(vec![
        RowSelector::skip(span.skip as usize),
        RowSelector::select(span.take as usize),
    ]);
    ParquetRecordBatchReaderBuilder::new_with_metadata(file, reader_meta)
        .with_row_groups(span.row_groups.clone().collect())
        .with_row_selection(selection)
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet)
}

/// Decodes `span` of a points file into `N × dims` int64 points, reading only bytes in `file`.
pub fn decode_points(
    path: &str,
    meta: &Arc<ParquetMetaData>,
    file: SparseFile,
    span: &RowSpan,
    dims: usize,
) -> Result<PointCloud> {
    let columns = meta.file_metadata().schema_descr().num_columns();
    if columns != dims + 1 {
        return Err(Error::Points(format!(
            "{path} has {columns} columns, expected label and {dims} dims"
        )));
    }
    let mut values = Vec::with_capacity(span.take as usize * dims);
    for batch in span_reader(path, meta, file, span, 1..dims + 1)? {
        append_rows(path, &batch?, &mut values)?;
    }
    let cloud = PointCloud::new(dims, values)?;
    if cloud.len() as u64 != span.take {
        return Err(Error::Points(format!(
            "{path}: decoded {} rows, expected {}",
            cloud.len(),
            span.take
        )));
    }
    Ok(cloud)
}

/// Decodes `span` of the blocks file into `(block_id, point_count)` pairs.
pub fn decode_blocks(
    path: &str,
    meta: &Arc<ParquetMetaData>,
    file: SparseFile,
    span: &RowSpan,
) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::with_capacity(span.take as usize);
    for batch in span_reader(path, meta, file, span, 1..3)? {
        let batch = batch?;
        let ids = batch.column(0).as_any().downcast_ref::<StringArray>();
        let counts = batch.column(1).as_any().downcast_ref::<UInt64Array>();
        let (Some(ids), Some(counts)) = (ids, counts) else {
            return Err(Error::Points(format!(
                "{path}: expected block_id string and point_count uint64 columns"
            )));
        };
        out.extend(
            ids.iter()
                .zip(counts.values())
                .map(|(id, n)| (id.unwrap_or_default().to_string(), *n)),
        );
    }
    if out.len() as u64 != span.take {
        return Err(Error::Points(format!(
            "{path}: decoded {} block rows, expected {}",
            out.len(),
            span.take
        )));
    }
    Ok(out)
}

/// Interleaves the dim columns of `batch` (Int32 or Int64) into row-major int64 values.
fn append_rows(path: &str, batch: &RecordBatch, out: &mut Vec<i64>) -> Result<()> {
    let dims = batch.num_columns();
    let start = out.len();
    out.resize(start + batch.num_rows() * dims, 0);
    let rows = &mut out[start..];
    for (d, column) in batch.columns().iter().enumerate() {
        if column.null_count() > 0 {
            return Err(Error::Points(format!("{path}: column {d} has nulls")));
        }
        if let Some(a) = column.as_any().downcast_ref::<Int32Array>() {
            for (slot, v) in rows.iter_mut().skip(d).step_by(dims).zip(a.values()) {
                *slot = *v as i64;
            }
        } else if let Some(a) = column.as_any().downcast_ref::<Int64Array>() {
            for (slot, v) in rows.iter_mut().skip(d).step_by(dims).zip(a.values()) {
                *slot = *v;
            }
        } else {
            return Err(Error::Points(format!(
                "{path}: column {d} is {}, expected Int32 or Int64",
                column.data_type()
            )));
        }
    }
    Ok(())
}
