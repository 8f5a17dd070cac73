//! [`HashingWriter`]: what the writer's files pass through, so their size, ETag and
//! Parquet footer range are known without reading them back.

use std::io::Write;

use xxhash_rust::xxh3::Xxh3;

use super::write_error;
use crate::error::Result;
use crate::manifest::{ByteRange, DataFile};

/// Counts, hashes and remembers the tail of what passes through, so the writer learns a
/// file's size, ETag and Parquet footer range without reading it back.
pub(super) struct HashingWriter {
    inner: Box<dyn Write + Send>,
    hash: Xxh3,
    pub(super) written: u64,
    tail: [u8; 8],
}

impl HashingWriter {
    pub(super) fn new(inner: Box<dyn Write + Send>) -> Self {
        Self {
            inner,
            hash: Xxh3::new(),
            written: 0,
            tail: [0; 8],
        }
    }

    /// Flushes and describes the file; for Parquet files (`rows > 0` or a `PAR1` tail) the
    /// footer range comes from the length stored before the closing magic.
    pub(super) fn finish(mut self, path: &str, rows: u64) -> Result<DataFile> {
        self.inner.flush().map_err(|e| write_error(path, e))?;
        let footer = (&self.tail[4..] == b"PAR1").then(|| {
            let length = u32::from_le_bytes(self.tail[..4].try_into().expect("4 bytes")) as u64 + 8;
            ByteRange {
                offset: self.written - length,
                length,
            }
        });
        Ok(DataFile {
            path: path.into(),
            size: self.written,
            etag: format!("{:016x}", self.hash.digest()),
            rows,
            footer,
        })
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let buf = &buf[..n];
        self.hash.update(buf);
        self.written += n as u64;
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
