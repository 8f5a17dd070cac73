//! One served dataset: its manifest and Parquet footers (loaded and checked once, retried
//! after a failure), its cached index pages, and label reads through the range store, every
//! byte checked against the hashes the layout records for it. A read that fails because the
//! store holds another version of the dataset than the one loaded makes the next request
//! load it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::try_join_all;
use futures::StreamExt;
use parquet::file::metadata::ParquetMetaData;
use pocaduck_edge_core::cloud::Column;
use pocaduck_edge_core::index::{IndexEntry, IndexPage};
use pocaduck_edge_core::integrity::{self, xxh3_hex};
use pocaduck_edge_core::manifest::DataFile;
use pocaduck_edge_core::plan::Chunk;
use pocaduck_edge_core::read::{decode_point_columns, decode_points, RowSpan, SparseFile};
use pocaduck_edge_core::reader::{
    blocks_footer, decode_page, fetched_files, merge_by_file, points_footer, BlocksPlan,
    LabelPaging, LabelsPage, NextAfter,
};
use pocaduck_edge_core::{Manifest, PointCloud};
use xxhash_rust::xxh3::Xxh3;

use crate::error::ReadError;
use crate::store::{Clock, RangeStore, StoreError};
use crate::timing::Timing;
use crate::untrusted::decode_untrusted;

/// The manifest's path in the dataset.
const MANIFEST: &str = "manifest.json";
/// Milliseconds before a dataset that failed to load is tried again.
const RETRY_MS: f64 = 5_000.0;
/// Milliseconds a loaded dataset is served before its manifest is read again, to load the
/// dataset anew if it changed.
const REVALIDATE_MS: f64 = 60_000.0;
/// Index pages kept in memory per dataset (16 KB each).
const PAGE_CACHE: usize = 4096;

/// A dataset as the service sees it.
pub struct Dataset {
    /// Its name in URLs.
    pub name: String,
    store: Arc<dyn RangeStore>,
    state: Mutex<State>,
}

enum State {
    Unloaded,
    /// Loaded, its manifest last found unchanged at `checked_ms`.
    Ready {
        loaded: Arc<Loaded>,
        checked_ms: f64,
    },
    Failed {
        reason: String,
        at_ms: f64,
    },
}

/// A dataset whose manifest and footers are loaded and checked.
pub struct Loaded {
    /// The manifest.
    pub manifest: Manifest,
    /// Its bytes, served at `files/manifest.json`.
    pub manifest_bytes: Bytes,
    /// Its ETag.
    pub manifest_etag: String,
    footers: Vec<Arc<ParquetMetaData>>,
    blocks_footer: Option<Arc<ParquetMetaData>>,
    pages: Mutex<HashMap<usize, Arc<IndexPage>>>,
}

/// What the label info route answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelInfo {
    /// The index entry.
    pub entry: IndexEntry,
    /// PoCADuck block ids and their point counts.
    pub blocks: Vec<(String, u64)>,
}

impl Loaded {
    /// The footer of points file `file` (numbered as [`Manifest::file`] numbers them).
    pub fn footer(&self, file: u32) -> Option<&Arc<ParquetMetaData>> {
        self.footers.get(file as usize)
    }
}

/// A file's bytes as they are fetched, step by step.
#[cfg(not(target_arch = "wasm32"))]
pub type FileStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, ReadError>> + Send + 'static>>;
/// A file's bytes as they are fetched, step by step.
#[cfg(target_arch = "wasm32")]
pub type FileStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, ReadError>> + 'static>>;

impl Dataset {
    /// A dataset read through `store`.
    pub fn new(name: impl Into<String>, store: Arc<dyn RangeStore>) -> Self {
        Self {
            name: name.into(),
            store,
            state: Mutex::new(State::Unloaded),
        }
    }

