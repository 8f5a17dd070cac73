//! Decoding: Parquet footers and fetched byte ranges of a points file into `N × D` int64
//! points, without the rest of the file, with Parquet's column readers (no Arrow needed).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parquet::column::reader::ColumnReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::ReaderProperties;
use parquet::file::reader::{ChunkReader, Length, RowGroupReader};
use parquet::file::serialized_reader::SerializedRowGroupReader;

pub use crate::cloud::Column;
use crate::cloud::{interleave, PointCloud};
use crate::error::{Error, Result};
use crate::manifest::ByteRange;
use crate::thrift;

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
    );
    let metadata = footer.len() - 8;
    if usize::try_from(len).ok() != Some(metadata) {
        return Err(err(format!(
            "footer says {len} metadata bytes, {metadata} were given"
        )));
    }
    // The Parquet crate's thrift reader can take hours over a few bytes: walk them first.
    thrift::walk_struct(&footer[..metadata], None)
        .map_err(|e| err(format!("a malformed footer: {e}")))?;
    let meta = ParquetMetaDataReader::decode_metadata(&footer[..metadata]).map_err(|source| {
        Error::Parquet {
            path: path.into(),
            source,
        }
    })?;
    check_footer(path, &meta)?;
    Ok(Arc::new(meta))
}

/// Checks what the decoders and planners take from a footer without a bound of their own
/// (the Parquet crate asserts on some of it): row counts are not negative, and every
/// column chunk's byte range ([`column_range`]) is.
pub fn check_footer(path: &str, meta: &ParquetMetaData) -> Result<()> {
    let bad = |what: String| Error::Points(format!("{path}: the footer gives {what}"));
    let rows = meta.file_metadata().num_rows();
    if rows < 0 {
        return Err(bad(format!("{rows} rows")));
    }
    for (g, group) in meta.row_groups().iter().enumerate() {
        let bytes = group
            .columns()
            .iter()
            .map(|c| u64::try_from(c.compressed_size()).unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        let plausible = bytes.saturating_add(1).saturating_mul(MAX_ROWS_PER_BYTE);
        if u64::try_from(group.num_rows()).map_or(true, |rows| rows > plausible) {
            return Err(bad(format!(
                "row group {g} {} rows in {bytes} bytes",
                group.num_rows()
            )));
        }
        for (c, column) in group.columns().iter().enumerate() {
            if column_range(column).is_none() {
                return Err(bad(format!(
                    "column {c} of row group {g} the byte range {:?}+{}",
                    column
                        .dictionary_page_offset()
                        .unwrap_or(column.data_page_offset()),
                    column.compressed_size()
                )));
            }
        }
    }
    Ok(())
}

/// The bytes of a column chunk: from its dictionary page, or its first data page, for its
/// compressed size; `None` when the footer gives a negative offset or size, or an end past
/// `u64::MAX` (where `ColumnChunkMetaData::byte_range` would panic).
pub fn column_range(column: &ColumnChunkMetaData) -> Option<ByteRange> {
    let start = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset());
    let offset = u64::try_from(start).ok()?;
    let length = u64::try_from(column.compressed_size()).ok()?;
    offset.checked_add(length)?;
    Some(ByteRange { offset, length })
}

/// The page header's field that gives its page's length after it (`compressed_page_size`).
const COMPRESSED_PAGE_SIZE: i16 = 3;

/// Checks the page headers of a column chunk to be decoded from `file`, page after page,
/// before the Parquet crate reads them: each a well-formed thrift struct whose collections
/// fit in its bytes ([`thrift`]'s walk: the crate's own reader can loop for hours over a few
/// of them), with a page length that keeps the page inside the chunk. The chunk must be
/// fetched whole: the page reader would read the bytes after its start that were fetched,
/// unchecked.
pub fn check_pages(path: &str, file: &SparseFile, column: &ColumnChunkMetaData) -> Result<()> {
    let Some(range) = column_range(column) else {
        return Err(Error::Points(format!(
            "{path}: a column chunk's byte range is negative"
        )));
    };
    let Some(chunk) = usize::try_from(range.length)
        .ok()
        .and_then(|length| file.slice(range.offset, length).ok())
    else {
        return Err(Error::Points(format!(
            "{path}: bytes {}..{} of a column chunk were not fetched whole (of a file of {} bytes)",
            range.offset,
            range.end(),
            file.len()
        )));
    };
    let bad = |at: usize, what: String| Error::Parquet {
        path: path.into(),
        source: ParquetError::General(format!(
            "the page header at byte {at} of a column chunk: {what}"
        )),
    };
    let mut at = 0;
    while at < chunk.len() {
        let header = thrift::walk_struct(&chunk[at..], Some(COMPRESSED_PAGE_SIZE))
            .map_err(|e| bad(at, e))?;
        let page = header
            .field
            .and_then(|size| usize::try_from(size).ok())
            .ok_or_else(|| bad(at, "no page length, or a negative one".into()))?;
        let end = (at + header.len)
            .checked_add(page)
            .filter(|end| *end <= chunk.len())
            .ok_or_else(|| bad(at, format!("a page of {page} bytes past the chunk's end")))?;
        at = end;
    }
    Ok(())
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

/// The most values per column that decoding reserves room for before it decodes them;
/// beyond that a column's vector grows with the values its pages hold.
pub const MAX_PRESIZED_VALUES: usize = 1 << 20;

/// The most rows a row group may hold per byte of its column chunks: far above what
/// point clouds compress to, and a bound on what decoding the fetched bytes of a hostile
/// file can produce (run-length encoding can make billions of values of a few bytes).
pub const MAX_ROWS_PER_BYTE: u64 = 1024;

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

fn parquet_error(path: &str) -> impl Fn(ParquetError) -> Error + '_ {
    move |source| Error::Parquet {
        path: path.into(),
        source,
    }
}

