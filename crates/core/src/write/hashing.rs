//! [`HashingWriter`]: what the writer's files pass through, so their size, ETag, Parquet
//! footer range and the hashes of their parts are known without reading them back.

use std::io::Write;
use std::ops::Range;

use xxhash_rust::xxh3::Xxh3;

use super::write_error;
use crate::error::Result;
use crate::integrity::{xxh3, xxh3_hex};
use crate::manifest::{ByteRange, DataFile};

/// Counts, hashes and remembers the tail of what passes through, so the writer learns a
/// file's size, ETag and Parquet footer range without reading it back. A segmented writer
/// also hashes each segment (the bytes between two [`SegmentedWrite::end_segment`] calls)
/// and the file's Parquet footer, holding one segment's bytes at a time.
pub(super) struct HashingWriter {
    inner: Box<dyn Write + Send>,
    hash: Xxh3,
    pub(super) written: u64,
    tail: [u8; 8],
    /// The bytes since the last segment's end, when segmented.
    segment: Option<Vec<u8>>,
    /// The hashes of the segments ended so far, by byte range.
    segments: Vec<(Range<u64>, u64)>,
}

/// A file that the Parquet writer tells where its row groups end.
pub(super) trait SegmentedWrite: Write {
    /// Marks the bytes written since the last mark as a segment (a row group).
    fn end_segment(&mut self) {}
}

impl HashingWriter {
    pub(super) fn new(inner: Box<dyn Write + Send>) -> Self {
        Self {
            inner,
            hash: Xxh3::new(),
            written: 0,
            tail: [0; 8],
            segment: None,
            segments: Vec::new(),
        }
    }

    /// A writer that hashes each segment and the Parquet footer too.
    pub(super) fn segmented(inner: Box<dyn Write + Send>) -> Self {
        Self {
            segment: Some(Vec::new()),
            ..Self::new(inner)
        }
    }

    /// The hash of the segment that is exactly `range`, if one is.
    pub(super) fn segment_hash(&self, range: Range<u64>) -> Option<u64> {
        self.segments
            .iter()
            .find(|(r, _)| *r == range)
            .map(|(_, hash)| *hash)
    }

    /// Flushes and describes the file; for Parquet files (`rows > 0` or a `PAR1` tail) the
    /// footer range comes from the length stored before the closing magic, and a segmented
    /// writer hashes the footer's bytes.
    pub(super) fn finish(mut self, path: &str, rows: u64) -> Result<DataFile> {
        self.inner.flush().map_err(|e| write_error(path, e))?;
        let footer = (&self.tail[4..] == b"PAR1").then(|| {
            let length = u32::from_le_bytes(self.tail[..4].try_into().expect("4 bytes")) as u64 + 8;
            ByteRange {
                offset: self.written - length,
                length,
            }
        });
        let footer_xxh3 = match (&self.segment, footer) {
            (Some(segment), Some(f)) if segment.len() as u64 >= f.length => {
                Some(xxh3_hex(&segment[segment.len() - f.length as usize..]))
            }
            _ => None,
        };
        Ok(DataFile {
            path: path.into(),
            size: self.written,
            etag: format!("{:016x}", self.hash.digest()),
            rows,
            footer,
            footer_xxh3,
        })
    }
}

impl SegmentedWrite for HashingWriter {
    fn end_segment(&mut self) {
        if let Some(segment) = &mut self.segment {
            let start = self.written - segment.len() as u64;
            self.segments.push((start..self.written, xxh3(segment)));
            segment.clear();
        }
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let buf = &buf[..n];
        self.hash.update(buf);
        self.written += n as u64;
        if let Some(segment) = &mut self.segment {
            segment.extend_from_slice(buf);
        }
        if n >= 8 {
            self.tail.copy_from_slice(&buf[n - 8..]);
        } else {
            self.tail.rotate_left(n);
            self.tail[8 - n..].copy_from_slice(buf);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
