//! Decoding a Parquet answer (`label` and one INT32/INT64 column per dim, as the API's
//! `format=parquet` and the edge layout's points files) into a [`Labelled`] cloud.

use bytes::Bytes;
use parquet::errors::ParquetError;

use super::{push_run, push_runs, Labelled, Storage};
use crate::cloud::Column;
use crate::error::{Error, Result};
use crate::metadata;
use crate::read::{decode_columns, parse_footer, RowSpan, SparseFile};

/// Decodes a whole Parquet file of labelled points: a `label` column (uint64, or int64 with
/// no negative value) and one INT32/INT64 column per dim, kept as columns. A one-label
/// answer's `pocaduck_edge:bbox` key-value metadata becomes its run's bounds hint.
pub fn decode_parquet(bytes: Bytes) -> Result<Labelled> {
    const PATH: &str = "answer";
    if !bytes.starts_with(b"PAR1") {
        return Err(Error::Points("the answer does not start with PAR1".into()));
    }
    // The footer: its metadata, their length and `PAR1`, after the data.
    let footer = bytes
        .len()
        .checked_sub(8)
        .map(|end| u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes")))
        .and_then(|len| {
            bytes
                .len()
                .checked_sub(usize::try_from(len).ok()?.checked_add(8)?)
        })
        .filter(|start| *start >= 4)
        .ok_or_else(|| Error::Parquet {
            path: PATH.into(),
            source: ParquetError::General("the footer's length passes the file's start".into()),
        })?;
    let meta = parse_footer(PATH, &bytes[footer..])?;
    let schema = meta.file_metadata().schema_descr();
    let columns = schema.num_columns();
    let label = (0..columns)
        .find(|c| schema.column(*c).name() == "label")
        .ok_or_else(|| Error::Points("the answer has no label column".into()))?;
    if columns < 2 {
        return Err(Error::Points("the answer has no point columns".into()));
    }
    let rows = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
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
        let n = usize::try_from(group.num_rows()).unwrap_or(0);
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
    use std::ops::Range;
    use std::sync::Arc;

    use arrow_array::{Int32Array, Int64Array, RecordBatch, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::ParquetMetaDataReader;

    use super::*;
    use crate::cloud::BBox;

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
}
