//! The dataset writer: labels in ascending order in, an edge-layout dataset out through a
//! [`FileSink`] (the host decides where files go: a directory, an object store, memory).

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use xxhash_rust::xxh3::Xxh3;

use crate::cloud::{bbox_of, BBox, PackedRows, PointCloud};
use crate::encoding::coordinate_encoding;
use crate::error::{Error, Result};
use crate::index::{entries_per_page, Coarse, IndexEntry, IndexPage};
use crate::manifest::{
    ByteRange, DataFile, LabelIndex, Manifest, PageRef, FORMAT_NAME, FORMAT_VERSION, POINT_ORDER,
};
use crate::plan::group_range;

mod encoders;
use encoders::ParallelFileWriter;

/// Where the writer puts files: `create` returns a writer for a path relative to the
/// dataset (`/`-separated). Hosts implement it; this crate does no IO itself.
pub trait FileSink {
    /// Opens `path` for writing.
    fn create(&mut self, path: &str) -> std::io::Result<Box<dyn Write + Send>>;
}

/// The zstd level of points files unless told otherwise: fast to write (higher levels save up
/// to a quarter of the bytes at many times the cost, through the `parquet` crate's streaming
/// zstd, and read no faster).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The size of coarse levels unless told otherwise: a level of detail of up to a million
/// points reads at most twice that many.
pub const DEFAULT_COARSE_POINTS: u64 = 1 << 20;

/// The stride of the coarse level of a label of `points` points, for labels of more than
/// 4 × `coarse_points` points (none when `coarse_points` is 0): the largest power of two
/// that leaves more than `coarse_points` points, so the level holds between `coarse_points`
/// and twice that many.
pub fn coarse_stride(points: u64, coarse_points: u64) -> Option<u64> {
    if coarse_points == 0 || points <= coarse_points.saturating_mul(4) {
        return None;
    }
    let mut stride = 4u64;
    while points.div_ceil(stride * 2) > coarse_points {
        stride *= 2;
    }
    Some(stride)
}

/// Tuning of the layout.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per row group (labels smaller than this never straddle two row groups).
    pub row_group_rows: usize,
    /// Rows after which a new points file starts (at a label boundary).
    pub file_rows: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// Labels of more than 4 × this many points get a coarse level of more than this many
    /// points (see [`coarse_stride`]); 0 writes none.
    pub coarse_points: u64,
    /// Voxel size in nm per dim, recorded in the manifest.
    pub voxel_size_nm: Option<Vec<f64>>,
    /// Recorded in the manifest: origin, licence, citation.
    pub attribution: Option<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 32 * 1024,
            file_rows: 16 << 20,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            coarse_points: DEFAULT_COARSE_POINTS,
            voxel_size_nm: None,
            attribution: None,
        }
    }
}

/// A label's sorted, distinct rows, as the writer takes them.
enum Sorted<'a> {
    /// `N × D` int64 values.
    Values(&'a [i64]),
    /// Packed rows of 3.
    Packed(&'a PackedRows),
}

impl Sorted<'_> {
    fn len(&self, dims: usize) -> usize {
        match self {
            Sorted::Values(v) => v.len() / dims,
            Sorted::Packed(p) => p.len(),
        }
    }

    fn bbox(&self, dims: usize) -> Option<BBox> {
        match self {
            Sorted::Values(v) => bbox_of(v, dims),
            Sorted::Packed(p) => p.bbox(),
        }
    }

    /// Every `stride`-th row from the first, as int64 values.
    fn every(&self, stride: usize, dims: usize) -> Vec<i64> {
        match self {
            Sorted::Values(v) => v
                .chunks_exact(dims)
                .step_by(stride)
                .flatten()
                .copied()
                .collect(),
            Sorted::Packed(p) => p.every(stride),
        }
    }

    /// The rows as int64 values, in pieces of at most `rows` rows (packed rows are unpacked
    /// a piece at a time).
    fn pieces(&self, rows: usize, dims: usize) -> Box<dyn Iterator<Item = Cow<'_, [i64]>> + '_> {
        match self {
            Sorted::Values(v) => Box::new(v.chunks(rows * dims).map(Cow::Borrowed)),
            Sorted::Packed(p) => Box::new(
                (0..p.len())
                    .step_by(rows)
                    .map(move |start| Cow::Owned(p.rows(start..(start + rows).min(p.len())))),
            ),
        }
    }
}

/// How many points of a label came from one PoCADuck block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCount {
    /// The block id as PoCADuck stored it.
    pub block_id: String,
    /// Points (rows) of the label in that block, duplicates included.
    pub point_count: u64,
}

