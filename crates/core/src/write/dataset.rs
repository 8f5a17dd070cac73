//! [`DatasetWriter`]: labels in ascending order in, their points, coarse levels, blocks
//! and index entries placed into the dataset's files, and the manifest written last.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::blocks::BlocksWriter;
use super::encoders::ParallelFileWriter;
use super::hashing::HashingWriter;
use super::label_index::IndexWriter;
use super::points_file::{Placed, PointsFile, RowBuffer};
use super::{coarse_stride, write_error, zstd_level, BlockCount, FileSink, WriterOptions};
use crate::cloud::{bbox_of, BBox, PackedRows, PointCloud};
use crate::encoding::coordinate_encoding;
use crate::error::{Error, Result};
use crate::index::{Coarse, IndexEntry};
use crate::manifest::{ByteRange, DataFile, Manifest, FORMAT_NAME, FORMAT_VERSION, POINT_ORDER};
use crate::plan::group_range;

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
        let (start, end) = (group_range(head)?.offset, group_range(tail)?.end());
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
        let out =
            HashingWriter::segmented(self.sink.create(&path).map_err(|e| write_error(&path, e))?);
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
            let start = group_range(&groups[first])?.offset;
            let end = group_range(&groups[last])?.end();
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
