//! A dataset in a local directory, read as a file server reads: positioned reads on the
//! serving thread, with no hand-off to a blocking pool per range.
//!
//! `object_store`'s local store runs each read on tokio's blocking pool, which costs two
//! thread switches per range; for the small ranges a browser asks of `/files` those
//! switches are most of the work. A read from the page cache takes microseconds, so
//! [`LocalRanges`] reads on the thread that serves the request, as nginx does by default:
//! a read that must wait for the disk holds up that thread's other connections meanwhile.

use std::fs::File;
use std::io::ErrorKind;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use pocaduck_edge_read::{RangeStore, StoreError};

/// A dataset's files in a local directory.
pub struct LocalRanges {
    root: PathBuf,
}

impl LocalRanges {
    /// The files below `dir` (which must exist).
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: std::fs::canonicalize(dir)?,
        })
    }

    /// The file at `path`, which must be plain and relative (its segments none of ``,
    /// `.`, `..`): paths come from the manifest, which is data.
    fn file(&self, path: &str) -> Result<(File, u64), StoreError> {
        let plain = !path.is_empty()
            && path
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['\\', '\0']));
        if !plain {
            return Err(other(path, "not a plain relative path".into()));
        }
        let file = File::open(self.root.join(path)).map_err(|e| io_error(path, e))?;
        let len = file.metadata().map_err(|e| io_error(path, e))?.len();
        Ok((file, len))
    }
}

fn other(path: &str, message: String) -> StoreError {
    StoreError::Other {
        path: path.into(),
        message,
    }
}

fn io_error(path: &str, e: std::io::Error) -> StoreError {
    match e.kind() {
        ErrorKind::NotFound => StoreError::NotFound(path.into()),
        _ => other(path, e.to_string()),
    }
}

/// `range` of `file` (of `len` bytes), which must lie within it.
fn read_at(path: &str, file: &File, len: u64, range: Range<u64>) -> Result<Bytes, StoreError> {
    if range.start > range.end || range.end > len {
        return Err(other(
            path,
            format!("bytes {range:?} are not within its {len} bytes"),
        ));
    }
    let mut bytes = vec![0; (range.end - range.start) as usize];
    file.read_exact_at(&mut bytes, range.start)
        .map_err(|e| io_error(path, e))?;
    Ok(bytes.into())
}

#[async_trait::async_trait]
impl RangeStore for LocalRanges {
    async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        let (file, len) = self.file(path)?;
        read_at(path, &file, len, 0..len)
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let (file, len) = self.file(path)?;
        read_at(path, &file, len, range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn reads_whole_files_and_ranges_within_them_and_nothing_outside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("points")).unwrap();
        std::fs::write(dir.path().join("points/a.parquet"), b"0123456789").unwrap();
        let store = LocalRanges::new(dir.path()).unwrap();

        assert_eq!(
            &block_on(store.get("points/a.parquet")).unwrap()[..],
            b"0123456789"
        );
        assert_eq!(
            &block_on(store.get_range("points/a.parquet", 2..5)).unwrap()[..],
            b"234"
        );
        assert!(block_on(store.get_range("points/a.parquet", 7..7))
            .unwrap()
            .is_empty());
        // Past the end: an error, never fewer bytes.
        let past = block_on(store.get_range("points/a.parquet", 8..11)).unwrap_err();
        assert!(
            past.to_string().contains("not within its 10 bytes"),
            "{past}"
        );
        assert!(matches!(
            block_on(store.get("points/b.parquet")),
            Err(StoreError::NotFound(p)) if p == "points/b.parquet"
        ));
        for escape in [
            "../outside",
            "points/../../outside",
            "/etc/passwd",
            "points//a.parquet",
            "./points/a.parquet",
            "",
        ] {
            let e = block_on(store.get(escape)).unwrap_err();
            assert!(
                e.to_string().contains("not a plain relative path"),
                "{escape:?}: {e}"
            );
        }
    }
}
