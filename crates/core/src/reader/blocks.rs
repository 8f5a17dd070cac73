//! A label's PoCADuck blocks: the one byte range of the blocks file that holds its rows,
//! and their decoding into `(block_id, point_count)` pairs.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::metadata::ParquetMetaData;

use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::manifest::{DataFile, Manifest};
use crate::plan::plan_blocks;
use crate::read::{decode_blocks, parse_footer, RowSpan, SparseFile};

/// Decodes the blocks file's footer from the bytes of its `footer` range, checking them
/// against the footer's hash when the manifest records one, and that it has the label,
/// block id and point count columns and well-formed row-group hashes, if any. An error when
/// the dataset has no blocks file.
pub fn blocks_footer(manifest: &Manifest, bytes: &[u8]) -> Result<Arc<ParquetMetaData>> {
    let file = blocks_file(manifest)?;
    let path = &file.path;
    if let Some(expected) = &file.footer_xxh3 {
        crate::integrity::check(format_args!("the footer of {path}"), bytes, expected)?;
    }
    let meta = parse_footer(path, bytes)?;
    crate::integrity::row_group_hashes(path, &meta)?;
    let columns = meta.file_metadata().schema_descr().num_columns();
    if columns != 3 {
        return Err(Error::Points(format!(
            "{path} has {columns} columns, expected label, block_id and point_count"
        )));
    }
    Ok(meta)
}

fn blocks_file(manifest: &Manifest) -> Result<&DataFile> {
    manifest
        .blocks
        .as_ref()
        .ok_or_else(|| Error::Manifest("the dataset has no blocks file".into()))
}

/// The read of one label's blocks: fetch [`BlocksPlan::range`] of [`BlocksPlan::path`],
/// then [`BlocksPlan::decode`] those bytes.
#[derive(Debug)]
pub struct BlocksPlan<'a> {
    file: &'a DataFile,
    footer: &'a Arc<ParquetMetaData>,
    range: Range<u64>,
    rows: RowSpan,
}

impl<'a> BlocksPlan<'a> {
    /// The plan for `entry`'s blocks, given the blocks file's footer (from
    /// [`blocks_footer`]); `None` when the dataset has no blocks file or the label no blocks.
    pub fn new(
        manifest: &'a Manifest,
        footer: Option<&'a Arc<ParquetMetaData>>,
        entry: &IndexEntry,
    ) -> Result<Option<Self>> {
        let (Some(file), Some(footer)) = (&manifest.blocks, footer) else {
            return Ok(None);
        };
        Ok(plan_blocks(entry, footer)?.map(|(range, rows)| Self {
            file,
            footer,
            range: range.offset..range.end(),
            rows,
        }))
    }