/// Reads `take` records after skipping `skip` from a column reader, appending to `out`.
fn read_records<T: parquet::data_type::DataType>(
    path: &str,
    reader: &mut parquet::column::reader::ColumnReaderImpl<T>,
    skip: usize,
    take: usize,
    out: &mut Vec<T::T>,
) -> Result<()> {
    let err = parquet_error(path);
    if reader.skip_records(skip).map_err(&err)? != skip {
        return Err(Error::Points(format!("{path}: a row group ended early")));
    }
    let mut left = take;
    while left > 0 {
        // A page may say it holds up to 2^31 values, and the reader makes room for what it
        // is asked: ask for a bounded batch at a time.
        let batch = left.min(MAX_PRESIZED_VALUES);
        let (records, values, _) = reader.read_records(batch, None, None, out).map_err(&err)?;
        if records == 0 {
            return Err(Error::Points(format!("{path}: a row group ended early")));
        }
        if values != records {
            return Err(Error::Points(format!("{path}: a column has nulls")));
        }
        left -= records;
    }
    Ok(())
}

/// The row groups of `span` with the rows to skip and take in each: `(group, skip, take)`.
pub fn span_groups(
    path: &str,
    meta: &ParquetMetaData,
    span: &RowSpan,
) -> Result<Vec<(usize, usize, usize)>> {
    if span.row_groups.end > meta.num_row_groups() {
        return Err(Error::Points(format!(
            "{path} has no row group {}",
            span.row_groups.end - 1
        )));
    }
    let mut out = Vec::new();
    let too_many = |what: &str, n: u64| Error::Points(format!("{path}: {n} rows to {what}"));
    let skip = usize::try_from(span.skip).map_err(|_| too_many("skip", span.skip))?;
    let take = usize::try_from(span.take).map_err(|_| too_many("take", span.take))?;
    let (mut skip, mut left) = (skip, take);
    for g in span.row_groups.clone() {
        let rows = usize::try_from(meta.row_group(g).num_rows()).unwrap_or(0);
        if skip >= rows {
            return Err(Error::Points(format!(
                "{path}: row group {g} has no row {skip}"
            )));
        }
        let take = (rows - skip).min(left);
        out.push((g, skip, take));
        left -= take;
        skip = 0;
    }
    if left != 0 {
        return Err(Error::Points(format!(
            "{path}: row groups {:?} hold fewer than {} rows",
            span.row_groups, span.take
        )));
    }
    Ok(out)
}

/// A reader of each row group of `span` over `file`, with the rows to skip and take in it,
/// the page headers of its `columns` checked ([`check_pages`]).
fn span_readers<'a>(
    path: &str,
    meta: &'a ParquetMetaData,
    file: SparseFile,
    span: &RowSpan,
    columns: &[usize],
) -> Result<Vec<(SerializedRowGroupReader<'a, SparseFile>, usize, usize)>> {
    let props = Arc::new(ReaderProperties::builder().build());
    let groups = span_groups(path, meta, span)?;
    for (g, _, _) in &groups {
        let group = meta.row_group(*g);
        for c in columns {
            if let Some(column) = group.columns().get(*c) {
                check_pages(path, &file, column)?;
            }
        }
    }
    let file = Arc::new(file);
    groups
        .into_iter()
        .map(|(g, skip, take)| {
            let group =
                SerializedRowGroupReader::new(file.clone(), meta.row_group(g), None, props.clone())
                    .map_err(parquet_error(path))?;
            Ok((group, skip, take))
        })
        .collect()
}

