//! The label index: fixed-width little-endian entries, sorted by label, cut into pages of
//! about [`PAGE_BYTES`] that the manifest locates, so one bounded range request finds a label.
//!
//! Page layout: the magic `PCEIDX02`, `u32` dims `D`, `u32` entry count, then the entries.
//! An entry is `label u64, point_count u64, file u32, row_group u32, row_groups u32,
//! row_offset u64, bytes.offset u64, bytes.length u64, blocks_row u64, blocks_count u32`,
//! then the coarse level (`stride u64, point_count u64, file u32, row_group u32,
//! row_groups u32, row_offset u64, bytes.offset u64, bytes.length u64`, all 0 when the label
//! has none), then `D` bbox minima and `D` bbox maxima as `i64`. Format 1's pages
//! (`PCEIDX01`) have no coarse level and are still read.

use crate::cloud::BBox;
use crate::error::{Error, Result};
use crate::manifest::ByteRange;

/// Magic bytes opening every index page this crate writes.
pub const PAGE_MAGIC: &[u8; 8] = b"PCEIDX02";
/// Magic bytes of format 1's pages, whose entries have no coarse level.
const PAGE_MAGIC_V1: &[u8; 8] = b"PCEIDX01";
/// Target size of a page in bytes.
pub const PAGE_BYTES: usize = 16 * 1024;
const HEADER_BYTES: usize = 16;
const FIXED_ENTRY_BYTES_V1: usize = 64;
const COARSE_BYTES: usize = 52;

/// Where a label's points lie and what they span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The label.
    pub label: u64,
    /// Number of distinct points.
    pub point_count: u64,
    /// Index into the manifest's `files`.
    pub file: u32,
    /// First row group holding the label.
    pub row_group: u32,
    /// Number of row groups holding the label.
    pub row_groups: u32,
    /// Rows of other labels before this one in its first row group.
    pub row_offset: u64,
    /// Bytes of the row groups `row_group .. row_group + row_groups` in the file.
    pub bytes: ByteRange,
    /// First row of the label in the blocks file.
    pub blocks_row: u64,
    /// Number of its rows in the blocks file (0 when the source had no blocks).
    pub blocks_count: u32,
    /// Its coarse level, when it has one.
    pub coarse: Option<Coarse>,
    /// Bounds of its points.
    pub bbox: BBox,
}

/// A label's coarse level: every `stride`-th of its points (ranks 0, `stride`, 2·`stride`,
/// …), stored apart so that a level of detail of a big label reads a few of its points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coarse {
    /// Ranks between two points of the level (at least 2).
    pub stride: u64,
    /// Points in the level: ⌈label points / stride⌉.
    pub point_count: u64,
    /// Index into the manifest's `coarse` files.
    pub file: u32,
    /// First row group holding the level.
    pub row_group: u32,
    /// Number of row groups holding it.
    pub row_groups: u32,
    /// Rows of other labels before it in its first row group.
    pub row_offset: u64,
    /// Bytes of its row groups in the file.
    pub bytes: ByteRange,
}

/// A decoded index page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPage {
    /// Number of dims of every entry's bbox.
    pub dims: usize,
    /// Entries in ascending label order.
    pub entries: Vec<IndexEntry>,
}

/// Size in bytes of one entry with `dims` dims.
pub fn entry_bytes(dims: usize) -> usize {
    FIXED_ENTRY_BYTES_V1 + COARSE_BYTES + 16 * dims
}

/// Number of entries that fit a page of about [`PAGE_BYTES`].
pub fn entries_per_page(dims: usize) -> usize {
    ((PAGE_BYTES - HEADER_BYTES) / entry_bytes(dims)).max(1)
}