/// Writes a dataset. Push labels in strictly ascending order, then [`DatasetWriter::finish`].
pub struct DatasetWriter<S: FileSink> {
    sink: S,
    dims: Vec<String>,
    options: WriterOptions,
    points: Option<PointsFile>,
    files: Vec<DataFile>,
    coarse: Option<PointsFile>,
    coarse_files: Vec<DataFile>,
    index: IndexWriter,
    blocks: BlocksWriter,
    previous: Option<u64>,
    label_count: u64,
    point_count: u64,
    bbox: Option<BBox>,
}

/// A label placed in the open points file, waiting for its row groups to be known.
struct Placed {
    label: u64,
    first_row: u64,
    count: u64,
    blocks_row: u64,
    blocks_count: u32,
    coarse: Option<Coarse>,
    bbox: BBox,
}

struct PointsFile {
    path: String,
    wide: bool,
    writer: ParallelFileWriter<HashingWriter>,
    schema: Arc<Schema>,
    rows: u64,
    pending: RowBuffer,
    placed: Vec<Placed>,
}

#[derive(Default)]
struct RowBuffer {
    labels: Vec<u64>,
    columns: Vec<Vec<i64>>,
}

impl<S: FileSink> DatasetWriter<S> {
    /// Starts a dataset with the given dim names (their count is `D`).
    pub fn new(mut sink: S, dims: Vec<String>, options: WriterOptions) -> Result<Self> {
        if dims.is_empty() {
            return Err(Error::Points("a dataset needs at least one dim".into()));
        }
        if options.row_group_rows == 0 {
            return Err(Error::Points("row groups need at least one row".into()));
        }
        let index = IndexWriter::new(&mut sink, dims.len())?;
        let blocks = BlocksWriter::new(&options)?;
        Ok(Self {
            sink,
            dims,
            options,
            points: None,
            files: Vec::new(),
            coarse: None,
            coarse_files: Vec::new(),
            index,
            blocks,
            previous: None,
            label_count: 0,
            point_count: 0,
            bbox: None,
        })
    }

    /// Adds a label's points (any order, duplicates allowed: they are removed) and the
    /// PoCADuck blocks they came from. A label with no points is skipped.
    pub fn push_label(
        &mut self,
        label: u64,
        mut points: PointCloud,
        blocks: &[BlockCount],
    ) -> Result<()> {
        if !self.admit(label, points.dims(), points.is_empty())? {
            return Ok(());
        }
        points.sort_unique();
        self.push_sorted(label, Sorted::Values(points.values()), blocks)
    }

    /// Adds a label's rows of 3 gathered as packed keys (any order, duplicates allowed: they
    /// are removed), as [`DatasetWriter::push_label`] does, never holding them as int64 rows
    /// but a row group at a time.
    pub fn push_packed(
        &mut self,
        label: u64,
        mut rows: PackedRows,
        blocks: &[BlockCount],
    ) -> Result<()> {
        if !self.admit(label, 3, rows.is_empty())? {
            return Ok(());
        }
        rows.sort_unique();
        self.push_sorted(label, Sorted::Packed(&rows), blocks)
    }

    /// Checks a label of `dims` dims against the dataset's dims and the labels pushed before
    /// it; true when it has points to write (an empty label is skipped).
    fn admit(&mut self, label: u64, dims: usize, empty: bool) -> Result<bool> {
        if dims != self.dims.len() {
            return Err(Error::Points(format!(
                "label {label} has {dims} dims, the dataset {}",
                self.dims.len()
            )));
        }
        if let Some(previous) = self.previous {
            if label <= previous {
                return Err(Error::LabelOrder { label, previous });
            }
        }
        if empty {
            return Ok(false);
        }
        self.previous = Some(label);
        Ok(true)
    }

