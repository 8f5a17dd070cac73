//! A [`FileSink`] that keeps the files in memory: datasets for tests, and for hosts that
//! upload what they write.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::FileSink;

/// Files written into memory, by path. Clones share the files: keep one to read them back
/// after the writer that owns another has finished.
#[derive(Debug, Clone, Default)]
pub struct MemorySink(Arc<Mutex<HashMap<String, Vec<u8>>>>);

impl MemorySink {
    /// The file at `path`, if one was written.
    pub fn file(&self, path: &str) -> Option<Bytes> {
        let files = self.0.lock().expect("memory sink lock");
        files.get(path).map(|bytes| Bytes::from(bytes.clone()))
    }

    /// Every file written, by path.
    pub fn files(&self) -> HashMap<String, Bytes> {
        let files = self.0.lock().expect("memory sink lock");
        files
            .iter()
            .map(|(path, bytes)| (path.clone(), Bytes::from(bytes.clone())))
            .collect()
    }
}

/// One file being written into a [`MemorySink`].
struct MemoryFile(String, Arc<Mutex<HashMap<String, Vec<u8>>>>);

impl Write for MemoryFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut files = self.1.lock().expect("memory sink lock");
        files
            .entry(self.0.clone())
            .or_default()
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl FileSink for MemorySink {
    fn create(&mut self, path: &str) -> std::io::Result<Box<dyn Write + Send>> {
        let mut files = self.0.lock().expect("memory sink lock");
        files.insert(path.into(), Vec::new());
        Ok(Box::new(MemoryFile(path.into(), self.0.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_kept_by_path_and_created_anew() {
        let mut sink = MemorySink::default();
        let reader = sink.clone();
        let mut a = sink.create("a/x.bin").unwrap();
        a.write_all(b"12").unwrap();
        a.write_all(b"3").unwrap();
        sink.create("b").unwrap();
        assert_eq!(reader.file("a/x.bin").unwrap(), "123");
        assert_eq!(reader.file("b").unwrap(), "");
        assert!(reader.file("c").is_none());
        sink.create("a/x.bin").unwrap();
        assert_eq!(reader.files().len(), 2);
        assert_eq!(
            reader.file("a/x.bin").unwrap(),
            "",
            "a file created again starts empty"
        );
    }
}