impl IndexPage {
    /// Encodes the page.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER_BYTES + self.entries.len() * entry_bytes(self.dims));
        out.extend_from_slice(PAGE_MAGIC);
        out.extend_from_slice(&(self.dims as u32).to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.label.to_le_bytes());
            out.extend_from_slice(&e.point_count.to_le_bytes());
            out.extend_from_slice(&e.file.to_le_bytes());
            out.extend_from_slice(&e.row_group.to_le_bytes());
            out.extend_from_slice(&e.row_groups.to_le_bytes());
            out.extend_from_slice(&e.row_offset.to_le_bytes());
            out.extend_from_slice(&e.bytes.offset.to_le_bytes());
            out.extend_from_slice(&e.bytes.length.to_le_bytes());
            out.extend_from_slice(&e.blocks_row.to_le_bytes());
            out.extend_from_slice(&e.blocks_count.to_le_bytes());
            // No coarse level: all zeros.
            let c = e.coarse.clone().unwrap_or_default();
            out.extend_from_slice(&c.stride.to_le_bytes());
            out.extend_from_slice(&c.point_count.to_le_bytes());
            out.extend_from_slice(&c.file.to_le_bytes());
            out.extend_from_slice(&c.row_group.to_le_bytes());
            out.extend_from_slice(&c.row_groups.to_le_bytes());
            out.extend_from_slice(&c.row_offset.to_le_bytes());
            out.extend_from_slice(&c.bytes.offset.to_le_bytes());
            out.extend_from_slice(&c.bytes.length.to_le_bytes());
            for v in e.bbox.min.iter().chain(&e.bbox.max) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Decodes and checks a page (format 2 or 1): magic, sizes, strictly ascending labels,
    /// and coarse levels that fit their labels.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Cursor { bytes, at: 0 };
        let has_coarse = match r.take(8)? {
            m if m == PAGE_MAGIC => true,
            m if m == PAGE_MAGIC_V1 => false,
            _ => return Err(Error::Index("bad magic (not an index page)".into())),
        };
        let dims = r.u32()? as usize;
        let count = r.u32()? as usize;
        if dims == 0 || dims > 64 {
            return Err(Error::Index(format!("{dims} dims")));
        }
        let entry_size = if has_coarse {
            entry_bytes(dims)
        } else {
            FIXED_ENTRY_BYTES_V1 + 16 * dims
        };
        let expected = count
            .checked_mul(entry_size)
            .and_then(|n| n.checked_add(HEADER_BYTES));
        if expected != Some(bytes.len()) {
            let expected = expected.map_or("more than addressable".to_string(), |n| n.to_string());
            return Err(Error::Index(format!(
                "{} bytes for {count} entries of {dims} dims, expected {expected}",
                bytes.len()
            )));
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let label = r.u64()?;
            let point_count = r.u64()?;
            let file = r.u32()?;
            let row_group = r.u32()?;
            let row_groups = r.u32()?;
            let row_offset = r.u64()?;
            let bytes = ByteRange {
                offset: r.u64()?,
                length: r.u64()?,
            };
            let blocks_row = r.u64()?;
            let blocks_count = r.u32()?;
            let coarse = if has_coarse {
                r.coarse(label, point_count)?
            } else {
                None
            };
            let mut bounds = Vec::with_capacity(2 * dims);
            for _ in 0..2 * dims {
                bounds.push(r.u64()? as i64);
            }
            let max = bounds.split_off(dims);
            let mut ranges = std::iter::once(&bytes).chain(coarse.as_ref().map(|c| &c.bytes));
            if ranges.any(|r| r.offset.checked_add(r.length).is_none()) {
                return Err(Error::Index(format!(
                    "label {label} names a byte range past 2^64"
                )));
            }
            if let Some(prev) = entries.last().map(|e: &IndexEntry| e.label) {
                if prev >= label {
                    return Err(Error::Index(format!(
                        "labels out of order: {label} after {prev}"
                    )));
                }
            }
            entries.push(IndexEntry {
                label,
                point_count,
                file,
                row_group,
                row_groups,
                row_offset,
                bytes,
                blocks_row,
                blocks_count,
                coarse,
                bbox: BBox { min: bounds, max },
            });
        }
        Ok(Self { dims, entries })
    }

    /// The entry of `label`, if the page holds it.
    pub fn find(&self, label: u64) -> Option<&IndexEntry> {
        self.entries
            .binary_search_by_key(&label, |e| e.label)
            .ok()
            .map(|i| &self.entries[i])
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| Error::Index(format!("truncated at byte {}", self.at)))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("took 4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("took 8 bytes"),
        ))
    }

    /// The coarse level of the label of `points` points (`None` when its stride is 0).
    fn coarse(&mut self, label: u64, points: u64) -> Result<Option<Coarse>> {
        let stride = self.u64()?;
        let c = Coarse {
            stride,
            point_count: self.u64()?,
            file: self.u32()?,
            row_group: self.u32()?,
            row_groups: self.u32()?,
            row_offset: self.u64()?,
            bytes: ByteRange {
                offset: self.u64()?,
                length: self.u64()?,
            },
        };
        if stride == 0 {
            return Ok(None);
        }
        if stride < 2 || c.point_count != points.div_ceil(stride) {
            return Err(Error::Index(format!(
                "label {label} has {points} points and a coarse level of {} points at stride {stride}",
                c.point_count
            )));
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(label: u64) -> IndexEntry {
        IndexEntry {
            label,
            point_count: 12,
            file: 1,
            row_group: 2,
            row_groups: 3,
            row_offset: 4,
            bytes: ByteRange {
                offset: 5,
                length: 6,
            },
            blocks_row: 7,
            blocks_count: 8,
            coarse: (label % 2 == 0).then_some(Coarse {
                stride: 4,
                point_count: 3,
                file: 9,
                row_group: 10,
                row_groups: 11,
                row_offset: 12,
                bytes: ByteRange {
                    offset: 13,
                    length: 14,
                },
            }),
            bbox: BBox {
                min: vec![-1, -2, -3],
                max: vec![i64::MAX, 2, 3],
            },
        }
    }

    #[test]
    fn round_trips() {
        let page = IndexPage {
            dims: 3,
            entries: vec![entry(1), entry(u64::MAX - 1), entry(u64::MAX)],
        };
        let bytes = page.encode();
        assert_eq!(bytes.len(), 16 + 3 * entry_bytes(3));
        let back = IndexPage::decode(&bytes).unwrap();
        assert_eq!(back, page);
        assert_eq!(back.find(u64::MAX - 1).unwrap().label, u64::MAX - 1);
        assert!(back.find(2).is_none());
    }

    #[test]
    fn refuses_bad_pages() {
        let good = IndexPage {
            dims: 3,
            entries: vec![entry(1), entry(2)],
        }
        .encode();
        assert!(IndexPage::decode(&good[..good.len() - 1]).is_err());
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(IndexPage::decode(&magic).is_err());
        let unordered = IndexPage {
            dims: 3,
            entries: vec![entry(2), entry(1)],
        }
        .encode();
        assert!(IndexPage::decode(&unordered).is_err());
    }

    /// `page` as format 1 wrote it: its entries without their coarse levels.
    fn format_1(page: &IndexPage) -> Vec<u8> {
        let bytes = page.encode();
        let mut out = PAGE_MAGIC_V1.to_vec();
        out.extend_from_slice(&bytes[8..HEADER_BYTES]);
        for entry in bytes[HEADER_BYTES..].chunks(entry_bytes(page.dims)) {
            out.extend_from_slice(&entry[..FIXED_ENTRY_BYTES_V1]);
            out.extend_from_slice(&entry[FIXED_ENTRY_BYTES_V1 + COARSE_BYTES..]);
        }
        out
    }

    #[test]
    fn reads_format_1_pages_as_labels_without_coarse_levels() {
        let page = IndexPage {
            dims: 3,
            entries: vec![entry(1), entry(2), entry(3)],
        };
        let back = IndexPage::decode(&format_1(&page)).unwrap();
        let mut expected = page.clone();
        for e in &mut expected.entries {
            e.coarse = None;
        }
        assert_eq!(back, expected);
    }

    #[test]
    fn refuses_a_coarse_level_that_does_not_fit_its_label() {
        for (stride, points) in [(1, 12), (4, 4), (4, 2)] {
            let mut e = entry(2);
            let c = e.coarse.as_mut().unwrap();
            (c.stride, c.point_count) = (stride, points);
            let bytes = IndexPage {
                dims: 3,
                entries: vec![e],
            }
            .encode();
            let err = IndexPage::decode(&bytes).unwrap_err().to_string();
            assert!(err.contains("coarse level"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = IndexPage::decode(&bytes);
        }

        #[test]
        fn decoding_a_damaged_page_never_panics(flip in 0usize..(16 + 2 * 164), bit in 0u8..8) {
            let mut bytes = IndexPage { dims: 3, entries: vec![entry(1), entry(2)] }.encode();
            bytes[flip] ^= 1 << bit;
            let _ = IndexPage::decode(&bytes);
        }
    }
}
