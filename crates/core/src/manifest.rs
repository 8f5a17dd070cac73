//! `manifest.json`: what a dataset holds and where every part of it lies.

use serde::{Deserialize, Serialize};

use crate::cloud::BBox;
use crate::error::{Error, Result};
use crate::index::IndexEntry;

/// The `format` value of every edge-layout manifest.
pub const FORMAT_NAME: &str = "pocaduck-edge";
/// The layout version this crate writes. It reads this one and format 1, which is format 2
/// without coarse levels.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest layout version this crate reads.
pub const OLDEST_VERSION: u32 = 1;
/// Order of points within a label: lexicographic by row (PoCADuck's `get_points` order),
/// which is also the order that compresses best.
pub const POINT_ORDER: &str = "xyz";

/// The manifest of an edge-layout dataset (format 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] or, for older datasets, [`OLDEST_VERSION`].
    pub version: u32,
    /// Names of the dims, in column order; their count is `D`.
    pub dims: Vec<String>,
    /// Voxel size in nanometres per dim, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voxel_size_nm: Option<Vec<f64>>,
    /// Number of labels.
    pub label_count: u64,
    /// Number of distinct points over all labels.
    pub point_count: u64,
    /// Bounds of all points, absent when the dataset is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BBox>,
    /// Order of points within a label ([`POINT_ORDER`]).
    pub point_order: String,
    /// Parquet files holding the points (`label`, then one column per dim).
    pub files: Vec<DataFile>,
    /// Parquet files holding the coarse levels of big labels (same columns), numbered
    /// after `files` where a file is named by number (see [`Manifest::file`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coarse: Vec<DataFile>,
    /// The paged label index.
    pub label_index: LabelIndex,
    /// The Parquet file of PoCADuck block ids per label, when the source had blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<DataFile>,
    /// Free text: where the data comes from, its licence and citation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
}

/// A file of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path relative to the dataset folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Content hash (xxh3-64, hex): the file's strong ETag.
    pub etag: String,
    /// Rows in the file (Parquet files only).
    #[serde(default)]
    pub rows: u64,
    /// Byte range of the Parquet footer (metadata + length + magic), so a reader can fetch
    /// it with one bounded range request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<ByteRange>,
    /// xxh3-64 (hex) of the bytes of `footer`, when the writer recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer_xxh3: Option<String>,
}

/// A byte range `[offset, offset + length)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Number of bytes.
    pub length: u64,
}

impl ByteRange {
    /// One past the last byte (saturating: manifests and index pages whose ranges overflow
    /// are refused when read).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }

    /// Whether the range lies inside a file of `size` bytes.
    pub fn within(&self, size: u64) -> bool {
        self.offset
            .checked_add(self.length)
            .is_some_and(|end| end <= size)
    }
}

/// The label index: one file of pages, each page sorted by label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelIndex {
    /// The index file.
    pub file: DataFile,
    /// Its pages in label order.
    pub pages: Vec<PageRef>,
}

/// Where one index page lies and which labels it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRef {
    /// Its first label (decimal string: labels exceed 2^53).
    #[serde(with = "label_string")]
    pub first_label: u64,
    /// Its last label.
    #[serde(with = "label_string")]
    pub last_label: u64,
    /// Number of labels in the page.
    pub count: u32,
    /// Its bytes in the index file.
    pub range: ByteRange,
    /// xxh3-64 (hex) of those bytes, when the writer recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xxh3: Option<String>,
}

/// Serialises a `u64` label as a decimal string.
pub mod label_string {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the label as a string.
    pub fn serialize<S: Serializer>(label: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&label.to_string())
    }

    /// Reads a label from a decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        crate::label::parse_label(&text).map_err(serde::de::Error::custom)
    }
}