    /// The loaded dataset, loading it (manifest, then every footer) on first use; a dataset
    /// that cannot load is unavailable, with the reason, and is tried again after a few
    /// seconds. Once a minute, a request reads the manifest again (the others meanwhile
    /// serve the dataset as loaded): a changed or deleted manifest loads the dataset anew.
    pub async fn loaded(&self, clock: &dyn Clock) -> Result<Arc<Loaded>, ReadError> {
        let now = clock.now_ms();
        let stale = {
            let mut state = self.state.lock().expect("dataset state lock");
            match &mut *state {
                State::Ready { loaded, checked_ms } => {
                    if now - *checked_ms < REVALIDATE_MS {
                        return Ok(loaded.clone());
                    }
                    *checked_ms = now;
                    Some(loaded.clone())
                }
                State::Failed { reason, at_ms } if now - *at_ms < RETRY_MS => {
                    return Err(ReadError::unavailable(&self.name, reason.as_str()));
                }
                _ => None,
            }
        };
        let manifest = self.store.get(MANIFEST).await;
        if let Some(loaded) = stale {
            match &manifest {
                Ok(bytes) if xxh3_hex(bytes) == loaded.manifest_etag => return Ok(loaded),
                // A store that fails to answer keeps the dataset as it is loaded.
                Err(StoreError::Other { .. }) => return Ok(loaded),
                _ => {}
            }
        }
        let result = match manifest {
            Ok(bytes) => self.load(bytes).await,
            Err(e) => Err(e.to_string()),
        };
        let mut state = self.state.lock().expect("dataset state lock");
        match result {
            Ok(loaded) => {
                let loaded = Arc::new(loaded);
                *state = State::Ready {
                    loaded: loaded.clone(),
                    checked_ms: clock.now_ms(),
                };
                Ok(loaded)
            }
            Err(reason) => {
                *state = State::Failed {
                    reason: reason.clone(),
                    at_ms: clock.now_ms(),
                };
                Err(ReadError::unavailable(&self.name, reason))
            }
        }
    }

    /// Loads the dataset of manifest `manifest_bytes`: checks it, and reads every footer.
    async fn load(&self, manifest_bytes: Bytes) -> Result<Loaded, String> {
        let manifest = Manifest::from_json(&manifest_bytes).map_err(|e| e.to_string())?;
        let manifest_etag = xxh3_hex(&manifest_bytes);
        let footer = |file: &pocaduck_edge_core::manifest::DataFile| {
            let file = file.clone();
            async move {
                let range = file.footer.expect("validated manifests have footers");
                let bytes = self
                    .store
                    .get_range_of(&file.path, &file.etag, range.offset..range.end())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((file.path, bytes))
            }
        };
        let footers = try_join_all(manifest.points_files().enumerate().map(|(i, file)| {
            let fetched = footer(file);
            let manifest = &manifest;
            async move {
                let (_, bytes) = fetched.await?;
                decode_untrusted(|| points_footer(manifest, i as u32, &bytes))
            }
        }))
        .await?;
        let blocks_footer = match &manifest.blocks {
            Some(b) => {
                let (_, bytes) = footer(b).await?;
                Some(decode_untrusted(|| blocks_footer(&manifest, &bytes))?)
            }
            None => None,
        };
        Ok(Loaded {
            manifest,
            manifest_bytes,
            manifest_etag,
            footers,
            blocks_footer,
            pages: Mutex::new(HashMap::new()),
        })
    }

    async fn page(
        &self,
        loaded: &Loaded,
        i: usize,
        timing: &mut Timing,
    ) -> Result<Arc<IndexPage>, ReadError> {
        if let Some(page) = loaded.pages.lock().expect("page cache lock").get(&i) {
            timing.cache_hits += 1;
            return Ok(page.clone());
        }
        timing.cache_misses += 1;
        let r = loaded.manifest.label_index.pages[i].range;
        let read = async {
            let bytes = self
                .fetch(&loaded.manifest.label_index.file, r.offset..r.end(), timing)
                .await?;
            decode_page(&loaded.manifest, i, &bytes)
                .map_err(|e| ReadError::unavailable(&self.name, e))
        };
        let page = Arc::new(self.checked(loaded, read.await).await?);
        let mut cache = loaded.pages.lock().expect("page cache lock");
        if cache.len() >= PAGE_CACHE {
            cache.clear();
        }
        cache.insert(i, page.clone());
        Ok(page)
    }

    /// `result` of a read of `loaded`'s files; when it failed and the store's manifest is no
    /// longer `loaded`'s, `loaded` is forgotten so that the next request loads the dataset
    /// again.
    async fn checked<T>(
        &self,
        loaded: &Loaded,
        result: Result<T, ReadError>,
    ) -> Result<T, ReadError> {
        if result.is_err() {
            let changed = match self.store.get(MANIFEST).await {
                Ok(bytes) => xxh3_hex(&bytes) != loaded.manifest_etag,
                Err(StoreError::NotFound(_)) => true,
                Err(StoreError::Other { .. }) => false,
            };
            if changed {
                let mut state = self.state.lock().expect("dataset state lock");
                if matches!(&*state, State::Ready { loaded: l, .. } if std::ptr::eq(l.as_ref(), loaded))
                {
                    *state = State::Unloaded;
                }
            }
        }
        result
    }

