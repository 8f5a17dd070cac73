//! Parquet answers: row groups of the layout's points files copied as stored, other rows
//! encoded with the layout's coordinate encodings.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowSchemaConverter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{KeyValue, RowGroupMetaData};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use pocaduck_edge_core::cloud::BBox;
use pocaduck_edge_core::encoding::coordinate_encoding;
use pocaduck_edge_core::metadata::{format_bbox, BBOX_KEY};
use pocaduck_edge_core::read::SparseFile;
use pocaduck_edge_core::PointCloud;

use super::{answer_zstd_level, internal, FormatError};

/// Encodes a Parquet answer a row group at a time: `label: uint64` and one column per dim
/// (int32, or int64 when `wide`), zstd (at a level [`answer_zstd_level`] picks) with the
/// layout's coordinate encodings, no statistics; a one-label answer whose points' bounds
/// are known names them in its key-value metadata (`pocaduck_edge:bbox`).
/// Row groups of the layout's points files with the same columns are copied as they are
/// stored, so a whole label costs no decoding and as many bytes as at rest.
pub struct ParquetEncoder {
    writer: SerializedFileWriter<Vec<u8>>,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    row_groups: usize,
}

impl ParquetEncoder {
    /// Starts a file; its magic is in the first [`ParquetEncoder::take`].
    pub fn new(
        dims: &[String],
        wide: bool,
        zstd_level: i32,
        bbox: Option<&BBox>,
    ) -> Result<Self, FormatError> {
        let coord = if wide {
            DataType::Int64
        } else {
            DataType::Int32
        };
        let mut fields = vec![Field::new("label", DataType::UInt64, false)];
        fields.extend(dims.iter().map(|d| Field::new(d, coord.clone(), false)));
        let schema = Arc::new(Schema::new(fields));
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(zstd_level).map_err(internal)?,
            ))
            // A one-off answer: no statistics or page index to pay for on the wire (and
            // copied row groups bring none).
            .set_statistics_enabled(EnabledStatistics::None)
            .set_offset_index_disabled(true)
            .set_column_encoding(ColumnPath::from("label"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from("label"), false)
            .set_key_value_metadata(
                bbox.map(|b| vec![KeyValue::new(BBOX_KEY.to_string(), format_bbox(b))]),
            );
        for (i, d) in dims.iter().enumerate() {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(d.as_str()), false)
                .set_column_encoding(
                    ColumnPath::from(d.as_str()),
                    coordinate_encoding(i, dims.len()),
                );
        }
        // No `ARROW:schema` key: the Parquet schema says it all (label's logical type is
        // unsigned), and it would be 400 bytes of every answer.
        let props = props.build();
        let parquet_schema = ArrowSchemaConverter::new()
            .convert(&schema)
            .map_err(internal)?;
        let writer =
            SerializedFileWriter::new(Vec::new(), parquet_schema.root_schema_ptr(), props.into())
                .map_err(internal)?;
        let columns = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
        Ok(Self {
            writer,
            columns,
            schema,
            row_groups: 0,
        })
    }

    /// Whether row groups of a points file with this schema can be copied into the answer.
    pub fn can_copy(&self, stored: &SchemaDescriptor) -> bool {
        let ours = self.writer.schema_descr();
        stored.num_columns() == ours.num_columns()
            && (0..ours.num_columns()).all(|i| stored.column(i) == ours.column(i))
    }

    /// Copies row group `group` of a points file (its bytes in `file`) as it is stored.
    pub fn copy_row_group(
        &mut self,
        group: &RowGroupMetaData,
        file: &SparseFile,
    ) -> Result<(), FormatError> {
        let mut row_group = self.writer.next_row_group().map_err(internal)?;
        for column in group.columns() {
            row_group
                .append_column(
                    file,
                    ColumnCloseResult {
                        bytes_written: column.compressed_size() as u64,
                        rows_written: group.num_rows() as u64,
                        metadata: column.clone(),
                        bloom_filter: None,
                        column_index: None,
                        offset_index: None,
                    },
                )
                .map_err(internal)?;
        }
        row_group.close().map_err(internal)?;
        self.row_groups += 1;
        Ok(())
    }

    /// Appends `label`'s points as a row group of their own (none when there are none).
    pub fn push(&mut self, label: u64, cloud: &PointCloud) -> Result<(), FormatError> {
        if cloud.is_empty() {
            return Ok(());
        }
        let wide = self.schema.field(1).data_type() == &DataType::Int64;
        let mut writers = self
            .columns
            .create_column_writers(self.row_groups)
            .map_err(internal)?;
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(vec![label; cloud.len()]))];
        for d in 0..cloud.dims() {
            let values = cloud.rows().map(|r| r[d]);
            arrays.push(if wide {
                Arc::new(Int64Array::from_iter_values(values))
            } else {
                Arc::new(Int32Array::from_iter_values(values.map(|v| v as i32)))
            });
        }
        for ((writer, field), array) in writers.iter_mut().zip(self.schema.fields()).zip(&arrays) {
            for leaf in compute_leaves(field, array).map_err(internal)? {
                writer.write(&leaf).map_err(internal)?;
            }
        }
        let mut row_group = self.writer.next_row_group().map_err(internal)?;
        for writer in writers {
            writer
                .close()
                .map_err(internal)?
                .append_to_row_group(&mut row_group)
                .map_err(internal)?;
        }
        row_group.close().map_err(internal)?;
        self.row_groups += 1;
        Ok(())
    }

    /// The bytes encoded since the last call.
    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.writer.inner_mut()))
    }

    /// Writes the footer and returns the remaining bytes.
    pub fn finish(mut self) -> Result<Bytes, FormatError> {
        self.writer.finish().map_err(internal)?;
        Ok(self.take())
    }
}

