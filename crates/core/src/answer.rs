//! Whole answers of the read API, decoded: an Arrow IPC stream (`label: uint64,
//! points: fixed_size_list<int64>[D]`, or `label` and one integer column per dim) or a
//! Parquet file (`label` and one int32/int64 column per dim, as the API's `format=parquet`
//! and the edge layout's points files), into one `N × D` cloud with its label runs.

use std::borrow::Cow;
use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_ipc::reader::RecordBatchDecoder;
use arrow_ipc::MessageHeader;
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::file::metadata::ParquetMetaDataReader;

use crate::cloud::{
    bbox_of, bbox_of_pieces, columns_bbox, interleave_into, BBox, Column, Recentred, Recentring,
};
use crate::error::{Error, Result};
use crate::ipc;
use crate::metadata;
use crate::read::{decode_columns, RowSpan, SparseFile};

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

impl Labelled {
    /// Rows `rows` as `N × D` row-major int64.
    pub fn int64(&self, rows: Range<usize>) -> Vec<i64> {
        let mut out = Vec::with_capacity(rows.len() * self.dims);
        self.int64_chunked(rows, usize::MAX, |_, values| out.extend_from_slice(values));
        out
    }

    /// Rows `rows` as `N × D` row-major int64, handed to `sink` piece by piece with each
    /// piece's offset in values; column storage is interleaved `chunk_rows` rows at a time
    /// into one reused buffer, so no buffer of the whole output is made.
    pub fn int64_chunked(
        &self,
        rows: Range<usize>,
        chunk_rows: usize,
        mut sink: impl FnMut(usize, &[i64]),
    ) {
        let mut offset = 0;
        match &self.points {
            Storage::Rows(pieces) => {
                for piece in row_pieces(pieces, self.dims, rows) {
                    sink(offset, piece);
                    offset += piece.len();
                }
            }
            Storage::Columns(pieces) => {
                let mut buffer = Vec::with_capacity(chunk_rows.min(rows.len()) * self.dims);
                for (piece, rows) in column_pieces(pieces, rows) {
                    for chunk in chunks(rows, chunk_rows) {
                        buffer.clear();
                        interleave_into(piece, chunk, &mut buffer);
                        sink(offset, &buffer);
                        offset += buffer.len();
                    }
                }
            }
        }
    }

    /// Rows `rows` ready to render, the positions handed to `sink` `chunk_rows` rows at a
    /// time from one reused buffer, with each chunk's offset in values; returns the origin
    /// and the bounds. The positions equal [`Labelled::recentre`]'s.
    ///
    /// `hint` is what the rows' bounds are said to be (a [`LabelRun::bbox_hint`]). With a
    /// hint the positions take one pass over the rows instead of two: it finds their bounds
    /// as it re-centres them (row storage a chunk at a time, while the chunk is in cache),
    /// and a hint that pass proves wrong is followed by a second pass with the true bounds,
    /// which rewrites every position.
    pub fn recentre_chunked(
        &self,
        rows: Range<usize>,
        hint: Option<&BBox>,
        chunk_rows: usize,
        mut sink: impl FnMut(usize, &[f32]),
    ) -> ([f64; 3], Option<BBox>) {
        if rows.is_empty() {
            return ([0.0; 3], None);
        }
        let hint = hint.filter(|h| h.min.len() == self.dims);
        let guess = match hint {
            Some(hint) => hint.clone(),
            None => match self.bbox(rows.clone()) {
                Some(bbox) => bbox,
                None => return ([0.0; 3], None),
            },
        };
        // Bounds found by a pass of their own need no check.
        let check = hint.is_some();
        Recentring::checked(guess, self.dims, |recentring| {
            self.recentre_pass(rows.clone(), recentring, chunk_rows, check, &mut sink)
        })
    }

    /// One pass of [`Labelled::recentre_chunked`]; returns the bounds of the rows it saw:
    /// always for column storage, which finds them as it re-centres, and for row storage
    /// when `check` asks.
    fn recentre_pass(
        &self,
        rows: Range<usize>,
        recentring: &Recentring,
        chunk_rows: usize,
        check: bool,
        sink: &mut impl FnMut(usize, &[f32]),
    ) -> Option<BBox> {
        let mut buffer = Vec::with_capacity(chunk_rows.min(rows.len()) * 3);
        let mut offset = 0;
        let mut seen: Option<BBox> = None;
        match &self.points {
            Storage::Rows(pieces) => {
                for piece in row_pieces(pieces, self.dims, rows) {
                    for chunk in piece.chunks(chunk_rows.max(1).saturating_mul(self.dims)) {
                        if check {
                            seen = BBox::union_of(seen, bbox_of(chunk, self.dims));
                        }
                        buffer.clear();
                        recentring.rows_into(chunk, self.dims, &mut buffer);
                        sink(offset, &buffer);
                        offset += buffer.len();
                    }
                }
            }
            Storage::Columns(pieces) => {
                for (piece, rows) in column_pieces(pieces, rows) {
                    for chunk in chunks(rows, chunk_rows) {
                        buffer.clear();
                        let bounds = recentring.columns_into(piece, chunk, &mut buffer);
                        seen = BBox::union_of(seen, bounds);
                        sink(offset, &buffer);
                        offset += buffer.len();
                    }
                }
            }
        }
        seen
    }

    /// Rows `rows` ready to render.
    pub fn recentre(&self, rows: Range<usize>) -> Recentred {
        let mut positions = Vec::with_capacity(rows.len() * 3);
        let (origin, bbox) = self.recentre_chunked(rows, None, usize::MAX, |_, values| {
            positions.extend_from_slice(values)
        });
        Recentred {
            positions,
            origin,
            bbox,
        }
    }

