//! The label index (`labels.idx`), written page by page as entries arrive.

use std::io::Write;

use super::hashing::HashingWriter;
use super::{write_error, FileSink};
use crate::error::Result;
use crate::index::{entries_per_page, IndexEntry, IndexPage};
use crate::integrity::xxh3_hex;
use crate::manifest::{ByteRange, LabelIndex, PageRef};

/// Writes the label index page by page as entries arrive.
pub(super) struct IndexWriter {
    path: &'static str,
    out: HashingWriter,
    dims: usize,
    page: Vec<IndexEntry>,
    pages: Vec<PageRef>,
}

impl IndexWriter {
    const PATH: &'static str = "labels.idx";

    pub(super) fn new(sink: &mut dyn FileSink, dims: usize) -> Result<Self> {
        let out = HashingWriter::new(
            sink.create(Self::PATH)
                .map_err(|e| write_error(Self::PATH, e))?,
        );
        Ok(Self {
            path: Self::PATH,
            out,
            dims,
            page: Vec::new(),
            pages: Vec::new(),
        })
    }

    pub(super) fn push(&mut self, entry: IndexEntry) -> Result<()> {
        self.page.push(entry);
        if self.page.len() == entries_per_page(self.dims) {
            self.flush_page()?;
        }
        Ok(())
    }

    fn flush_page(&mut self) -> Result<()> {
        let (Some(first), Some(last)) = (self.page.first(), self.page.last()) else {
            return Ok(());
        };
        let (first_label, last_label, count) = (first.label, last.label, self.page.len() as u32);
        let bytes = IndexPage {
            dims: self.dims,
            entries: std::mem::take(&mut self.page),
        }
        .encode();
        let offset = self.out.written;
        self.out
            .write_all(&bytes)
            .map_err(|e| write_error(self.path, e))?;
        self.pages.push(PageRef {
            first_label,
            last_label,
            count,
            range: ByteRange {
                offset,
                length: bytes.len() as u64,
            },
            xxh3: Some(xxh3_hex(&bytes)),
        });
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<LabelIndex> {
        self.flush_page()?;
        let file = self.out.finish(self.path, 0)?;
        Ok(LabelIndex {
            file,
            pages: self.pages,
        })
    }
}
