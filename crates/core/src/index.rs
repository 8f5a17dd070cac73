//! The label index: fixed-width little-endian entries, sorted by label, cut into pages of
//! about [`PAGE_BYTES`] that the manifest locates, so one bounded range request finds a label.
//!
//! Page layout: the magic `PCEIDX01`, `u32` dims `D`, `u32` entry count, then the entries.
//! An entry is `label u64, point_count u64, file u32, row_group u32, row_groups u32,
//! row_offset u64, bytes.offset u64, bytes.length u64, blocks_row u64, blocks_count u32`,
//! then `D` bbox minima and `D` bbox maxima as `i64`.

use crate::cloud::BBox;
use crate::error::{Error, Result};
use crate::manifest::ByteRange;

/// Magic bytes opening every index page.
pub const PAGE_MAGIC: &[u8; 8] = b"PCEIDX01";
/// Target size of a page in bytes.
pub const PAGE_BYTES: usize = 16 * 1024;
const HEADER_BYTES: usize = 16;
const FIXED_ENTRY_BYTES: usize = 64;

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
    /// Bounds of its points.
    pub bbox: BBox,
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
    FIXED_ENTRY_BYTES + 16 * dims
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
            for v in e.bbox.min.iter().chain(&e.bbox.max) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Decodes and checks a page: magic, sizes, and strictly ascending labels.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Cursor { bytes, at: 0 };
        if r.take(8)? != PAGE_MAGIC {
            return Err(Error::Index("bad magic (not a format-1 index page)".into()));
        }
        let dims = r.u32()? as usize;
        let count = r.u32()? as usize;
        if dims == 0 || dims > 64 {
            return Err(Error::Index(format!("{dims} dims")));
        }
        let expected = count
            .checked_mul(entry_bytes(dims))
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
            let mut bounds = Vec::with_capacity(2 * dims);
            for _ in 0..2 * dims {
                bounds.push(r.u64()? as i64);
            }
            let max = bounds.split_off(dims);
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

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = IndexPage::decode(&bytes);
        }

        #[test]
        fn decoding_a_damaged_page_never_panics(flip in 0usize..(16 + 2 * 112), bit in 0u8..8) {
            let mut bytes = IndexPage { dims: 3, entries: vec![entry(1), entry(2)] }.encode();
            bytes[flip] ^= 1 << bit;
            let _ = IndexPage::decode(&bytes);
        }
    }
}