    /// Bounds of rows `rows`, `None` when empty.
    pub fn bbox(&self, rows: Range<usize>) -> Option<BBox> {
        match &self.points {
            Storage::Rows(pieces) => {
                bbox_of_pieces(&row_pieces(pieces, self.dims, rows), self.dims)
            }
            Storage::Columns(pieces) => column_pieces(pieces, rows)
                .into_iter()
                .filter_map(|(piece, rows)| columns_bbox(piece, rows))
                .reduce(|a, b| a.union(&b)),
        }
    }
}

/// `rows` cut into consecutive ranges of at most `size` rows (at least one row each).
fn chunks(rows: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    (rows.start..rows.end)
        .step_by(size)
        .map(move |start| start..start.saturating_add(size).min(rows.end))
}

/// The pieces of column storage that hold `rows`, each with its rows of them.
fn column_pieces(pieces: &[Vec<Column>], rows: Range<usize>) -> Vec<(&[Column], Range<usize>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let len = piece.first().map_or(0, Column::len);
        let (lo, hi) = (rows.start.max(offset), rows.end.min(offset + len));
        if lo < hi {
            out.push((&piece[..], lo - offset..hi - offset));
        }
        offset += len;
    }
    out
}

/// The parts of `pieces` (row-major, `dims` values a row) that hold `rows`.
fn row_pieces(pieces: &[ScalarBuffer<i64>], dims: usize, rows: Range<usize>) -> Vec<&[i64]> {
    let (start, end) = (rows.start * dims, rows.end * dims);
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let (lo, hi) = (start.max(offset), end.min(offset + piece.len()));
        if lo < hi {
            out.push(&piece[lo - offset..hi - offset]);
        }
        offset += piece.len();
    }
    out
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

/// Builds a [`Labelled`] cloud batch by batch.
struct Builder {
    dims: Option<usize>,
    /// The points so far: each batch's fixed-size list values, or its dim columns, checked
    /// and held where they lie in the answer.
    points: Option<Storage>,
    rows: usize,
    runs: Vec<LabelRun>,
}

/// A dim column of an Arrow answer (int32 or int64, no nulls) as a [`Column`], its values
/// held where they lie in the answer.
fn dim_column(i: usize, column: &ArrayRef) -> Result<Column> {
    if column.null_count() > 0 {
        return Err(Error::Points(format!("dim column {i} has nulls")));
    }
    match column.data_type() {
        DataType::Int32 => Ok(Column::I32(
            column.as_primitive::<Int32Type>().values().clone(),
        )),
        DataType::Int64 => Ok(Column::I64(
            column.as_primitive::<Int64Type>().values().clone(),
        )),
        other => Err(Error::Points(format!(
            "dim column {i} is {other}, expected int32 or int64"
        ))),
    }
}

impl Builder {
    fn new() -> Self {
        Self {
            dims: None,
            points: None,
            rows: 0,
            runs: Vec::new(),
        }
    }

    fn set_dims(&mut self, dims: usize) -> Result<()> {
        match self.dims {
            None if dims > 0 => {
                self.dims = Some(dims);
                Ok(())
            }
            Some(d) if d == dims => Ok(()),
            _ => Err(Error::Points(format!(
                "batches disagree on dims: {dims} after {:?}",
                self.dims
            ))),
        }
    }