    /// Bytes `range` of the manifest's `file`, checked against the file's hash when the
    /// range is the whole file.
    async fn fetch(
        &self,
        file: &DataFile,
        range: std::ops::Range<u64>,
        timing: &mut Timing,
    ) -> Result<Bytes, ReadError> {
        let whole = range == (0..file.size);
        let bytes = self
            .fetch_path(&file.path, Some(&file.etag), range, timing)
            .await?;
        if whole {
            integrity::check(&file.path, &bytes, &file.etag)
                .map_err(|e| ReadError::unavailable(&self.name, e))?;
        }
        Ok(bytes)
    }

    /// Bytes `range` of file `path`, whose content hash is `etag` when the manifest gives it.
    async fn fetch_path(
        &self,
        path: &str,
        etag: Option<&str>,
        range: std::ops::Range<u64>,
        timing: &mut Timing,
    ) -> Result<Bytes, ReadError> {
        timing.requests += 1;
        let read = match etag {
            Some(etag) => self.store.get_range_of(path, etag, range.clone()).await,
            None => self.store.get_range(path, range.clone()).await,
        };
        let bytes = read.map_err(|e| match e {
            StoreError::NotFound(_) => {
                ReadError::unavailable(&self.name, format!("{path} is missing"))
            }
            other => ReadError::unavailable(&self.name, other),
        })?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(ReadError::unavailable(
                &self.name,
                format!("{path} is shorter than its manifest says"),
            ));
        }
        timing.bytes_fetched += bytes.len() as u64;
        Ok(bytes)
    }

    /// Bytes `span` of the manifest's `file`, fetched at once; the whole file is checked
    /// against its hash.
    pub async fn read_range(
        &self,
        file: &DataFile,
        span: std::ops::Range<u64>,
    ) -> Result<Bytes, ReadError> {
        self.fetch(file, span, &mut Timing::default()).await
    }

    /// Bytes `span` of the manifest's `file` as a stream of steps of at most `step` bytes,
    /// each fetched as the one before is consumed. The whole file is checked against its
    /// hash: its last step comes only when the hash matches, else the stream ends in an
    /// error.
    pub fn stream_range(
        &self,
        file: &DataFile,
        span: std::ops::Range<u64>,
        step: u64,
    ) -> FileStream {
        let (store, name, path) = (self.store.clone(), self.name.clone(), file.path.clone());
        let mut whole = (span == (0..file.size)).then(|| (Xxh3::new(), file.etag.clone()));
        let end = span.end;
        let steps = (span.start..span.end)
            .step_by(step.max(1) as usize)
            .map(move |start| start..(start + step).min(span.end));
        let stream = futures::stream::iter(steps).then(move |r| {
            let (store, name, path) = (store.clone(), name.clone(), path.clone());
            async move {
                let bytes = store
                    .get_range(&path, r.clone())
                    .await
                    .map_err(|e| ReadError::unavailable(&name, e))?;
                if bytes.len() as u64 != r.end - r.start {
                    return Err(ReadError::unavailable(
                        &name,
                        format!("{path} is shorter than its manifest says"),
                    ));
                }
                Ok((r.end, bytes, name, path))
            }
        });
        let checked = stream.map(move |step| {
            let (step_end, bytes, name, path) = step?;
            if let Some((hash, etag)) = &mut whole {
                hash.update(&bytes);
                if step_end == end && !format!("{:016x}", hash.digest()).eq_ignore_ascii_case(etag)
                {
                    return Err(ReadError::unavailable(
                        &name,
                        pocaduck_edge_core::Error::Corrupt { what: path },
                    ));
                }
            }
            Ok(bytes)
        });
        Box::pin(checked)
    }

    /// The index entry of `label`, or `None` when the dataset has no such label.
    pub async fn entry(
        &self,
        loaded: &Loaded,
        label: u64,
        timing: &mut Timing,
    ) -> Result<Option<IndexEntry>, ReadError> {
        let Some((i, _)) = loaded.manifest.page_for(label) else {
            return Ok(None);
        };
        Ok(self.page(loaded, i, timing).await?.find(label).cloned())
    }

    /// Index page `i` of the manifest's label index (numbered as its `pages`), from the
    /// dataset's cache of pages when there.
    pub async fn index_page(
        &self,
        loaded: &Loaded,
        i: usize,
        timing: &mut Timing,
    ) -> Result<Arc<IndexPage>, ReadError> {
        self.page(loaded, i, timing).await
    }

    /// Up to `limit` labels greater than `after`, ascending; a full page names its last
    /// label as the next `after`.
    pub async fn labels_after(
        &self,
        loaded: &Loaded,
        after: Option<u64>,
        limit: usize,
    ) -> Result<LabelsPage, ReadError> {
        let pages = &loaded.manifest.label_index.pages;
        let mut paging = LabelPaging::new(pages, after, limit, NextAfter::WhenFull);
        let mut timing = Timing::default();
        while let Some(i) = paging.wants() {
            paging.feed(&*self.page(loaded, i, &mut timing).await?);
        }
        Ok(paging.finish())
    }

    /// The footer of points file `file` (numbered as [`Manifest::file`] numbers them).
    pub fn footer<'a>(
        &self,
        loaded: &'a Loaded,
        file: u32,
    ) -> Result<&'a Arc<ParquetMetaData>, ReadError> {
        loaded.footer(file).ok_or_else(|| {
            ReadError::unavailable(
                &self.name,
                format!("the index names file {file}, which the manifest lacks"),
            )
        })
    }

    /// Points file `file` of the manifest.
    pub fn points_file<'a>(
        &self,
        loaded: &'a Loaded,
        file: u32,
    ) -> Result<&'a pocaduck_edge_core::manifest::DataFile, ReadError> {
        loaded
            .manifest
            .file(file)
            .ok_or_else(|| ReadError::unavailable(&self.name, format!("no points file {file}")))
    }

    /// Fetches and decodes chunks (their byte ranges merged per file), in order.
    pub async fn read_chunks(
        &self,
        loaded: &Loaded,
        chunks: &[Chunk],
        timing: &mut Timing,
        clock: &dyn Clock,
    ) -> Result<Vec<PointCloud>, ReadError> {
        let files = self.fetch_chunks(loaded, chunks, timing, clock).await?;
        let t1 = clock.now_ms();
        let mut out = Vec::with_capacity(chunks.len());
        for c in chunks {
            let sparse = files.get(&c.file).cloned().unwrap_or_default();
            out.push(self.decode_chunk(loaded, c.file, sparse, &c.rows)?);
        }
        timing.decode += clock.now_ms() - t1;
        Ok(out)
    }

    /// Decodes rows `span` of points file `file`, whose bytes are in `sparse`.
    pub fn decode_chunk(
        &self,
        loaded: &Loaded,
        file: u32,
        sparse: SparseFile,
        span: &RowSpan,
    ) -> Result<PointCloud, ReadError> {
        let meta = self.footer(loaded, file)?;
        let path = &self.points_file(loaded, file)?.path;
        decode_untrusted(|| decode_points(path, meta, sparse, span, loaded.manifest.dims()))
            .map_err(|e| ReadError::unavailable(&self.name, e))
    }

    /// Decodes rows `span` of points file `file`, whose bytes are in `sparse`, into one
    /// column per dim as stored.
    pub fn decode_chunk_columns(
        &self,
        loaded: &Loaded,
        file: u32,
        sparse: SparseFile,
        span: &RowSpan,
    ) -> Result<Vec<Column>, ReadError> {
        let meta = self.footer(loaded, file)?;
        let path = &self.points_file(loaded, file)?.path;
        decode_untrusted(|| decode_point_columns(path, meta, sparse, span, loaded.manifest.dims()))
            .map_err(|e| ReadError::unavailable(&self.name, e))
    }

    /// Fetches the bytes of chunks (their byte ranges merged per file), by file, each row
    /// group checked against its hash.
    pub async fn fetch_chunks(
        &self,
        loaded: &Loaded,
        chunks: &[Chunk],
        timing: &mut Timing,
        clock: &dyn Clock,
    ) -> Result<HashMap<u32, SparseFile>, ReadError> {
        let t0 = clock.now_ms();
        let mut requests = Vec::new();
        let merged = merge_by_file(
            chunks
                .iter()
                .map(|c| (c.file, c.bytes.offset..c.bytes.end())),
        );
        for file in merged {
            let data = self.points_file(loaded, file.file)?;
            for r in file.ranges {
                requests.push((file.file, data, r));
            }
        }
        let fetched = try_join_all(requests.iter().map(|(_, data, r)| {
            let mut t = Timing::default();
            async move {
                let bytes = self.fetch(data, r.clone(), &mut t).await?;
                Ok::<_, ReadError>((bytes, t))
            }
        }))
        .await;
        let fetched = self.checked(loaded, fetched).await?;
        let parts: Vec<(u32, u64, Bytes)> = requests
            .iter()
            .zip(fetched)
            .map(|((file, _, r), (bytes, t))| {
                timing.requests += t.requests;
                timing.bytes_fetched += t.bytes_fetched;
                (*file, r.start, bytes)
            })
            .collect();
        let checked = self.check_parts(loaded, &parts);
        self.checked(loaded, checked).await?;
        let files = fetched_files(&loaded.manifest, parts)
            .map_err(|e| ReadError::unavailable(&self.name, e))?;
        timing.fetch += clock.now_ms() - t0;
        Ok(files)
    }

    /// Checks the row groups wholly inside each fetched part against the hashes their
    /// file's footer records.
    fn check_parts(&self, loaded: &Loaded, parts: &[(u32, u64, Bytes)]) -> Result<(), ReadError> {
        for (file, start, bytes) in parts {
            let meta = self.footer(loaded, *file)?;
            let path = &self.points_file(loaded, *file)?.path;
            integrity::check_row_groups(path, meta, *start, bytes)
                .map_err(|e| ReadError::unavailable(&self.name, e))?;
        }
        Ok(())
    }

    /// The PoCADuck blocks of a label (empty when the source had none).
    pub async fn blocks(
        &self,
        loaded: &Loaded,
        entry: &IndexEntry,
        timing: &mut Timing,
    ) -> Result<Vec<(String, u64)>, ReadError> {
        let unavailable = |e| ReadError::unavailable(&self.name, e);
        let plan = BlocksPlan::new(&loaded.manifest, loaded.blocks_footer.as_ref(), entry)
            .map_err(unavailable)?;
        let Some(plan) = plan else {
            return Ok(Vec::new());
        };
        let etag = loaded.manifest.blocks.as_ref().map(|b| b.etag.as_str());
        let bytes = self
            .fetch_path(plan.path(), etag, plan.range(), timing)
            .await;
        let bytes = self.checked(loaded, bytes).await?;
        decode_untrusted(|| plan.decode(bytes)).map_err(|e| ReadError::unavailable(&self.name, e))
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use futures::executor::block_on;

    use super::*;

    /// One file of 100 bytes, in memory.
    struct OneFile(Bytes);

    #[async_trait::async_trait]
    impl RangeStore for OneFile {
        async fn get(&self, _: &str) -> Result<Bytes, StoreError> {
            Ok(self.0.clone())
        }

        async fn get_range(&self, _: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
            Ok(self.0.slice(range.start as usize..range.end as usize))
        }
    }

    fn file(etag: String) -> DataFile {
        DataFile {
            path: "points/part-00000.parquet".into(),
            size: 100,
            etag,
            rows: 0,
            footer: None,
            footer_xxh3: None,
        }
    }

    fn stream(d: &Dataset, file: &DataFile, span: Range<u64>) -> Vec<Result<Bytes, ReadError>> {
        block_on(d.stream_range(file, span, 30).collect::<Vec<_>>())
    }

    #[test]
    fn a_whole_file_is_checked_against_its_etag_read_at_once_or_streamed() {
        let bytes = Bytes::from((0..100u8).collect::<Vec<_>>());
        let d = Dataset::new("d", Arc::new(OneFile(bytes.clone())));
        let good = file(xxh3_hex(&bytes));
        let steps = stream(&d, &good, 0..100);
        assert_eq!(steps.len(), 4);
        let streamed: Vec<u8> = steps
            .into_iter()
            .flat_map(|s| s.unwrap().to_vec())
            .collect();
        assert_eq!(streamed, bytes.to_vec());
        assert_eq!(block_on(d.read_range(&good, 0..100)).unwrap(), bytes);

        // Another file's hash: every step but the last, then an error instead of the last.
        let other = file(xxh3_hex(b"another file"));
        let steps = stream(&d, &other, 0..100);
        assert_eq!(steps.len(), 4);
        assert!(steps[..3].iter().all(Result::is_ok));
        let err = steps[3].as_ref().unwrap_err().to_string();
        assert!(err.contains("does not match its recorded hash"), "{err}");
        let err = block_on(d.read_range(&other, 0..100))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match its recorded hash"), "{err}");

        // A part of a file has no hash of its own to check.
        assert!(stream(&d, &other, 10..100).iter().all(Result::is_ok));
        assert_eq!(
            block_on(d.read_range(&other, 10..40)).unwrap(),
            bytes.slice(10..40)
        );
    }
}
