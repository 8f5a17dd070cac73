//! Range planning: from a label's index entry and its file's footer to the byte ranges to
//! fetch and the rows to decode from them. Pure functions; hosts do the fetching.

use std::ops::Range;

use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};

use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::manifest::ByteRange;
use crate::read::{column_range, RowSpan};

/// Gap below which two ranges of one file are fetched as one.
pub const COALESCE_GAP: u64 = 64 * 1024;

/// One piece of a label to fetch and decode: a byte range of a points file holding whole
/// row groups, and the rows of the label inside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Index into the manifest's `files`.
    pub file: u32,
    /// Bytes to fetch.
    pub bytes: ByteRange,
    /// Rows to decode from them.
    pub rows: RowSpan,
}

/// Plans the reads of a label's points as chunks of whole row groups of at most about
/// `max_chunk_bytes` each (a row group larger than that is a chunk of its own), so a host
/// can stream a label of any size with bounded memory. Every chunk lies inside the entry's
/// `bytes`, so a host may fetch those before it has the file's footer.
pub fn plan_label(
    entry: &IndexEntry,
    meta: &ParquetMetaData,
    max_chunk_bytes: u64,
) -> Result<Vec<Chunk>> {
    let wanted = entry.point_count;
    let first = entry.row_group as usize;
    let groups = first..first.saturating_add(entry.row_groups as usize);
    if groups.end > meta.num_row_groups() {
        return Err(Error::Index(format!(
            "label {} names row groups {groups:?}, the file has {}",
            entry.label,
            meta.num_row_groups()
        )));
    }
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut skip = entry.row_offset;
    let mut remaining = wanted;
    for g in groups {
        if remaining == 0 {
            break;
        }
        let group = meta.row_group(g);
        let rows = u64::try_from(group.num_rows()).unwrap_or(0);
        if skip >= rows {
            return Err(Error::Index(format!(
                "label {} starts past the end of row group {g}",
                entry.label
            )));
        }
        let take = (rows - skip).min(remaining);
        let bytes = group_range(group)?;
        if bytes.offset < entry.bytes.offset || bytes.end() > entry.bytes.end() {
            return Err(Error::Index(format!(
                "label {}: row group {g} (bytes {}..{}) lies outside the bytes its index \
                 entry names ({}..{})",
                entry.label,
                bytes.offset,
                bytes.end(),
                entry.bytes.offset,
                entry.bytes.end()
            )));
        }
        match chunks.last_mut() {
            Some(c)
                if c.bytes.end() == bytes.offset
                    && c.bytes.length.saturating_add(bytes.length) <= max_chunk_bytes =>
            {
                c.bytes.length += bytes.length;
                c.rows.row_groups.end = g + 1;
                c.rows.take += take;
            }
            _ => chunks.push(Chunk {
                file: entry.file,
                bytes,
                rows: RowSpan {
                    row_groups: g..g + 1,
                    skip,
                    take,
                },
            }),
        }
        remaining -= take;
        skip = 0;
    }
    if remaining != 0 {
        return Err(Error::Index(format!(
            "label {} has {} points but its row groups hold fewer",
            entry.label, entry.point_count
        )));
    }
    Ok(chunks)
}

/// Plans the read of a label's rows in the blocks file: the bytes of the row groups that
/// hold rows `entry.blocks_row ..+ entry.blocks_count`, and those rows within them. `None`
/// when the label has no blocks.
pub fn plan_blocks(
    entry: &IndexEntry,
    meta: &ParquetMetaData,
) -> Result<Option<(ByteRange, RowSpan)>> {
    if entry.blocks_count == 0 {
        return Ok(None);
    }
    let start = entry.blocks_row;
    let end = start
        .checked_add(u64::from(entry.blocks_count))
        .ok_or_else(|| {
            Error::Index(format!(
                "label {}: blocks rows {start} + {} overflow",
                entry.label, entry.blocks_count
            ))
        })?;
    let mut first_row = 0u64;
    let mut groups = Vec::new();
    for g in 0..meta.num_row_groups() {
        let rows = u64::try_from(meta.row_group(g).num_rows()).unwrap_or(0);
        if first_row < end && start < first_row + rows {
            groups.push((g, first_row));
        }
        first_row = first_row.saturating_add(rows);
    }
    let (Some(&(g0, row0)), Some(&(g1, _))) = (groups.first(), groups.last()) else {
        return Err(Error::Index(format!(
            "label {}: blocks rows {start}..{end} are past the blocks file",
            entry.label
        )));
    };
    let (r0, r1) = (
        group_range(meta.row_group(g0))?,
        group_range(meta.row_group(g1))?,
    );
    let bytes = ByteRange {
        offset: r0.offset,
        length: r1.end() - r0.offset,
    };
    let rows = RowSpan {
        row_groups: g0..g1 + 1,
        skip: start - row0,
        take: end - start,
    };
    Ok(Some((bytes, rows)))
}

/// Bytes of a row group: from its first column chunk's start to its last one's end; an
/// error when the footer gives a column chunk a negative or overflowing range.
pub fn group_range(group: &RowGroupMetaData) -> Result<ByteRange> {
    let (mut start, mut end) = (u64::MAX, 0u64);
    for c in group.columns() {
        let range = column_range(c).ok_or_else(|| {
            Error::Index(format!(
                "a column chunk of row group {} has a negative or overflowing byte range",
                group.ordinal().unwrap_or(-1)
            ))
        })?;
        start = start.min(range.offset);
        end = end.max(range.end());
    }
    Ok(ByteRange {
        offset: start,
        length: end.saturating_sub(start),
    })
}

/// Merges sorted-or-not ranges whose gap is at most `gap` into the fewest ranges covering
/// them all (as object_store's `merge_ranges`).
pub fn merge_ranges(ranges: &[Range<u64>], gap: u64) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    sorted.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(gap) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_close_ranges_only() {
        assert_eq!(
            merge_ranges(&[0..10, 12..20, 100..110], 2),
            vec![0..20, 100..110]
        );
        assert_eq!(
            merge_ranges(&[100..110, 0..10, 5..8], 0),
            vec![0..10, 100..110]
        );
        assert_eq!(merge_ranges(&[3..3, 7..7], 10), Vec::<Range<u64>>::new());
    }

    proptest! {
        #[test]
        fn merged_ranges_cover_every_input_and_are_disjoint(
            input in proptest::collection::vec((0u64..1000, 0u64..50), 0..30), gap in 0u64..20
        ) {
            let ranges: Vec<Range<u64>> = input.iter().map(|(s, l)| *s..s + l).collect();
            let merged = merge_ranges(&ranges, gap);
            for r in ranges.iter().filter(|r| r.start < r.end) {
                prop_assert!(merged.iter().any(|m| m.start <= r.start && r.end <= m.end));
            }
            for pair in merged.windows(2) {
                prop_assert!(pair[0].end + gap < pair[1].start);
            }
        }
    }
}