    /// Appends one batch's points, either one fixed-size list of int64 or one int32/int64
    /// column per dim, and returns its number of rows.
    fn points(&mut self, columns: &[ArrayRef]) -> Result<usize> {
        let mixed = || Error::Points("batches mix a points list and dim columns".into());
        if let [list] = columns {
            if matches!(list.data_type(), DataType::FixedSizeList(..)) {
                let list = list.as_fixed_size_list();
                let values = list.values();
                if list.null_count() > 0 || values.null_count() > 0 {
                    return Err(Error::Points("the points column has nulls".into()));
                }
                let Some(values) = values.as_primitive_opt::<Int64Type>() else {
                    return Err(Error::Points(format!(
                        "points are {}, expected fixed_size_list<int64>",
                        list.data_type()
                    )));
                };
                let d = list.value_length() as usize;
                self.set_dims(d)?;
                let values = values.values().slice(list.offset() * d, list.len() * d);
                match self.points.get_or_insert(Storage::Rows(Vec::new())) {
                    Storage::Rows(parts) => parts.push(values),
                    Storage::Columns(_) => return Err(mixed()),
                }
                return Ok(list.len());
            }
        }
        self.set_dims(columns.len())?;
        let rows = columns.first().map_or(0, |c| c.len());
        let mut batch = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            if column.len() != rows {
                return Err(Error::Points("dim columns of unequal lengths".into()));
            }
            batch.push(dim_column(i, column)?);
        }
        match self.points.get_or_insert(Storage::Columns(Vec::new())) {
            Storage::Columns(batches) => batches.push(batch),
            Storage::Rows(_) => return Err(mixed()),
        }
        Ok(rows)
    }

    /// Appends one batch: its labels (a column, or the answer's one label) and its point
    /// columns.
    fn push(&mut self, labels: BatchLabels<'_>, columns: &[ArrayRef]) -> Result<()> {
        let rows = self.points(columns)?;
        match labels {
            BatchLabels::One(label) => push_run(&mut self.runs, label, self.rows..self.rows + rows),
            BatchLabels::Column(labels) => {
                if labels.null_count() > 0 {
                    return Err(Error::Points("the label column has nulls".into()));
                }
                if rows != labels.len() {
                    return Err(Error::Points(format!(
                        "{} labels for {rows} points",
                        labels.len()
                    )));
                }
                let labels: Cow<'_, [u64]> = match labels.data_type() {
                    DataType::UInt64 => Cow::Borrowed(labels.as_primitive::<UInt64Type>().values()),
                    DataType::Int64 => Cow::Owned(
                        labels
                            .as_primitive::<Int64Type>()
                            .values()
                            .iter()
                            .map(|l| {
                                u64::try_from(*l)
                                    .map_err(|_| Error::Points(format!("negative label {l}")))
                            })
                            .collect::<Result<_>>()?,
                    ),
                    other => {
                        return Err(Error::Points(format!(
                            "the label column is {other}, expected uint64"
                        )))
                    }
                };
                push_runs(&mut self.runs, self.rows, &labels);
            }
        }
        self.rows += rows;
        Ok(())
    }

    fn push_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = batch.schema();
        let label = schema.index_of("label").ok();
        let columns: Vec<ArrayRef> = (0..batch.num_columns())
            .filter(|i| Some(*i) != label)
            .map(|i| batch.column(i).clone())
            .collect();
        if columns.is_empty() {
            return Err(Error::Points("the answer has no point columns".into()));
        }
        let labels = match label {
            Some(i) => BatchLabels::Column(batch.column(i)),
            None => BatchLabels::One(one_label(&schema)?),
        };
        self.push(labels, &columns)
    }

    fn finish(self, dims_hint: Option<usize>) -> Result<Labelled> {
        let dims = self.dims.or(dims_hint).filter(|d| *d > 0).unwrap_or(3);
        let points = match self.points {
            Some(Storage::Rows(parts)) => {
                if parts.iter().any(|p| p.len() % dims != 0) {
                    return Err(Error::Points(
                        "the answer is not a whole number of points".into(),
                    ));
                }
                Storage::Rows(parts)
            }
            Some(columns) => columns,
            None => Storage::Rows(Vec::new()),
        };
        Ok(Labelled {
            dims,
            points,
            runs: self.runs,
        })
    }
}

/// The labels of one batch of an Arrow answer.
enum BatchLabels<'a> {
    /// Every row is this label's (a one-label answer without a label column).
    One(u64),
    /// A label per row.
    Column(&'a ArrayRef),
}

/// The label a one-label answer names in its schema metadata (`pocaduck_edge:label`).
fn one_label(schema: &arrow_schema::Schema) -> Result<u64> {
    metadata::label(schema.metadata()).unwrap_or_else(|| {
        Err(Error::Points(
            "the answer has no label column and names no label in its metadata".into(),
        ))
    })
}

/// Decodes a whole Arrow IPC stream of labelled points. A stream without its end marker is
/// refused, so a cut answer is never taken for a whole one. A one-label answer's
/// `pocaduck_edge:bbox` schema metadata becomes its run's bounds hint.
pub fn decode_arrow(bytes: Bytes) -> Result<Labelled> {
    let mut out = Builder::new();
    let schema = read_ipc_stream(Buffer::from(bytes), |batch| out.push_batch(&batch))?;
    let dims_hint = schema.as_ref().map(|schema| {
        match schema.field_with_name("points").map(|f| f.data_type()) {
            Ok(DataType::FixedSizeList(_, d)) => *d as usize,
            _ => schema
                .fields()
                .iter()
                .filter(|f| f.name() != "label")
                .count(),
        }
    });
    let mut labelled = out.finish(dims_hint)?;
    if let (Some(schema), [run]) = (schema, &mut labelled.runs[..]) {
        run.bbox_hint = schema
            .metadata()
            .get(metadata::BBOX_KEY)
            .and_then(|text| metadata::parse_bbox(text, labelled.dims));
    }
    Ok(labelled)
}