    /// Writes a label's sorted, distinct rows: its coarse level when it is big, its blocks,
    /// and its rows into the open points file.
    fn push_sorted(&mut self, label: u64, points: Sorted, blocks: &[BlockCount]) -> Result<()> {
        let d = self.dims.len();
        let bbox = points.bbox(d).expect("a label with points has bounds");
        let wide = bbox
            .min
            .iter()
            .chain(&bbox.max)
            .any(|v| i32::try_from(*v).is_err());

        let coarse = match coarse_stride(points.len(d) as u64, self.options.coarse_points) {
            Some(stride) => {
                let rows = points.every(stride as usize, d);
                Some(self.push_coarse(label, &rows, stride, wide)?)
            }
            None => None,
        };

        if self.must_roll(&self.points, wide) {
            self.close_points_file()?;
        }
        if self.points.is_none() {
            let path = format!("points/part-{:05}.parquet", self.files.len());
            self.points = Some(self.open_points_file(path, wide)?);
        }
        let blocks_row = self.blocks.rows;
        for b in blocks {
            self.blocks.push(&mut self.sink, label, b)?;
        }
        let row_group_rows = self.options.row_group_rows;
        let file = self.points.as_mut().expect("opened above");
        let count = points.len(d);
        if !file.pending.labels.is_empty() && file.pending.labels.len() + count > row_group_rows {
            file.flush_row_group()?;
        }
        file.placed.push(Placed {
            label,
            first_row: file.rows,
            count: count as u64,
            blocks_row,
            blocks_count: blocks.len() as u32,
            coarse,
            bbox: bbox.clone(),
        });
        for piece in points.pieces(row_group_rows, d) {
            file.append(label, &piece, row_group_rows)?;
        }
        self.label_count += 1;
        self.point_count += count as u64;
        self.bbox = Some(match &self.bbox {
            Some(b) => b.union(&bbox),
            None => bbox,
        });
        Ok(())
    }

    /// Whether `file` must close before a label (`wide`: one with values beyond int32).
    fn must_roll(&self, file: &Option<PointsFile>, wide: bool) -> bool {
        file.as_ref()
            .is_some_and(|f| (wide && !f.wide) || f.rows >= self.options.file_rows as u64)
    }

    /// Writes a label's coarse level (`rows`, every `stride`-th of its points) to the coarse
    /// files, in row groups of its own, and says where they lie.
    fn push_coarse(&mut self, label: u64, rows: &[i64], stride: u64, wide: bool) -> Result<Coarse> {
        if self.must_roll(&self.coarse, wide) {
            self.close_coarse_file()?;
        }
        if self.coarse.is_none() {
            let path = format!("coarse/part-{:05}.parquet", self.coarse_files.len());
            self.coarse = Some(self.open_points_file(path, wide)?);
        }
        let d = self.dims.len();
        let file = self.coarse.as_mut().expect("opened above");
        let first = file.row_groups()?.len();
        file.append(label, rows, self.options.row_group_rows)?;
        file.flush_row_group()?;
        let groups = &file.row_groups()?[first..];
        let (Some(head), Some(tail)) = (groups.first(), groups.last()) else {
            unreachable!("a label with a coarse level has points");
        };
        let (start, end) = (group_range(head).offset, group_range(tail).end());
        Ok(Coarse {
            stride,
            point_count: (rows.len() / d) as u64,
            file: self.coarse_files.len() as u32,
            row_group: first as u32,
            row_groups: groups.len() as u32,
            row_offset: 0,
            bytes: ByteRange {
                offset: start,
                length: end - start,
            },
        })
    }