impl Manifest {
    /// Parses and checks a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Error::Manifest(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serialises")
    }

    /// Number of dims (`D`).
    pub fn dims(&self) -> usize {
        self.dims.len()
    }

    /// Checks what the reader relies on: format, version, dims and page order.
    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT_NAME {
            return Err(Error::Manifest(format!(
                "format is {:?}, expected {FORMAT_NAME:?}",
                self.format
            )));
        }
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&self.version) {
            return Err(Error::Manifest(format!(
                "version {} is not supported (this reader reads {OLDEST_VERSION} to {FORMAT_VERSION})",
                self.version
            )));
        }
        if self.point_order != POINT_ORDER {
            return Err(Error::Manifest(format!(
                "point order {:?} is not supported",
                self.point_order
            )));
        }
        if self.dims.is_empty() {
            return Err(Error::Manifest("no dims".into()));
        }
        for pair in self.label_index.pages.windows(2) {
            if pair[0].last_label >= pair[1].first_label {
                return Err(Error::Manifest(
                    "label index pages are not in label order".into(),
                ));
            }
        }
        for file in self.all_files() {
            check_file(file)?;
        }
        let index = &self.label_index.file;
        if let Some(page) = self
            .label_index
            .pages
            .iter()
            .find(|p| !p.range.within(index.size))
        {
            return Err(Error::Manifest(format!(
                "label index page {}..={} lies outside {}",
                page.first_label, page.last_label, index.path
            )));
        }
        for file in self.points_files().chain(self.blocks.iter()) {
            let footer = file
                .footer
                .ok_or_else(|| Error::Manifest(format!("{} has no footer range", file.path)))?;
            if footer.offset.checked_add(footer.length) != Some(file.size) || footer.length < 8 {
                return Err(Error::Manifest(format!(
                    "{} has a footer range outside the file",
                    file.path
                )));
            }
        }
        Ok(())
    }

    /// The page that would hold `label`, if any page's range covers it.
    pub fn page_for(&self, label: u64) -> Option<(usize, &PageRef)> {
        let i = self
            .label_index
            .pages
            .partition_point(|p| p.last_label < label);
        self.label_index
            .pages
            .get(i)
            .filter(|p| p.first_label <= label)
            .map(|p| (i, p))
    }

    /// All files of the dataset (points, coarse levels, index, blocks) but the manifest
    /// itself.
    pub fn all_files(&self) -> impl Iterator<Item = &DataFile> {
        self.points_files()
            .chain(std::iter::once(&self.label_index.file))
            .chain(self.blocks.iter())
    }

    /// The Parquet files of points in number order: `files`, then `coarse`.
    pub fn points_files(&self) -> impl Iterator<Item = &DataFile> {
        self.files.iter().chain(&self.coarse)
    }

    /// Points file number `file` (see [`Manifest::points_files`]).
    pub fn file(&self, file: u32) -> Option<&DataFile> {
        let i = file as usize;
        match i.checked_sub(self.files.len()) {
            None => self.files.get(i),
            Some(c) => self.coarse.get(c),
        }
    }

    /// The entry to read for `limit` points of `entry`'s label: its coarse level, as an
    /// entry of its own, when it has one of at least `limit` points; else `entry` itself.
    pub fn entry_for_limit(&self, entry: &IndexEntry, limit: Option<u64>) -> IndexEntry {
        match (&entry.coarse, limit) {
            (Some(c), Some(limit)) if limit <= c.point_count => IndexEntry {
                point_count: c.point_count,
                file: self.files.len() as u32 + c.file,
                row_group: c.row_group,
                row_groups: c.row_groups,
                row_offset: c.row_offset,
                bytes: c.bytes,
                coarse: None,
                ..entry.clone()
            },
            _ => entry.clone(),
        }
    }
}

/// Checks what the readers and the API take from a file's entry as it is: a relative path
/// inside the dataset (no `..`, `.` or empty segment, no backslash), and an ETag that is a
/// valid HTTP entity tag (printable ASCII without `"`), as the API sends it in headers.
fn check_file(file: &DataFile) -> Result<()> {
    let path = &file.path;
    if path.is_empty()
        || path.contains('\\')
        || path
            .split('/')
            .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err(Error::Manifest(format!(
            "file path {path:?} is not a relative path inside the dataset"
        )));
    }
    if !file
        .etag
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
    {
        return Err(Error::Manifest(format!(
            "{path} has the ETag {:?}, not printable ASCII without quotes",
            file.etag
        )));
    }
    Ok(())
}