/// Reads a whole Arrow IPC stream message by message, handing each record batch to
/// `batch`, and returns its schema (`None` for an empty stream). The framing is read by
/// [`ipc::walk_stream`] and each message is decoded by arrow-ipc; dictionary batches are
/// refused (answers have none), which keeps arrow-ipc's dictionary merging, and the array
/// kernels it needs, out of the wasm client.
fn read_ipc_stream(
    buffer: Buffer,
    mut batch: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<Option<SchemaRef>> {
    let mut schema: Option<SchemaRef> = None;
    let no_dictionaries = Default::default();
    let read = |range: Range<usize>| Cow::Borrowed(&buffer[range]);
    ipc::walk_stream(buffer.len(), read, |message, body| {
        match message.header_type() {
            MessageHeader::Schema => {
                let fb = message.header_as_schema().expect("a schema header");
                schema = Some(std::sync::Arc::new(arrow_ipc::convert::fb_to_schema(fb)));
            }
            MessageHeader::RecordBatch => {
                let fb = message.header_as_record_batch().expect("a batch header");
                let schema = schema.clone().ok_or_else(|| {
                    Error::Points("the Arrow stream has a record batch before its schema".into())
                })?;
                let version = message.version();
                let body = buffer.slice_with_length(body.start, body.len());
                let decoded =
                    RecordBatchDecoder::try_new(&body, fb, schema, &no_dictionaries, &version)?
                        .read_record_batch()?;
                batch(decoded)?;
            }
            MessageHeader::DictionaryBatch => {
                return Err(Error::Points(
                    "the Arrow stream has dictionary-encoded columns, which answers never have"
                        .into(),
                ))
            }
            other => {
                return Err(Error::Points(format!(
                    "the Arrow stream has a {other:?} message, not a schema or record batch"
                )))
            }
        }
        Ok(())
    })?;
    Ok(schema)
}

/// Decodes a whole Parquet file of labelled points: a `label` column (uint64, or int64 with
/// no negative value) and one INT32/INT64 column per dim, kept as columns. A one-label
/// answer's `pocaduck_edge:bbox` key-value metadata becomes its run's bounds hint.
pub fn decode_parquet(bytes: Bytes) -> Result<Labelled> {
    const PATH: &str = "answer";
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .map_err(|source| Error::Parquet {
            path: PATH.into(),
            source,
        })?;
    let schema = meta.file_metadata().schema_descr();
    let columns = schema.num_columns();
    let label = (0..columns)
        .find(|c| schema.column(*c).name() == "label")
        .ok_or_else(|| Error::Points("the answer has no label column".into()))?;
    if columns < 2 {
        return Err(Error::Points("the answer has no point columns".into()));
    }
    let rows = meta.file_metadata().num_rows() as u64;
    let mut file = SparseFile::new(bytes.len() as u64);
    file.insert(0, bytes);
    let span = RowSpan {
        row_groups: 0..meta.num_row_groups(),
        skip: 0,
        take: rows,
    };
    let signed = !schema
        .column(label)
        .self_type()
        .get_basic_info()
        .logical_type_ref()
        .is_some_and(|t| matches!(t, parquet::basic::LogicalType::Integer(int) if !int.is_signed));
    let check = |l: i64| {
        if signed && l < 0 {
            Err(Error::Points("the answer has a negative label".into()))
        } else {
            Ok(l as u64)
        }
    };
    // Labels row group by row group: one whose statistics give a single label (as every
    // row group of a one-label answer does) is not decoded.
    let mut runs = Vec::new();
    let mut first_row = 0;
    for (g, group) in meta.row_groups().iter().enumerate() {
        let n = group.num_rows() as usize;
        if let Some(l) = single_value(group.column(label)) {
            push_run(&mut runs, check(l)?, first_row..first_row + n);
        } else {
            let one = RowSpan {
                row_groups: g..g + 1,
                skip: 0,
                take: n as u64,
            };
            let decoded = decode_columns(PATH, &meta, file.clone(), &one, label..label + 1)?;
            let Some(Column::I64(labels)) = decoded.into_iter().next() else {
                return Err(Error::Points("the label column is not 64-bit".into()));
            };
            let labels = labels
                .iter()
                .map(|l| check(*l))
                .collect::<Result<Vec<_>>>()?;
            push_runs(&mut runs, first_row, &labels);
        }
        first_row += n;
    }
    // The dim columns on either side of the label, which is not decoded again.
    let mut points = decode_columns(PATH, &meta, file.clone(), &span, 0..label)?;
    points.extend(decode_columns(
        PATH,
        &meta,
        file,
        &span,
        label + 1..columns,
    )?);
    if let Some(short) = points.iter().find(|c| c.len() != first_row) {
        return Err(Error::Points(format!(
            "the answer has {first_row} labels for {} points",
            short.len()
        )));
    }
    if let [run] = &mut runs[..] {
        run.bbox_hint = meta
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|kv| kv.key == metadata::BBOX_KEY))
            .and_then(|kv| kv.value.as_deref())
            .and_then(|text| metadata::parse_bbox(text, points.len()));
    }
    Ok(Labelled {
        dims: points.len(),
        points: Storage::Columns(vec![points]),
        runs,
    })
}