/// Whole labels as one Parquet file ([`ParquetEncoder`]); int32 coordinates when every value
/// fits.
pub fn parquet(dims: &[String], labels: &[(u64, PointCloud)]) -> Result<Bytes, FormatError> {
    let wide = labels
        .iter()
        .any(|(_, c)| c.values().iter().any(|v| i32::try_from(*v).is_err()));
    let points = labels.iter().map(|(_, c)| c.len() as u64).sum();
    let bbox = match labels {
        [(_, cloud)] => cloud.bbox(),
        _ => None,
    };
    let mut encoder = ParquetEncoder::new(dims, wide, answer_zstd_level(points), bbox.as_ref())?;
    let mut out = encoder.take().to_vec();
    for (label, cloud) in labels {
        encoder.push(*label, cloud)?;
    }
    out.extend_from_slice(&encoder.finish()?);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{ANSWER_ZSTD_LEVEL, SMALL_ANSWER_POINTS, SMALL_ANSWER_ZSTD_LEVEL};
    use pocaduck_edge_core::columns::int64_column;

    /// The rows of a Parquet file: label, then the dims as i64.
    fn parquet_rows(bytes: Bytes) -> Vec<Vec<i64>> {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let columns: Vec<ArrayRef> = batch
                .columns()
                .iter()
                .map(|c| int64_column(c).unwrap())
                .collect();
            for i in 0..batch.num_rows() {
                rows.push(
                    columns
                        .iter()
                        .map(|c| c.as_any().downcast_ref::<Int64Array>().unwrap().value(i))
                        .collect(),
                );
            }
        }
        rows
    }

    #[test]
    fn small_parquet_answers_are_compressed_harder() {
        assert_eq!(answer_zstd_level(1), SMALL_ANSWER_ZSTD_LEVEL);
        assert_eq!(
            answer_zstd_level(SMALL_ANSWER_POINTS),
            SMALL_ANSWER_ZSTD_LEVEL
        );
        assert_eq!(
            answer_zstd_level(SMALL_ANSWER_POINTS + 1),
            ANSWER_ZSTD_LEVEL
        );
        // A surface-like cloud of 30K points: a sorted walk with small steps.
        let mut state = 1u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as i64
        };
        let (mut x, mut y, mut z) = (50_000i64, 20_000i64, 9_000i64);
        let mut values = Vec::new();
        for _ in 0..30_000 {
            z += 1 + next() % 40;
            if next() % 8 == 0 {
                y += 1;
                z -= 600;
            }
            if next() % 200 == 0 {
                x += 1;
            }
            values.extend([x, y, z]);
        }
        let cloud = PointCloud::new(3, values).unwrap();
        let dims: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
        let small = parquet(&dims, &[(7, cloud.clone())]).unwrap();
        let mut fast = ParquetEncoder::new(&dims, false, ANSWER_ZSTD_LEVEL, None).unwrap();
        let mut at_fast_level = fast.take().to_vec();
        fast.push(7, &cloud).unwrap();
        at_fast_level.extend_from_slice(&fast.finish().unwrap());
        assert!(
            small.len() < at_fast_level.len(),
            "{} bytes at the small answers' level, {} at the big ones'",
            small.len(),
            at_fast_level.len()
        );
        assert_eq!(
            parquet_rows(small),
            parquet_rows(Bytes::from(at_fast_level))
        );
    }

    #[test]
    fn parquet_answers_mix_copied_and_encoded_row_groups() {
        let dims = vec!["x".to_string(), "y".into(), "z".into()];
        let a = PointCloud::new(3, vec![1, 2, 3, 1, 2, 4, 5, -6, 7]).unwrap();
        let b = PointCloud::new(3, vec![-1, i32::MAX as i64, i32::MIN as i64]).unwrap();
        // A stored file of two row groups, as the layout writes them.
        let stored = parquet(&dims, &[(7, a.clone()), ((1 << 53) + 1, b.clone())]).unwrap();
        let meta = parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&stored)
            .unwrap();
        let mut file = SparseFile::new(stored.len() as u64);
        file.insert(0, stored.clone());

        let mut encoder = ParquetEncoder::new(&dims, false, ANSWER_ZSTD_LEVEL, None).unwrap();
        assert!(encoder.can_copy(meta.file_metadata().schema_descr()));
        let mut out = encoder.take().to_vec();
        encoder.copy_row_group(meta.row_group(1), &file).unwrap();
        encoder.push(7, &a).unwrap();
        encoder.copy_row_group(meta.row_group(0), &file).unwrap();
        out.extend_from_slice(&encoder.finish().unwrap());

        let row = |l: u64, p: &[i64]| [vec![l as i64], p.to_vec()].concat();
        let mut expected: Vec<Vec<i64>> = b.rows().map(|p| row((1 << 53) + 1, p)).collect();
        expected.extend(a.rows().map(|p| row(7, p)));
        expected.extend(a.rows().map(|p| row(7, p)));
        assert_eq!(parquet_rows(Bytes::from(out)), expected);

        let wide = ParquetEncoder::new(&dims, true, ANSWER_ZSTD_LEVEL, None).unwrap();
        assert!(
            !wide.can_copy(meta.file_metadata().schema_descr()),
            "int32 columns are not copied into an int64 answer"
        );
    }
}