    fn open_points_file(&mut self, path: String, wide: bool) -> Result<PointsFile> {
        let coord = if wide {
            DataType::Int64
        } else {
            DataType::Int32
        };
        let mut fields = vec![Field::new("label", DataType::UInt64, false)];
        fields.extend(
            self.dims
                .iter()
                .map(|d| Field::new(d, coord.clone(), false)),
        );
        let schema = Arc::new(Schema::new(fields));
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd_level(self.options.zstd_level)?))
            .set_max_row_group_row_count(Some(self.options.row_group_rows))
            .set_statistics_enabled(EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("label"), EnabledStatistics::Chunk)
            .set_column_dictionary_enabled(ColumnPath::from("label"), false)
            .set_column_encoding(ColumnPath::from("label"), Encoding::DELTA_BINARY_PACKED);
        for (i, d) in self.dims.iter().enumerate() {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(d.as_str()), false)
                .set_column_encoding(
                    ColumnPath::from(d.as_str()),
                    coordinate_encoding(i, self.dims.len()),
                );
        }
        let out = HashingWriter::new(self.sink.create(&path).map_err(|e| write_error(&path, e))?);
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props.build()))
            .and_then(ParallelFileWriter::new)
            .map_err(|e| Error::Parquet {
                path: path.clone(),
                source: e,
            })?;
        Ok(PointsFile {
            path,
            wide,
            writer,
            schema,
            rows: 0,
            pending: RowBuffer {
                labels: Vec::new(),
                columns: vec![Vec::new(); self.dims.len()],
            },
            placed: Vec::new(),
        })
    }

    fn close_points_file(&mut self) -> Result<()> {
        let Some(mut file) = self.points.take() else {
            return Ok(());
        };
        file.flush_row_group()?;
        let groups: Vec<RowGroupMetaData> = file.row_groups()?.to_vec();
        let file_index = self.files.len() as u32;
        let placed = std::mem::take(&mut file.placed);
        let data_file = file.close()?;
        // Row-group start rows and byte ranges, to place each label.
        let mut starts = Vec::with_capacity(groups.len());
        let mut row = 0u64;
        for g in &groups {
            starts.push(row);
            row += g.num_rows() as u64;
        }
        for p in placed {
            let first = starts.partition_point(|&s| s <= p.first_row) - 1;
            let last = starts.partition_point(|&s| s < p.first_row + p.count) - 1;
            let start = group_range(&groups[first]).offset;
            let end = group_range(&groups[last]).end();
            self.index.push(IndexEntry {
                label: p.label,
                point_count: p.count,
                file: file_index,
                row_group: first as u32,
                row_groups: (last - first + 1) as u32,
                row_offset: p.first_row - starts[first],
                bytes: ByteRange {
                    offset: start,
                    length: end - start,
                },
                blocks_row: p.blocks_row,
                blocks_count: p.blocks_count,
                coarse: p.coarse,
                bbox: p.bbox,
            })?;
        }
        self.files.push(data_file);
        Ok(())
    }

    fn close_coarse_file(&mut self) -> Result<()> {
        if let Some(file) = self.coarse.take() {
            self.coarse_files.push(file.close()?);
        }
        Ok(())
    }

    /// Writes the last row groups, the index, the blocks file and `manifest.json`
    /// (last, so a reader never sees a manifest naming missing files).
    pub fn finish(mut self) -> Result<Manifest> {
        self.close_points_file()?;
        self.close_coarse_file()?;
        let label_index = self.index.finish()?;
        let blocks = self.blocks.finish()?;
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            dims: self.dims,
            voxel_size_nm: self.options.voxel_size_nm,
            label_count: self.label_count,
            point_count: self.point_count,
            bbox: self.bbox,
            point_order: POINT_ORDER.into(),
            files: self.files,
            coarse: self.coarse_files,
            label_index,
            blocks,
            attribution: self.options.attribution,
        };
        let mut out = self
            .sink
            .create("manifest.json")
            .map_err(|e| write_error("manifest.json", e))?;
        out.write_all(&manifest.to_json())
            .and_then(|_| out.flush())
            .map_err(|e| write_error("manifest.json", e))?;
        Ok(manifest)
    }
}