/// The one value of an INT64 column chunk whose statistics say it holds no null and a
/// single value.
fn single_value(column: &parquet::file::metadata::ColumnChunkMetaData) -> Option<i64> {
    let Some(parquet::file::statistics::Statistics::Int64(stats)) = column.statistics() else {
        return None;
    };
    let no_nulls = column.column_descr().max_def_level() == 0 || stats.null_count_opt() == Some(0);
    match (stats.min_opt(), stats.max_opt()) {
        (Some(lo), Some(hi)) if lo == hi && no_nulls => Some(*lo),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::{FixedSizeListArray, Int32Array, Int64Array, UInt64Array};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    use super::*;
    use crate::cloud::interleave;

    fn list_batch(labels: Vec<u64>, values: Vec<i64>) -> RecordBatch {
        let item = Arc::new(Field::new("item", DataType::Int64, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::UInt64, false),
            Field::new("points", DataType::FixedSizeList(item.clone(), 3), false),
        ]));
        let points =
            FixedSizeListArray::try_new(item, 3, Arc::new(Int64Array::from(values)), None).unwrap();
        RecordBatch::try_new(
            schema,
            vec![Arc::new(UInt64Array::from(labels)), Arc::new(points)],
        )
        .unwrap()
    }

    fn ipc(batches: &[RecordBatch]) -> Bytes {
        let mut w = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
        Bytes::from(w.into_inner().unwrap())
    }

    /// `columns` cut into pieces of rows at `cuts`, as an answer's batches hold them.
    fn column_pieces_at(columns: &[Column], cuts: &[usize]) -> Vec<Vec<Column>> {
        let n = columns[0].len();
        let bounds: Vec<usize> = [0].iter().chain(cuts).chain([n].iter()).copied().collect();
        bounds
            .windows(2)
            .map(|w| {
                let (at, len) = (w[0], w[1] - w[0]);
                columns
                    .iter()
                    .map(|c| match c {
                        Column::I32(v) => Column::I32(v.slice(at, len)),
                        Column::I64(v) => Column::I64(v.slice(at, len)),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn column_answers_go_out_chunk_by_chunk_equal_to_the_whole() {
        let n = 1000usize;
        let wide = |k: i64| -> ScalarBuffer<i64> {
            (0..n as i64)
                .map(|i| (i * 7919 + k) % 5003 - 2500)
                .collect::<Vec<_>>()
                .into()
        };
        let narrow = |k: i64| -> ScalarBuffer<i32> {
            wide(k).iter().map(|v| *v as i32).collect::<Vec<_>>().into()
        };
        let far: Vec<i64> = (0..n as i64)
            .map(|i| {
                if i % 2 == 0 {
                    i64::MIN + i
                } else {
                    i64::MAX - i
                }
            })
            .collect();
        let cases = [
            vec![
                Column::I32(narrow(1)),
                Column::I32(narrow(2)),
                Column::I32(narrow(3)),
            ],
            vec![
                Column::I32(narrow(1)),
                Column::I64(wide(2)),
                Column::I32(narrow(3)),
            ],
            vec![
                Column::I64(far.into()),
                Column::I64(wide(2)),
                Column::I32(narrow(3)),
            ],
            vec![Column::I32(narrow(4)), Column::I64(wide(5))],
            // A fourth dim beyond x, y and z: in the bounds, not in the positions.
            vec![
                Column::I32(narrow(6)),
                Column::I32(narrow(7)),
                Column::I32(narrow(8)),
                Column::I64(wide(9)),
            ],
        ];
        let cuts: [&[usize]; 5] = [&[], &[1, 2, 500], &[3], &[999], &[10]];
        for (columns, cuts) in cases.iter().zip(cuts) {
            let dims = columns.len();
            let labelled = Labelled {
                dims,
                // One piece, or pieces cut across the rows asked for and at their ends.
                points: Storage::Columns(column_pieces_at(columns, cuts)),
                runs: vec![LabelRun {
                    label: 1,
                    rows: 0..n,
                    bbox_hint: None,
                }],
            };
            let rows = 3..n - 5;
            let whole_int64 = interleave(columns, rows.clone());
            let whole = labelled.recentre(rows.clone());
            for chunk in [1, 2, 7, 64, n] {
                let mut int64 = Vec::new();
                labelled.int64_chunked(rows.clone(), chunk, |offset, values| {
                    assert_eq!(offset, int64.len());
                    assert!(values.len() <= chunk * dims);
                    int64.extend_from_slice(values);
                });
                assert_eq!(int64, whole_int64, "{dims} dims, chunks of {chunk}");
                let mut positions = Vec::new();
                let (origin, bbox) =
                    labelled.recentre_chunked(rows.clone(), None, chunk, |offset, values| {
                        assert_eq!(offset, positions.len());
                        positions.extend_from_slice(values);
                    });
                assert_eq!(positions, whole.positions, "{dims} dims, chunks of {chunk}");
                assert_eq!((origin, bbox), (whole.origin, whole.bbox.clone()));
            }
            assert_hints_change_nothing(&labelled, rows.clone(), &whole);
            assert_eq!(labelled.int64(rows.clone()), whole_int64);
            // The re-centred positions are the int64 rows minus the origin (exact here:
            // every difference of these columns is well inside float32's integers).
            if !matches!(columns[0], Column::I64(_)) {
                for (p, v) in whole.positions.chunks(3).zip(whole_int64.chunks(dims)) {
                    for d in 0..dims.min(3) {
                        assert_eq!(p[d] as f64, v[d] as f64 - whole.origin[d]);
                    }
                }
            }
        }
        // No rows: nothing handed out, no bounds.
        let empty = Labelled {
            dims: 3,
            points: Storage::Columns(vec![vec![
                Column::I32(ScalarBuffer::from(vec![])),
                Column::I32(ScalarBuffer::from(vec![])),
                Column::I32(ScalarBuffer::from(vec![])),
            ]]),
            runs: vec![],
        };
        assert_eq!(
            empty.recentre_chunked(0..0, None, 8, |_, _| panic!("no chunk")),
            ([0.0; 3], None)
        );
        empty.int64_chunked(0..0, 8, |_, _| panic!("no chunk"));
    }

    /// Bounds hints: the true bounds take one pass; wrong ones (a box too wide, too narrow,
    /// shifted anywhere, even past int32) a second pass, which rewrites every position; a
    /// hint of other dims is not used. The answer is `whole`'s each time.
    fn assert_hints_change_nothing(labelled: &Labelled, rows: Range<usize>, whole: &Recentred) {
        let exact = whole.bbox.clone().unwrap();
        let moved = |lo: i64, hi: i64| BBox {
            min: exact.min.iter().map(|v| v.saturating_add(lo)).collect(),
            max: exact.max.iter().map(|v| v.saturating_add(hi)).collect(),
        };
        let other_dims = BBox {
            min: exact.min[..1].to_vec(),
            max: exact.max[..1].to_vec(),
        };
        let hints = [
            exact.clone(),
            moved(-1, 1),
            moved(1, -1),
            moved(1 << 40, 1 << 40),
            moved(i64::MIN, i64::MIN),
            other_dims,
        ];
        for hint in hints {
            // (Moving a bound already at an end of int64 may leave the box as it was.)
            let wrong = hint != exact && hint.min.len() == labelled.dims;
            let passes = if wrong { 2 } else { 1 };
            for chunk in [7, rows.len()] {
                let mut positions = vec![f32::NAN; rows.len() * 3];
                let mut written = 0;
                let (origin, bbox) =
                    labelled.recentre_chunked(rows.clone(), Some(&hint), chunk, |at, values| {
                        positions[at..at + values.len()].copy_from_slice(values);
                        written += values.len();
                    });
                let what = format!("{} dims, hint {hint:?}, chunks of {chunk}", labelled.dims);
                assert_eq!(positions, whole.positions, "{what}");
                assert_eq!((origin, bbox), (whole.origin, whole.bbox.clone()), "{what}");
                assert_eq!(written, passes * rows.len() * 3, "{what}");
            }
        }
    }

    #[test]
    fn row_pieces_recentre_in_chunks_as_whole() {
        // Pieces as Arrow batches leave them: exact rows, rows too far apart for float32,
        // rows whose differences overflow int64, and 2 and 4 dims.
        let near: Vec<i64> = (0..90).map(|i| (i * 37) % 101 - 50 + (1 << 40)).collect();
        let far: Vec<i64> = (0..60).map(|i| (i % 7) << 30).collect();
        let extreme = vec![i64::MIN, 0, 5, i64::MAX, -1, 7, 0, 0, 0];
        let cases = [
            (3, vec![near[..30].to_vec(), near[30..].to_vec()]),
            (3, vec![far.clone()]),
            (3, vec![extreme]),
            (2, vec![near[..40].to_vec(), near[40..80].to_vec()]),
            (4, vec![far[..24].to_vec(), far[24..].to_vec()]),
        ];
        for (dims, pieces) in cases {
            let n = pieces.iter().map(Vec::len).sum::<usize>() / dims;
            let labelled = Labelled {
                dims,
                points: Storage::Rows(pieces.into_iter().map(ScalarBuffer::from).collect()),
                runs: vec![],
            };
            for rows in [0..n, 1..n - 1] {
                let whole = labelled.recentre(rows.clone());
                for chunk in [1, 2, 7, n] {
                    let mut positions = Vec::new();
                    let (origin, bbox) =
                        labelled.recentre_chunked(rows.clone(), None, chunk, |offset, values| {
                            assert_eq!(offset, positions.len());
                            assert!(values.len() <= chunk * 3);
                            positions.extend_from_slice(values);
                        });
                    let what = format!("{dims} dims, rows {rows:?}, chunks of {chunk}");
                    assert_eq!(positions, whole.positions, "{what}");
                    assert_eq!((origin, bbox), (whole.origin, whole.bbox.clone()), "{what}");
                }
                assert_hints_change_nothing(&labelled, rows, &whole);
            }
        }
    }

    /// A batch of `shape=columns`: int32 x and z, y int64 when `wide_y` (else int32), with
    /// `metadata` on its schema.
    fn columns_batch(
        labels: Option<Vec<u64>>,
        rows: &[[i64; 3]],
        metadata: &[(&str, &str)],
        wide_y: bool,
    ) -> RecordBatch {
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        if let Some(labels) = labels {
            fields.push(Field::new("label", DataType::UInt64, false));
            columns.push(Arc::new(UInt64Array::from(labels)));
        }
        for (d, name) in ["x", "y", "z"].iter().enumerate() {
            let values = rows.iter().map(|r| r[d]);
            if d == 1 && wide_y {
                fields.push(Field::new(*name, DataType::Int64, false));
                columns.push(Arc::new(Int64Array::from_iter_values(values)));
            } else {
                fields.push(Field::new(*name, DataType::Int32, false));
                columns.push(Arc::new(Int32Array::from_iter_values(
                    values.map(|v| v as i32),
                )));
            }
        }
        let metadata = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new_with_metadata(fields, metadata)),
            columns,
        )
        .unwrap()
    }

    #[test]
    fn column_arrow_answers_keep_their_columns_and_find_their_label() {
        let big = (1u64 << 53) + 1;
        let rows = [[1, -(1 << 40), 3], [4, 5, -6], [7, 8, 9]];
        let one = [("pocaduck_edge:label", "9007199254740993")];
        let a = columns_batch(None, &rows[..2], &one, true);
        let b = columns_batch(None, &rows[2..], &one, true);
        let out = decode_arrow(ipc(&[a, b])).unwrap();
        assert_eq!(out.dims, 3);
        // Each batch's columns are kept as they are, a piece per batch.
        let Storage::Columns(pieces) = &out.points else {
            panic!("columns were not kept");
        };
        assert_eq!(pieces.len(), 2);
        assert!(matches!(
            pieces[0][..],
            [Column::I32(_), Column::I64(_), Column::I32(_)]
        ));
        assert_eq!(
            out.runs,
            vec![LabelRun {
                label: big,
                rows: 0..3,
                bbox_hint: None,
            }]
        );
        let all: Vec<i64> = rows.concat();
        assert_eq!(out.int64(0..3), all);
        assert_eq!(out.recentre(0..3), crate::cloud::recentre(&all, 3));

        // Several labels carry a label column.
        let c = columns_batch(Some(vec![5, 5, big]), &rows, &[], true);
        let out = decode_arrow(ipc(&[c])).unwrap();
        assert_eq!(out.runs.len(), 2);
        assert_eq!(out.int64(2..3), vec![7, 8, 9]);

        // Neither a label column nor a label in the metadata, or a bad one: refused.
        for metadata in [&[][..], &[("pocaduck_edge:label", "-1")][..]] {
            let d = columns_batch(None, &rows, metadata, true);
            let e = decode_arrow(ipc(&[d])).unwrap_err().to_string();
            assert!(e.contains("label"), "{e}");
        }

        // A dim column with a null, or of another type: refused, naming the column.
        let refused = |y: ArrayRef, expected: &str| {
            let fields = ["x", "y", "z"].map(|name| {
                let t = if name == "y" {
                    y.data_type().clone()
                } else {
                    DataType::Int32
                };
                Field::new(name, t, true)
            });
            let metadata = [("pocaduck_edge:label".to_string(), "5".to_string())].into();
            let x: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new_with_metadata(fields.to_vec(), metadata)),
                vec![x.clone(), y, x],
            )
            .unwrap();
            let e = decode_arrow(ipc(&[batch])).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        };
        refused(
            Arc::new(Int32Array::from(vec![Some(1), None])),
            "dim column 1 has nulls",
        );
        refused(
            Arc::new(arrow_array::Float64Array::from(vec![1.0, 2.0])),
            "dim column 1 is Float64, expected int32 or int64",
        );
    }

    #[test]
    fn arrow_runs_follow_labels_across_batches() {
        let big = (1u64 << 53) + 1;
        let a = list_batch(vec![big, big], vec![1, 2, 3, -4, 5, 1 << 60]);
        let b = list_batch(vec![big, 7], vec![0, 0, 0, 9, 9, 9]);
        let out = decode_arrow(ipc(&[a, b])).unwrap();
        assert_eq!(out.dims, 3);
        let all = vec![1, 2, 3, -4, 5, 1 << 60, 0, 0, 0, 9, 9, 9];
        assert_eq!(out.int64(0..4), all);
        let mut pieces = Vec::new();
        out.int64_chunked(1..4, 1, |offset, values| {
            pieces.push((offset, values.to_vec()))
        });
        assert_eq!(
            pieces,
            vec![(0, all[3..6].to_vec()), (3, all[6..].to_vec())],
            "batches go out where they lie, whatever the chunk"
        );
        assert_eq!(out.int64(1..3), &all[3..9]);
        assert_eq!(out.recentre(0..4), crate::cloud::recentre(&all, 3));
        assert_eq!(out.bbox(1..4).unwrap().min, vec![-4, 0, 0]);
        assert_eq!(
            out.runs,
            vec![
                LabelRun {
                    label: big,
                    rows: 0..3,
                    bbox_hint: None,
                },
                LabelRun {
                    label: 7,
                    rows: 3..4,
                    bbox_hint: None,
                }
            ]
        );
    }

    #[test]
    fn parquet_with_int32_and_int64_dims() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::UInt64, false),
            Field::new("x", DataType::Int32, false),
            Field::new("y", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from(vec![u64::MAX, u64::MAX, 5])),
                Arc::new(Int32Array::from(vec![1, -2, 3])),
                Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])),
            ],
        )
        .unwrap();
        let mut w = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        w.write(&batch).unwrap();
        let out = decode_parquet(Bytes::from(w.into_inner().unwrap())).unwrap();
        assert_eq!(out.dims, 2);
        assert_eq!(out.int64(0..3), vec![1, i64::MIN, -2, 0, 3, i64::MAX]);
        assert_eq!(out.bbox(0..2).unwrap().max, vec![1, 0]);
        let r = out.recentre(2..3);
        // The origin is one float64 holds and int64 too: below i64::MAX, the nearest is 2^63.
        let below_the_end = (1u64 << 63) - 1024;
        assert_eq!(r.origin, [3.0, below_the_end as f64, 0.0]);
        assert_eq!(r.positions, vec![0.0, 1023.0, 0.0]);
        assert_eq!(out.runs.len(), 2);
        assert_eq!(out.runs[0].label, u64::MAX);
        assert_eq!(out.runs[1].rows, 2..3);
    }

    #[test]
    fn parquet_labels_come_from_statistics_or_from_the_column() {
        // Label last, row groups of 2: [5 5] [5 7] [7 7] [9].
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int32, false),
            Field::new("label", DataType::UInt64, false),
        ]));
        let labels = vec![5, 5, 5, 7, 7, 7, 9];
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from((0..7).collect::<Vec<i32>>())),
                Arc::new(UInt64Array::from(labels)),
            ],
        )
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        let bytes = Bytes::from(w.into_inner().unwrap());
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .unwrap();
        assert_eq!(meta.num_row_groups(), 4);
        assert_eq!(single_value(meta.row_group(0).column(1)), Some(5));
        assert_eq!(single_value(meta.row_group(1).column(1)), None);
        let out = decode_parquet(bytes).unwrap();
        let runs: Vec<(u64, Range<usize>)> =
            out.runs.iter().map(|r| (r.label, r.rows.clone())).collect();
        assert_eq!(runs, vec![(5, 0..3), (7, 3..6), (9, 6..7)]);
        assert_eq!(out.int64(5..7), vec![5, 6]);
    }

    #[test]
    fn a_one_label_arrow_answer_s_named_bounds_are_its_run_s_hint() {
        let answer = |labels: Vec<u64>, bbox: Option<&str>| {
            let n = labels.len() as i64;
            let batch = list_batch(labels, (0..3 * n).map(|v| v - 4).collect());
            let mut metadata = HashMap::new();
            if let Some(b) = bbox {
                metadata.insert(metadata::BBOX_KEY.to_string(), b.to_string());
            }
            let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(metadata));
            let batch = batch.with_schema(schema).unwrap();
            let out = decode_arrow(ipc(&[batch])).unwrap();
            out.runs
                .iter()
                .map(|r| r.bbox_hint.clone())
                .collect::<Vec<_>>()
        };
        // Taken as it is said (it is checked when used), for the answer's dims.
        let said = BBox {
            min: vec![-4, -3, -2],
            max: vec![5, 6, 7],
        };
        assert_eq!(answer(vec![9; 4], Some("-4,-3,-2,5,6,7")), [Some(said)]);
        assert_eq!(answer(vec![9; 4], None), [None]);
        assert_eq!(answer(vec![9; 4], Some("-4,-3,5,6")), [None]);
        // Not one label: not one box.
        assert_eq!(answer(vec![9, 9, 8], Some("-4,-3,-2,5,6,7")), [None, None]);
    }

    #[test]
    fn a_one_label_parquet_answer_s_named_bounds_are_its_run_s_hint() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::UInt64, false),
            Field::new("x", DataType::Int32, false),
            Field::new("y", DataType::Int64, false),
        ]));
        let file = |labels: Vec<u64>, bbox: Option<&str>| {
            let n = labels.len() as i32;
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(UInt64Array::from(labels)),
                    Arc::new(Int32Array::from((0..n).collect::<Vec<i32>>())),
                    Arc::new(Int64Array::from(
                        (0..n as i64).map(|i| -i).collect::<Vec<_>>(),
                    )),
                ],
            )
            .unwrap();
            let kv = bbox.map(|b| {
                vec![parquet::file::metadata::KeyValue::new(
                    metadata::BBOX_KEY.into(),
                    b.to_string(),
                )]
            });
            let props = parquet::file::properties::WriterProperties::builder()
                .set_key_value_metadata(kv)
                .build();
            let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).unwrap();
            w.write(&batch).unwrap();
            decode_parquet(Bytes::from(w.into_inner().unwrap())).unwrap()
        };
        let hint = |out: &Labelled| {
            out.runs
                .iter()
                .map(|r| r.bbox_hint.clone())
                .collect::<Vec<_>>()
        };
        // Taken as it is said (it is checked when used), for the answer's dims.
        let said = BBox {
            min: vec![-1, -9],
            max: vec![5, 0],
        };
        assert_eq!(hint(&file(vec![3; 4], Some("-1,-9,5,0"))), [Some(said)]);
        assert_eq!(hint(&file(vec![3; 4], None)), [None]);
        assert_eq!(hint(&file(vec![3; 4], Some("0,0,3"))), [None]);
        assert_eq!(hint(&file(vec![3; 4], Some("0,0,3,x"))), [None]);
        // Not one label: not one box.
        assert_eq!(hint(&file(vec![3, 3, 4], Some("0,-2,2,0"))), [None, None]);
    }

    #[test]
    fn parquet_with_a_negative_signed_label_is_refused() {
        // An int64 label column: a row group of one negative label (read from statistics)
        // and a row group mixing signs (decoded) are both refused.
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::Int64, false),
            Field::new("x", DataType::Int32, false),
        ]));
        let file = |labels: Vec<i64>| {
            let n = labels.len() as i32;
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(labels)),
                    Arc::new(Int32Array::from((0..n).collect::<Vec<i32>>())),
                ],
            )
            .unwrap();
            let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), None).unwrap();
            w.write(&batch).unwrap();
            Bytes::from(w.into_inner().unwrap())
        };
        for labels in [vec![-3, -3], vec![-1, 2]] {
            let err = decode_parquet(file(labels.clone()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("negative label"), "{labels:?}: {err}");
        }
        assert_eq!(decode_parquet(file(vec![4, 4])).unwrap().runs[0].label, 4);
    }

    #[test]
    fn empty_stream_keeps_its_dims() {
        let batch = list_batch(vec![], vec![]);
        let out = decode_arrow(ipc(&[batch])).unwrap();
        assert_eq!((out.dims, out.runs.len()), (3, 0));
        assert_eq!(out.points, Storage::Rows(vec![Vec::new().into()]));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(decode_arrow(Bytes::from_static(b"not arrow at all")).is_err());
        assert!(decode_parquet(Bytes::from_static(b"PAR1 not parquet PAR1")).is_err());
        let whole = ipc(&[list_batch(vec![1], vec![1, 2, 3])]);
        for cut in [1, whole.len() / 2, whole.len() - 8, whole.len() - 1] {
            assert!(
                decode_arrow(whole.slice(..cut)).is_err(),
                "a stream cut at {cut} decoded"
            );
        }
        let twice = Bytes::from([&whole[..], &whole[..]].concat());
        let err = decode_arrow(twice).unwrap_err().to_string();
        assert!(err.contains("after its end-of-stream marker"), "{err}");
    }

    #[test]
    fn dictionary_encoded_streams_are_refused() {
        use arrow_array::types::Int32Type;
        use arrow_array::{DictionaryArray, FixedSizeListArray, Int64Array, UInt64Array};
        let labels: DictionaryArray<Int32Type> = DictionaryArray::try_new(
            vec![0, 0].into(),
            std::sync::Arc::new(UInt64Array::from(vec![7u64])),
        )
        .unwrap();
        let points = FixedSizeListArray::try_new(
            std::sync::Arc::new(arrow_schema::Field::new("item", DataType::Int64, false)),
            3,
            std::sync::Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
            None,
        )
        .unwrap();
        let batch = RecordBatch::try_from_iter([
            ("label", std::sync::Arc::new(labels) as ArrayRef),
            ("points", std::sync::Arc::new(points) as ArrayRef),
        ])
        .unwrap();
        let err = decode_arrow(ipc(&[batch])).unwrap_err().to_string();
        assert!(err.contains("dictionary-encoded"), "{err}");
    }
}