/// Decodes `span` of the root columns `columns` (INT32 or INT64, no nulls) of a file,
/// reading only bytes in `file`, with Parquet's column readers (no Arrow in between).
pub fn decode_columns(
    path: &str,
    meta: &ParquetMetaData,
    file: SparseFile,
    span: &RowSpan,
    columns: Range<usize>,
) -> Result<Vec<Column>> {
    let err = parquet_error(path);
    let total = meta.file_metadata().schema_descr().num_columns();
    if columns.end > total {
        return Err(Error::Points(format!(
            "{path} has {total} columns, not {}",
            columns.end
        )));
    }
    // Sized for the rows the span names, up to a bound: a footer may name more rows
    // than its pages hold, and the vectors grow with what is decoded.
    let presized = usize::try_from(span.take)
        .map_or(MAX_PRESIZED_VALUES, |rows| rows.min(MAX_PRESIZED_VALUES));
    /// A column's values as they are read.
    #[derive(Clone)]
    enum Values {
        I32(Vec<i32>),
        I64(Vec<i64>),
    }
    let mut out: Vec<Option<Values>> = vec![None; columns.len()];
    let wanted: Vec<usize> = columns.clone().collect();
    for (group, skip, take) in span_readers(path, meta, file, span, &wanted)? {
        for (slot, c) in out.iter_mut().zip(columns.clone()) {
            match group.get_column_reader(c).map_err(&err)? {
                ColumnReader::Int32ColumnReader(mut r) => {
                    let column =
                        slot.get_or_insert_with(|| Values::I32(Vec::with_capacity(presized)));
                    let Values::I32(values) = column else {
                        return Err(Error::Points(format!("{path}: column {c} changes type")));
                    };
                    read_records(path, &mut r, skip, take, values)?;
                }
                ColumnReader::Int64ColumnReader(mut r) => {
                    let column =
                        slot.get_or_insert_with(|| Values::I64(Vec::with_capacity(presized)));
                    let Values::I64(values) = column else {
                        return Err(Error::Points(format!("{path}: column {c} changes type")));
                    };
                    read_records(path, &mut r, skip, take, values)?;
                }
                _ => {
                    return Err(Error::Points(format!(
                        "{path}: column {c} is not INT32 or INT64"
                    )))
                }
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|c| match c {
            Some(Values::I32(v)) => Column::I32(v.into()),
            Some(Values::I64(v)) => Column::I64(v.into()),
            None => Column::I64(Vec::new().into()),
        })
        .collect())
}

/// Decodes `span` of a points file into one column per dim, as stored, reading only bytes
/// in `file`.
pub fn decode_point_columns(
    path: &str,
    meta: &ParquetMetaData,
    file: SparseFile,
    span: &RowSpan,
    dims: usize,
) -> Result<Vec<Column>> {
    let columns = meta.file_metadata().schema_descr().num_columns();
    if columns != dims + 1 {
        return Err(Error::Points(format!(
            "{path} has {columns} columns, expected label and {dims} dims"
        )));
    }
    decode_columns(path, meta, file, span, 1..dims + 1)
}

/// Decodes `span` of a points file into `N × dims` int64 points, reading only bytes in `file`.
pub fn decode_points(
    path: &str,
    meta: &Arc<ParquetMetaData>,
    file: SparseFile,
    span: &RowSpan,
    dims: usize,
) -> Result<PointCloud> {
    let columns = decode_point_columns(path, meta, file, span, dims)?;
    let n = columns.first().map_or(0, Column::len);
    PointCloud::new(dims, interleave(&columns, 0..n))
}

/// Decodes `span` of the blocks file into `(block_id, point_count)` pairs.
pub fn decode_blocks(
    path: &str,
    meta: &Arc<ParquetMetaData>,
    file: SparseFile,
    span: &RowSpan,
) -> Result<Vec<(String, u64)>> {
    let err = parquet_error(path);
    let (mut ids, mut counts) = (Vec::new(), Vec::new());
    for (group, skip, take) in span_readers(path, meta, file, span, &[1, 2])? {
        match (
            group.get_column_reader(1).map_err(&err)?,
            group.get_column_reader(2).map_err(&err)?,
        ) {
            (
                ColumnReader::ByteArrayColumnReader(mut i),
                ColumnReader::Int64ColumnReader(mut c),
            ) => {
                read_records(path, &mut i, skip, take, &mut ids)?;
                read_records(path, &mut c, skip, take, &mut counts)?;
            }
            _ => {
                return Err(Error::Points(format!(
                    "{path}: expected block_id string and point_count uint64 columns"
                )))
            }
        }
    }
    ids.into_iter()
        .zip(counts)
        .map(|(id, n)| {
            let id = std::str::from_utf8(id.data())
                .map_err(|_| Error::Points(format!("{path}: a block id is not UTF-8")))?;
            let n = u64::try_from(n)
                .map_err(|_| Error::Points(format!("{path}: block {id} has {n} points")))?;
            Ok((id.to_string(), n))
        })
        .collect()
}