impl PointsFile {
    /// Appends a label's rows (`D` values each) to the pending row group, as many at a time
    /// as it has room for, writing each row group as it fills.
    fn append(&mut self, label: u64, mut rows: &[i64], row_group_rows: usize) -> Result<()> {
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
    fn row_groups(&mut self) -> Result<&[RowGroupMetaData]> {
        self.writer.row_groups().map_err(|e| Error::Parquet {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Writes the last row group and the footer, and describes the file.
    fn close(mut self) -> Result<DataFile> {
        self.flush_row_group()?;
        let out = self.writer.into_inner().map_err(|e| Error::Parquet {
            path: self.path.clone(),
            source: e,
        })?;
        out.finish(&self.path, self.rows)
    }

    fn flush_row_group(&mut self) -> Result<()> {
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

fn zstd_level(level: i32) -> Result<ZstdLevel> {
    ZstdLevel::try_new(level).map_err(|e| Error::Write {
        path: String::new(),
        message: e.to_string(),
    })
}

fn write_error(path: &str, e: std::io::Error) -> Error {
    Error::Write {
        path: path.into(),
        message: e.to_string(),
    }
}

/// Writes the label index page by page as entries arrive.
struct IndexWriter {
    path: &'static str,
    out: HashingWriter,
    dims: usize,
    page: Vec<IndexEntry>,
    pages: Vec<PageRef>,
}

impl IndexWriter {
    const PATH: &'static str = "labels.idx";

    fn new(sink: &mut dyn FileSink, dims: usize) -> Result<Self> {
        let out = HashingWriter::new(
            sink.create(Self::PATH)
                .map_err(|e| write_error(Self::PATH, e))?,
        );
        Ok(Self {
            path: Self::PATH,
            out,
            dims,
            page: Vec::new(),
            pages: Vec::new(),
        })
    }

    fn push(&mut self, entry: IndexEntry) -> Result<()> {
        self.page.push(entry);
        if self.page.len() == entries_per_page(self.dims) {
            self.flush_page()?;
        }
        Ok(())
    }

    fn flush_page(&mut self) -> Result<()> {
        let (Some(first), Some(last)) = (self.page.first(), self.page.last()) else {
            return Ok(());
        };
        let (first_label, last_label, count) = (first.label, last.label, self.page.len() as u32);
        let bytes = IndexPage {
            dims: self.dims,
            entries: std::mem::take(&mut self.page),
        }
        .encode();
        let offset = self.out.written;
        self.out
            .write_all(&bytes)
            .map_err(|e| write_error(self.path, e))?;
        self.pages.push(PageRef {
            first_label,
            last_label,
            count,
            range: ByteRange {
                offset,
                length: bytes.len() as u64,
            },
        });
        Ok(())
    }

    fn finish(mut self) -> Result<LabelIndex> {
        self.flush_page()?;
        let file = self.out.finish(self.path, 0)?;
        Ok(LabelIndex {
            file,
            pages: self.pages,
        })
    }
}

/// Writes `blocks.parquet`: `label u64, block_id string, point_count u64`, by label.
struct BlocksWriter {
    /// Opened with the first block, so a dataset without blocks has no blocks file.
    writer: Option<ArrowWriter<HashingWriter>>,
    schema: Arc<Schema>,
    props: WriterProperties,
    rows: u64,
    labels: Vec<u64>,
    ids: Vec<String>,
    counts: Vec<u64>,
    batch_rows: usize,
}

impl BlocksWriter {
    const PATH: &'static str = "blocks.parquet";

    fn new(options: &WriterOptions) -> Result<Self> {
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

    fn push(&mut self, sink: &mut dyn FileSink, label: u64, block: &BlockCount) -> Result<()> {
        if self.writer.is_none() {
            let out = HashingWriter::new(
                sink.create(Self::PATH)
                    .map_err(|e| write_error(Self::PATH, e))?,
            );
            let writer = ArrowWriter::try_new(out, self.schema.clone(), Some(self.props.clone()))
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
        writer.write(&batch).map_err(Self::parquet_error)
    }

    /// Closes the file; `None` when no label had blocks.
    fn finish(mut self) -> Result<Option<DataFile>> {
        self.write_batch()?;
        let Some(writer) = self.writer else {
            return Ok(None);
        };
        let out = writer.into_inner().map_err(Self::parquet_error)?;
        Ok(Some(out.finish(Self::PATH, self.rows)?))
    }
}

/// Counts, hashes and remembers the tail of what passes through, so the writer learns a
/// file's size, ETag and Parquet footer range without reading it back.
struct HashingWriter {
    inner: Box<dyn Write + Send>,
    hash: Xxh3,
    written: u64,
    tail: [u8; 8],
}

impl HashingWriter {
    fn new(inner: Box<dyn Write + Send>) -> Self {
        Self {
            inner,
            hash: Xxh3::new(),
            written: 0,
            tail: [0; 8],
        }
    }

    /// Flushes and describes the file; for Parquet files (`rows > 0` or a `PAR1` tail) the
    /// footer range comes from the length stored before the closing magic.
    fn finish(mut self, path: &str, rows: u64) -> Result<DataFile> {
        self.inner.flush().map_err(|e| write_error(path, e))?;
        let footer = (&self.tail[4..] == b"PAR1").then(|| {
            let length = u32::from_le_bytes(self.tail[..4].try_into().expect("4 bytes")) as u64 + 8;
            ByteRange {
                offset: self.written - length,
                length,
            }
        });
        Ok(DataFile {
            path: path.into(),
            size: self.written,
            etag: format!("{:016x}", self.hash.digest()),
            rows,
            footer,
        })
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let buf = &buf[..n];
        self.hash.update(buf);
        self.written += n as u64;
        if n >= 8 {
            self.tail.copy_from_slice(&buf[n - 8..]);
        } else {
            self.tail.rotate_left(n);
            self.tail[8 - n..].copy_from_slice(buf);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_strides_leave_between_one_and_two_levels_worth_of_points() {
        for coarse_points in [1u64, 3, 100, 1 << 20] {
            for points in (0..5000).chain([4 * coarse_points, 4 * coarse_points + 1, 97_000_000]) {
                let got = coarse_stride(points, coarse_points);
                // The largest power of two from 4 up leaving more than `coarse_points`.
                let expected = (points > 4 * coarse_points).then(|| {
                    (2..64)
                        .map(|k| 1u64 << k)
                        .take_while(|s| points.div_ceil(*s) > coarse_points)
                        .last()
                        .unwrap()
                });
                assert_eq!(got, expected, "{points} points, level {coarse_points}");
            }
        }
        assert_eq!(coarse_stride(97_000_000, 1 << 20), Some(64));
        assert_eq!(coarse_stride(u64::MAX, 0), None);
        assert_eq!(coarse_stride(u64::MAX, u64::MAX), None);
    }
}
