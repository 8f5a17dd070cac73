//! Reading answers back: npy, Arrow IPC (rows and columns shapes) and Parquet, into rows of
//! int64 values, and the metadata answers carry.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, FixedSizeListArray, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::file::metadata::RowGroupMetaData;

/// Decodes an .npy of int64 into rows.
pub fn npy_rows(bytes: &[u8]) -> Vec<Vec<i64>> {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<i8'"), "{header}");
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let dims: usize = shape.split(',').nth(1).unwrap().trim().parse().unwrap();
    let values: Vec<i64> = bytes[10 + header_len..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    values.chunks(dims).map(|r| r.to_vec()).collect()
}

/// Decodes an Arrow IPC points stream (`label`, `points`) into (label, row) pairs.
pub fn arrow_rows(bytes: &[u8]) -> Vec<(u64, Vec<i64>)> {
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    assert_eq!(reader.schema().field(0).name(), "label");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let labels = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        let points = batch
            .column(1)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let d = points.value_length() as usize;
        let values = points
            .values()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        for i in 0..batch.num_rows() {
            out.push((
                labels.value(i),
                values.values()[i * d..(i + 1) * d].to_vec(),
            ));
        }
    }
    out
}

/// Decodes an Arrow IPC points stream of `shape=columns` into its schema and (label, row)
/// pairs: the label from the `label` column, or from the schema metadata of a one-label
/// answer; each dim column int32 or int64.
pub fn arrow_column_rows(bytes: &[u8]) -> (SchemaRef, Vec<(u64, Vec<i64>)>) {
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    let schema = reader.schema();
    let one: Option<u64> = schema
        .metadata()
        .get("pocaduck_edge:label")
        .map(|l| l.parse().unwrap());
    let labelled = schema.index_of("label").is_ok();
    assert!(
        labelled != one.is_some(),
        "a label column or a label in the metadata"
    );
    let first_dim = usize::from(labelled);
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let dims: Vec<Vec<i64>> = batch.columns()[first_dim..]
            .iter()
            .map(|c| {
                assert_eq!(c.null_count(), 0);
                match c.data_type() {
                    DataType::Int32 => c
                        .as_primitive::<Int32Type>()
                        .values()
                        .iter()
                        .map(|v| *v as i64)
                        .collect(),
                    DataType::Int64 => c.as_primitive::<Int64Type>().values().to_vec(),
                    other => panic!("a dim column of type {other}"),
                }
            })
            .collect();
        for i in 0..batch.num_rows() {
            let label = match one {
                Some(l) => l,
                None => batch.column(0).as_primitive::<UInt64Type>().value(i),
            };
            out.push((label, dims.iter().map(|d| d[i]).collect()));
        }
    }
    (schema, out)
}

/// The schema metadata of an Arrow answer.
pub fn arrow_metadata(bytes: &[u8]) -> HashMap<String, String> {
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    reader.schema().metadata().clone()
}

/// The dim columns of a Parquet answer's batch (after the label) as i64.
fn parquet_dims(batch: &RecordBatch) -> Vec<Vec<i64>> {
    (1..batch.num_columns())
        .map(|c| {
            let col = batch.column(c);
            if let Some(a) = col.as_any().downcast_ref::<arrow_array::Int32Array>() {
                a.values().iter().map(|v| *v as i64).collect()
            } else {
                col.as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            }
        })
        .collect()
}

/// The rows of a Parquet answer, in order: the label and the dims as i64.
pub fn parquet_rows(bytes: Bytes) -> Vec<Vec<i64>> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let labels = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .clone();
        let dims = parquet_dims(&batch);
        for i in 0..labels.len() {
            let mut row = vec![labels.value(i) as i64];
            row.extend(dims.iter().map(|c| c[i]));
            rows.push(row);
        }
    }
    rows
}

/// What a Parquet answer's key-value metadata says for `key`.
pub fn parquet_metadata(bytes: &Bytes, key: &str) -> Option<String> {
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(bytes)
        .unwrap();
    let kv = meta.file_metadata().key_value_metadata()?;
    kv.iter().find(|kv| kv.key == key)?.value.clone()
}

/// A one-label Parquet answer's points (its rows without the label) and the bounds it names.
pub fn parquet_points_and_bounds(bytes: Bytes) -> (Vec<Vec<i64>>, Option<String>) {
    let bounds = parquet_metadata(&bytes, "pocaduck_edge:bbox");
    let points = parquet_rows(bytes)
        .into_iter()
        .map(|r| r[1..].to_vec())
        .collect();
    (points, bounds)
}

/// The column-chunk bytes of each row group of a Parquet file.
pub fn row_group_bytes(file: &Bytes) -> Vec<(RowGroupMetaData, Bytes)> {
    use parquet::file::reader::FileReader;
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(file.clone()).unwrap();
    reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| {
            let (start, end) = g.columns().iter().fold((u64::MAX, 0), |(s, e), c| {
                let (o, l) = c.byte_range();
                (s.min(o), e.max(o + l))
            });
            (g.clone(), file.slice(start as usize..end as usize))
        })
        .collect()
}

/// The bounds of points as an answer names them (`pocaduck_edge:bbox`): the D minima, then
/// the D maxima, comma-separated.
pub fn bounds_text(points: &[Vec<i64>]) -> String {
    let dims = points[0].len();
    let axis = |d: usize| points.iter().map(move |p| p[d]);
    let bounds: Vec<String> = (0..dims)
        .map(|d| axis(d).min().unwrap())
        .chain((0..dims).map(|d| axis(d).max().unwrap()))
        .map(|v| v.to_string())
        .collect();
    bounds.join(",")
}

/// The rows at ranks ⌊j · len / n⌋ for j < n: a level of detail of `rows`.
pub fn spread<T: Clone>(rows: &[T], n: usize) -> Vec<T> {
    (0..n.min(rows.len()))
        .map(|j| rows[j * rows.len() / n.min(rows.len())].clone())
        .collect()
}