    /// The path of the blocks file.
    pub fn path(&self) -> &'a str {
        &self.file.path
    }

    /// The bytes of the blocks file to fetch.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// Decodes the fetched [`BlocksPlan::range`] into the label's `(block_id, point_count)`
    /// pairs, in stored order, once its row groups match the hashes the footer records.
    pub fn decode(&self, bytes: Bytes) -> Result<Vec<(String, u64)>> {
        let expected = self.range.end - self.range.start;
        if bytes.len() as u64 != expected {
            return Err(Error::Points(format!(
                "{}: {} bytes fetched for a blocks range of {expected}",
                self.file.path,
                bytes.len()
            )));
        }
        crate::integrity::check_row_groups(&self.file.path, self.footer, self.range.start, &bytes)?;
        let mut sparse = SparseFile::new(self.file.size);
        sparse.insert(self.range.start, bytes);
        decode_blocks(&self.file.path, self.footer, sparse, &self.rows)
    }
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use super::*;
    use crate::reader::test_data::{cloud, Dataset};
    use crate::write::{BlockCount, WriterOptions};

    fn blocks(label: u64, n: usize) -> Vec<BlockCount> {
        (0..n)
            .map(|i| BlockCount {
                block_id: format!("{label}-{i}"),
                point_count: (label % 7 + i as u64) * 3,
            })
            .collect()
    }

    /// Labels with blocks on some of them, the blocks file in row groups of 4 rows so a
    /// label's blocks span several of them.
    fn dataset() -> (Dataset, Vec<(u64, Vec<BlockCount>)>) {
        let labels: Vec<(u64, Vec<BlockCount>)> = [1u64, 2, 9, 1 << 60, u64::MAX]
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, blocks(l, [3, 0, 9, 1, 5][i])))
            .collect();
        let clouds: Vec<_> = labels
            .iter()
            .enumerate()
            .map(|(i, (l, b))| (*l, cloud(i as u64, 20, 50, -10), b.clone()))
            .collect();
        let options = WriterOptions {
            row_group_rows: 4,
            ..WriterOptions::default()
        };
        (Dataset::write_with_blocks(&clouds, options), labels)
    }

    fn footer(d: &Dataset) -> Arc<ParquetMetaData> {
        let file = d.manifest.blocks.as_ref().unwrap();
        let f = file.footer.unwrap();
        blocks_footer(&d.manifest, &d.fetch(&file.path, f.offset..f.end())).unwrap()
    }

    #[test]
    fn each_label_reads_back_its_blocks_from_one_range() {
        let (d, labels) = dataset();
        let footer = footer(&d);
        for (label, written) in &labels {
            let plan = BlocksPlan::new(&d.manifest, Some(&footer), d.entry(*label)).unwrap();
            let Some(plan) = plan else {
                assert!(written.is_empty(), "label {label} lost its blocks");
                continue;
            };
            let read = plan.decode(d.fetch(plan.path(), plan.range())).unwrap();
            let expected: Vec<(String, u64)> = written
                .iter()
                .map(|b| (b.block_id.clone(), b.point_count))
                .collect();
            assert_eq!(read, expected, "label {label}");
        }
    }

    #[test]
    fn no_footer_means_no_plan() {
        let (d, _) = dataset();
        assert!(BlocksPlan::new(&d.manifest, None, d.entry(1))
            .unwrap()
            .is_none());
    }

    #[test]
    fn bytes_of_the_wrong_length_are_an_error() {
        let (d, _) = dataset();
        let footer = footer(&d);
        let plan = BlocksPlan::new(&d.manifest, Some(&footer), d.entry(9))
            .unwrap()
            .unwrap();
        let mut range = plan.range();
        range.end -= 1;
        let err = plan.decode(d.fetch(plan.path(), range)).unwrap_err();
        assert!(err.to_string().contains("bytes fetched"), "{err}");
    }

    #[test]
    fn a_changed_byte_in_a_row_group_is_refused_not_decoded() {
        let (d, labels) = dataset();
        let footer = footer(&d);
        let hashes = crate::integrity::row_group_hashes("blocks", &footer)
            .unwrap()
            .expect("the blocks file records its row groups' hashes");
        assert_eq!(hashes.len(), footer.num_row_groups());
        assert!(footer.num_row_groups() > 1);
        for (label, written) in labels.iter().filter(|(_, b)| !b.is_empty()) {
            let plan = BlocksPlan::new(&d.manifest, Some(&footer), d.entry(*label))
                .unwrap()
                .unwrap();
            let whole = d.fetch(plan.path(), plan.range());
            for at in [0, whole.len() / 2, whole.len() - 1] {
                let mut changed = whole.to_vec();
                changed[at] ^= 0x10;
                match plan.decode(Bytes::from(changed)) {
                    Err(Error::Corrupt { what }) => assert!(what.contains("row group"), "{what}"),
                    other => panic!("label {label}, byte {at} changed: {other:?} ({written:?})"),
                }
            }
        }
    }

    #[test]
    fn a_points_footer_is_not_a_blocks_footer() {
        let (mut d, _) = dataset();
        let file = d.manifest.points_files().next().unwrap();
        let f = file.footer.unwrap();
        let points_footer = d.fetch(&file.path, f.offset..f.end());
        // The blocks footer's recorded hash refuses it first; without one, its columns do.
        let err = blocks_footer(&d.manifest, &points_footer).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        d.manifest.blocks.as_mut().unwrap().footer_xxh3 = None;
        let err = blocks_footer(&d.manifest, &points_footer).unwrap_err();
        assert!(err.to_string().contains("columns"), "{err}");
    }
}
