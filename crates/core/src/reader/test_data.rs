//! Small datasets written into memory by the core writer, and a host that reads them.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::metadata::ParquetMetaData;

use crate::index::{IndexEntry, IndexPage};
use crate::manifest::Manifest;
use crate::reader::labels::{decode_page, lookup, Lookup};
use crate::reader::points::points_footer;
use crate::write::{BlockCount, DatasetWriter, MemorySink, WriterOptions};
use crate::PointCloud;

/// A dataset in memory, with every footer and index page loaded through the reader's checks.
pub(super) struct Dataset {
    files: HashMap<String, Bytes>,
    pub manifest: Manifest,
    footers: Vec<Arc<ParquetMetaData>>,
    pages: Vec<IndexPage>,
}

impl Dataset {
    /// Writes `labels` (ascending) of `x, y, z` points.
    pub(super) fn write(labels: &[(u64, PointCloud)], options: WriterOptions) -> Self {
        let labels: Vec<_> = labels
            .iter()
            .map(|(label, points)| (*label, points.clone(), Vec::new()))
            .collect();
        Self::write_with_blocks(&labels, options)
    }

    /// Writes `labels` (ascending) of `x, y, z` points, each with the blocks it came from.
    pub(super) fn write_with_blocks(
        labels: &[(u64, PointCloud, Vec<BlockCount>)],
        options: WriterOptions,
    ) -> Self {
        let sink = MemorySink::default();
        let dims = ["x", "y", "z"].map(String::from).to_vec();
        let mut writer = DatasetWriter::new(sink.clone(), dims, options).unwrap();
        for (label, points, blocks) in labels {
            writer.push_label(*label, points.clone(), blocks).unwrap();
        }
        let manifest = writer.finish().unwrap();
        let files: HashMap<String, Bytes> = sink.files();
        let mut d = Self {
            files,
            manifest,
            footers: Vec::new(),
            pages: Vec::new(),
        };
        for (i, file) in d.manifest.points_files().enumerate() {
            let f = file.footer.unwrap();
            let bytes = d.fetch(&file.path, f.offset..f.end());
            d.footers
                .push(points_footer(&d.manifest, i as u32, &bytes).unwrap());
        }
        for (i, page) in d.manifest.label_index.pages.iter().enumerate() {
            let bytes = d.fetch(
                &d.manifest.label_index.file.path,
                page.range.offset..page.range.end(),
            );
            d.pages.push(decode_page(&d.manifest, i, &bytes).unwrap());
        }
        d
    }

    /// Bytes `range` of the file at `path`.
    pub(super) fn fetch(&self, path: &str, range: std::ops::Range<u64>) -> Bytes {
        self.files[path].slice(range.start as usize..range.end as usize)
    }

    /// The footer of points file `file`.
    pub(super) fn footer(&self, file: u32) -> Option<&ParquetMetaData> {
        self.footers.get(file as usize).map(|m| &**m)
    }

    /// The index entry of `label`.
    pub(super) fn entry(&self, label: u64) -> &IndexEntry {
        match lookup(&self.manifest, label, |i| self.pages.get(i)) {
            Lookup::Found(e) => e,
            other => panic!("label {label}: {other:?}"),
        }
    }
}

/// `n` pseudo-random points with duplicates, within `spread` of `offset`.
pub(super) fn cloud(seed: u64, n: usize, spread: i64, offset: i64) -> PointCloud {
    let mut state = seed.wrapping_mul(6364136223846793005) ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as i64).rem_euclid(spread) + offset
    };
    let values = (0..n * 3).map(|_| next()).collect();
    PointCloud::new(3, values).unwrap()
}
