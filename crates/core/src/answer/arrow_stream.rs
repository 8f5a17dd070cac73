//! Decoding an Arrow IPC stream answer (`label` and a `points` list, or `label` and one
//! integer column per dim) into a [`Labelled`] cloud.

use std::borrow::Cow;
use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::reader::RecordBatchDecoder;
use arrow_ipc::MessageHeader;
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;

use super::{push_run, push_runs, LabelRun, Labelled, Storage};
use crate::cloud::Column;
use crate::error::{Error, Result};
use crate::ipc;
use crate::metadata;

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
    let no_header = || Error::Points("an Arrow message without its header".into());
    ipc::walk_stream(buffer.len(), read, |message, body| {
        match message.header_type() {
            MessageHeader::Schema => {
                let fb = message.header_as_schema().ok_or_else(no_header)?;
                schema = Some(std::sync::Arc::new(pocaduck_edge_ipc_check::schema(fb)?));
            }
            MessageHeader::RecordBatch => {
                let fb = message.header_as_record_batch().ok_or_else(no_header)?;
                let schema = schema.clone().ok_or_else(|| {
                    Error::Points("the Arrow stream has a record batch before its schema".into())
                })?;
                pocaduck_edge_ipc_check::check_columns(&schema, &fb)?;
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::{FixedSizeListArray, Int32Array, Int64Array, UInt64Array};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::answer::decode_parquet;
    use crate::cloud::BBox;

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
