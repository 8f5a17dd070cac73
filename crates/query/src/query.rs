//! PoCADuck's `Query`: labels, point counts, points and blocks of a dataset, with the
//! seed's timing information and its small cache of recently read labels.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pocaduck_edge_core::plan::plan_label;
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_read::{Dataset, ReadError, Timing as ReadTiming, VastSource};

use crate::config::{redacted_url, StorageConfig, StorageType};
use crate::error::{Error, Result};
use crate::store::SystemClock;
use crate::upstream::HttpUpstream;

/// Labels whose points [`Query::new`] keeps in memory (PoCADuck's `cache_size`; its
/// default is 10, smaller here because one label can hold tens of millions of points).
pub const DEFAULT_CACHE_SIZE: usize = 4;
/// Seconds to wait for VastDB's next bytes.
const VASTDB_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A label's points: `N × D` int64 values, row-major, distinct, in PoCADuck's order
/// (`np.unique(points, axis=0)`: lexicographic by row). An unknown label gives `(0, D)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Points {
    /// Values per point (`D`).
    pub dims: usize,
    /// The values, row-major: point `i` is `data[i * dims..(i + 1) * dims]`.
    pub data: Vec<i64>,
}

impl Points {
    /// No points of `dims` values: the `(0, D)` answer for an unknown label.
    pub fn empty(dims: usize) -> Self {
        Self {
            dims,
            data: Vec::new(),
        }
    }

    /// Number of points (`N`).
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The shape, `(N, D)`, as numpy gives it.
    pub fn shape(&self) -> (usize, usize) {
        (self.len(), self.dims)
    }

    /// Point `i` (panics when `i >= len()`).
    pub fn row(&self, i: usize) -> &[i64] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }

    /// The points, in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, i64> {
        self.data.chunks_exact(self.dims.max(1))
    }
}

impl From<PointCloud> for Points {
    fn from(cloud: PointCloud) -> Self {
        Self {
            dims: cloud.dims(),
            data: cloud.into_values(),
        }
    }
}

/// Where a call's time went: the seed's `timing=True` dictionary as a struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// The label asked for.
    pub label: u64,
    /// Seconds from the call to its answer.
    pub total_time: f64,
    /// Seconds spent finding and fetching data: index look-ups and store reads, or the
    /// VastDB queries and their replies.
    pub query_time: f64,
    /// Seconds spent decoding, assembling and ordering points.
    pub processing_time: f64,
    /// Points returned (0 for counts and blocks).
    pub points_returned: u64,
    /// Data files read (edge layout; 0 for VastDB, which has tables, not files).
    pub files_accessed: u64,
    /// Requests made to the store or to VastDB.
    pub requests: u64,
    /// Bytes fetched from the store or from VastDB.
    pub bytes_fetched: u64,
    /// Whether the answer came from the cache of recent labels.
    pub cache_hit: bool,
    /// `"edge"` (an edge-layout dataset) or `"vastdb"`.
    pub backend: &'static str,
}

impl Timing {
    fn start(label: u64, backend: &'static str) -> Self {
        Self {
            label,
            total_time: 0.0,
            query_time: 0.0,
            processing_time: 0.0,
            points_returned: 0,
            files_accessed: 0,
            requests: 0,
            bytes_fetched: 0,
            cache_hit: false,
            backend,
        }
    }

    fn add_read(&mut self, t: &ReadTiming) {
        self.requests += t.requests;
        self.bytes_fetched += t.bytes_fetched;
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "label {}: {} points in {:.6} s (query {:.6} s, processing {:.6} s); {} requests, {} bytes, {} files; cache hit: {}; backend: {}",
            self.label,
            self.points_returned,
            self.total_time,
            self.query_time,
            self.processing_time,
            self.requests,
            self.bytes_fetched,
            self.files_accessed,
            if self.cache_hit { "yes" } else { "no" },
            self.backend
        )
    }
}

/// The most recently read labels' points, least recently used first.
struct Cache {
    capacity: usize,
    entries: VecDeque<(u64, Arc<Points>)>,
}

impl Cache {
    fn get(&mut self, label: u64) -> Option<Arc<Points>> {
        let i = self.entries.iter().position(|(l, _)| *l == label)?;
        let entry = self.entries.remove(i)?;
        let points = entry.1.clone();
        self.entries.push_back(entry);
        Some(points)
    }

    /// Keeps a copy of `label`'s points (made only when there is room for it).
    fn put(&mut self, label: u64, points: &Points) {
        if self.capacity == 0 {
            return;
        }
        self.entries.retain(|(l, _)| *l != label);
        self.entries.push_back((label, Arc::new(points.clone())));
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
        }
    }
}

enum Backend {
    Edge(Dataset),
    Vast(Arc<VastSource>),
}

/// The async form of [`Query`]: the same calls, to `.await` inside a tokio runtime. Share
/// it between tasks behind an `Arc` (every call takes `&self`).
pub struct AsyncQuery {
    backend: Backend,
    clock: Arc<SystemClock>,
    dims: usize,
    storage_type: StorageType,
    location: String,
    cache: Mutex<Cache>,
}

impl fmt::Debug for AsyncQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncQuery")
            .field("storage_type", &self.storage_type)
            .field("location", &self.location)
            .field("dims", &self.dims)
            .finish_non_exhaustive()
    }
}

/// One cloud of `pieces`, distinct and in PoCADuck's order: sorted unless `ascending` says
/// the pieces already are, each after the one before (else `sort_unique` costs one pass
/// when they are).
fn assemble(dims: usize, pieces: Vec<PointCloud>, ascending: bool) -> Result<PointCloud> {
    let mut cloud = if pieces.len() == 1 {
        pieces.into_iter().next().expect("one piece")
    } else {
        let total = pieces.iter().map(|p| p.values().len()).sum();
        let mut values = Vec::with_capacity(total);
        for piece in pieces {
            if piece.dims() != dims {
                return Err(ReadError::internal(format!(
                    "a piece of {}-dim points in a {dims}-dim dataset",
                    piece.dims()
                ))
                .into());
            }
            values.extend_from_slice(piece.values());
        }
        PointCloud::new(dims, values).map_err(ReadError::internal)?
    };
    if !ascending {
        cloud.sort_unique();
    }
    Ok(cloud)
}

impl AsyncQuery {
    /// Opens the dataset or table of `config` (validated first) with a cache of
    /// [`DEFAULT_CACHE_SIZE`] labels. An edge-layout dataset's manifest and footers are
    /// read now; a VastDB table's columns are checked against the layout now.
    pub async fn new(config: StorageConfig) -> Result<Self> {
        Self::with_cache_size(config, DEFAULT_CACHE_SIZE).await
    }

    /// As [`AsyncQuery::new`], caching the points of up to `cache_size` labels (0: none).
    pub async fn with_cache_size(config: StorageConfig, cache_size: usize) -> Result<Self> {
        let storage_type = config.validate()?;
        let clock = Arc::new(SystemClock::new());
        let cache = Mutex::new(Cache {
            capacity: cache_size,
            entries: VecDeque::new(),
        });
        if storage_type == StorageType::Vastdb {
            let vast = config.vast_config()?;
            let location = vast.table.to_string();
            let dims = vast.dims;
            let upstream = HttpUpstream::new(VASTDB_READ_TIMEOUT)?;
            let source = Arc::new(VastSource::new(
                config.vastdb_table.clone(),
                vast,
                Arc::new(upstream),
                clock.clone(),
            ));
            source.schema().await?;
            return Ok(Self {
                backend: Backend::Vast(source),
                clock,
                dims,
                storage_type,
                location,
                cache,
            });
        }
        let (name, store) = config.open_store()?;
        let dataset = Dataset::new(name, Arc::new(store));
        let loaded = dataset.loaded(clock.as_ref()).await?;
        Ok(Self {
            dims: loaded.manifest.dims(),
            backend: Backend::Edge(dataset),
            clock,
            storage_type,
            location: redacted_url(&config.base_path),
            cache,
        })
    }

    /// Values per point (`D`) of every answer.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The storage type of the config it was opened with.
    pub fn storage_type(&self) -> StorageType {
        self.storage_type
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Edge(_) => "edge",
            Backend::Vast(_) => "vastdb",
        }
    }

    fn cached(&self, label: u64) -> Option<Arc<Points>> {
        self.cache.lock().expect("cache lock").get(label)
    }

    /// Every label, ascending.
    pub async fn get_labels(&self) -> Result<Vec<u64>> {
        match &self.backend {
            Backend::Edge(d) => {
                let l = d.loaded(self.clock.as_ref()).await?;
                Ok(d.labels_after(&l, None, usize::MAX).await?.labels)
            }
            Backend::Vast(v) => Ok(v.labels().await?.as_ref().clone()),
        }
    }

    /// The number of distinct points of `label` (0 for an unknown label).
    pub async fn get_point_count(&self, label: u64) -> Result<u64> {
        Ok(self.get_point_count_timed(label).await?.0)
    }

    /// [`AsyncQuery::get_point_count`] with its timing.
    pub async fn get_point_count_timed(&self, label: u64) -> Result<(u64, Timing)> {
        let t0 = Instant::now();
        let mut timing = Timing::start(label, self.backend_name());
        let mut read = ReadTiming::default();
        let count = if let Some(points) = self.cached(label) {
            timing.cache_hit = true;
            points.len() as u64
        } else {
            match &self.backend {
                Backend::Edge(d) => {
                    let l = d.loaded(self.clock.as_ref()).await?;
                    let entry = d.entry(&l, label, &mut read).await?;
                    timing.files_accessed = u64::from(entry.is_some());
                    entry.map_or(0, |e| e.point_count)
                }
                Backend::Vast(v) => v.count(label, &mut read).await?,
            }
        };
        timing.add_read(&read);
        timing.total_time = t0.elapsed().as_secs_f64();
        timing.query_time = timing.total_time;
        Ok((count, timing))
    }

    /// PoCADuck block ids holding `label`, distinct (empty for an unknown label, or when
    /// the source did not record blocks).
    pub async fn get_blocks_for_label(&self, label: u64) -> Result<Vec<String>> {
        Ok(self.get_blocks_for_label_timed(label).await?.0)
    }

    /// [`AsyncQuery::get_blocks_for_label`] with its timing.
    pub async fn get_blocks_for_label_timed(&self, label: u64) -> Result<(Vec<String>, Timing)> {
        let t0 = Instant::now();
        let mut timing = Timing::start(label, self.backend_name());
        let mut read = ReadTiming::default();
        let blocks = match &self.backend {
            Backend::Edge(d) => {
                let l = d.loaded(self.clock.as_ref()).await?;
                match d.entry(&l, label, &mut read).await? {
                    Some(entry) => {
                        let blocks = d.blocks(&l, &entry, &mut read).await?;
                        timing.files_accessed = u64::from(!blocks.is_empty());
                        blocks
                    }
                    None => Vec::new(),
                }
            }
            Backend::Vast(v) => v.blocks(label, &mut read).await?,
        };
        let mut ids: Vec<String> = Vec::with_capacity(blocks.len());
        for (id, _) in blocks {
            // An empty id means "not known" (a table loaded from an edge dataset).
            if !id.is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        timing.add_read(&read);
        timing.total_time = t0.elapsed().as_secs_f64();
        timing.query_time = timing.total_time;
        Ok((ids, timing))
    }

    /// Every distinct point of `label`, `(N, D)` in PoCADuck's order; `(0, D)` for an
    /// unknown label. Uses the cache of recent labels.
    pub async fn get_points(&self, label: u64) -> Result<Points> {
        Ok(self.get_points_with(label, true).await?.0)
    }

    /// [`AsyncQuery::get_points`] with its timing (`cache_hit` says whether the cache
    /// answered).
    pub async fn get_points_timed(&self, label: u64) -> Result<(Points, Timing)> {
        self.get_points_with(label, true).await
    }

    /// [`AsyncQuery::get_points_timed`], reading and filling the cache only when
    /// `use_cache` (PoCADuck's `get_points(label, use_cache, timing=True)`).
    pub async fn get_points_with(&self, label: u64, use_cache: bool) -> Result<(Points, Timing)> {
        let t0 = Instant::now();
        let mut timing = Timing::start(label, self.backend_name());
        if use_cache {
            if let Some(points) = self.cached(label) {
                timing.cache_hit = true;
                timing.points_returned = points.len() as u64;
                timing.total_time = t0.elapsed().as_secs_f64();
                return Ok((points.as_ref().clone(), timing));
            }
        }
        let mut read = ReadTiming::default();
        let (pieces, ascending, fetched) = match &self.backend {
            Backend::Edge(d) => {
                let (pieces, fetched) = self.read_edge(d, label, &mut read, &mut timing).await?;
                (pieces, false, fetched)
            }
            Backend::Vast(v) => {
                let mut pieces = Vec::new();
                let mut points = v.points(label, &mut read).await?;
                while let Some(cloud) = points.next(&mut read).await? {
                    pieces.push(cloud);
                }
                (pieces, points.ascending(), Instant::now())
            }
        };
        let cloud = if pieces.is_empty() {
            PointCloud::empty(self.dims)
        } else {
            assemble(self.dims, pieces, ascending)?
        };
        let points = Points::from(cloud);
        timing.add_read(&read);
        timing.points_returned = points.len() as u64;
        if let Backend::Vast(_) = self.backend {
            timing.query_time = (fetched - t0).as_secs_f64();
        }
        timing.processing_time += fetched.elapsed().as_secs_f64();
        if use_cache {
            self.cache.lock().expect("cache lock").put(label, &points);
        }
        timing.total_time = t0.elapsed().as_secs_f64();
        Ok((points, timing))
    }

    /// Reads an edge-layout label's pieces as the read API does (index entry, planned
    /// ranges, fetched and decoded); returns them and when the decoding ended.
    async fn read_edge(
        &self,
        d: &Dataset,
        label: u64,
        read: &mut ReadTiming,
        timing: &mut Timing,
    ) -> Result<(Vec<PointCloud>, Instant)> {
        let t0 = Instant::now();
        let l = d.loaded(self.clock.as_ref()).await?;
        let Some(entry) = d.entry(&l, label, read).await? else {
            timing.query_time = t0.elapsed().as_secs_f64();
            return Ok((Vec::new(), Instant::now()));
        };
        let meta = d.footer(&l, entry.file)?;
        // The whole label is wanted: as few chunks as the row groups allow.
        let chunks =
            plan_label(&entry, meta, u64::MAX).map_err(|e| ReadError::unavailable(&d.name, e))?;
        let index = t0.elapsed().as_secs_f64();
        let mut files: Vec<u32> = chunks.iter().map(|c| c.file).collect();
        files.sort_unstable();
        files.dedup();
        timing.files_accessed = files.len() as u64;
        let pieces = d
            .read_chunks(&l, &chunks, read, self.clock.as_ref())
            .await?;
        timing.query_time = index + read.fetch / 1e3;
        timing.processing_time = read.decode / 1e3;
        Ok((pieces, Instant::now()))
    }

    /// Empties the cache and lets the dataset go (PoCADuck's `close`).
    pub fn close(self) {
        self.cache.lock().expect("cache lock").entries.clear();
    }
}

/// PoCADuck's `Query`, synchronous: open a dataset or table with a [`StorageConfig`], then
/// ask for labels, counts, points and blocks. Each call runs on a small tokio runtime the
/// query owns, so it works from plain threads (no runtime needed) and, blocking the caller,
/// from inside another runtime too; async code should prefer [`AsyncQuery`].
pub struct Query {
    inner: Arc<AsyncQuery>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query").field("inner", &self.inner).finish()
    }
}

impl Query {
    /// Opens the dataset or table of `config` with a cache of [`DEFAULT_CACHE_SIZE`] labels
    /// (see [`AsyncQuery::new`]).
    pub fn new(config: StorageConfig) -> Result<Self> {
        Self::with_cache_size(config, DEFAULT_CACHE_SIZE)
    }

    /// As [`Query::new`], caching the points of up to `cache_size` labels (0: none).
    pub fn with_cache_size(config: StorageConfig, cache_size: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pocaduck-query")
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(format!("starting the query runtime: {e}")))?;
        let inner = run(&runtime, AsyncQuery::with_cache_size(config, cache_size))??;
        Ok(Self {
            inner: Arc::new(inner),
            runtime: Some(runtime),
        })
    }

    fn call<T, F>(&self, call: impl FnOnce(Arc<AsyncQuery>) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        run(runtime, call(self.inner.clone()))?
    }

    /// Values per point (`D`) of every answer.
    pub fn dims(&self) -> usize {
        self.inner.dims()
    }

    /// The storage type of the config it was opened with.
    pub fn storage_type(&self) -> StorageType {
        self.inner.storage_type()
    }

    /// Every label, ascending (PoCADuck's `get_labels`).
    pub fn get_labels(&self) -> Result<Vec<u64>> {
        self.call(|q| async move { q.get_labels().await })
    }

    /// The number of distinct points of `label`, 0 for an unknown label (PoCADuck's
    /// `get_point_count`).
    pub fn get_point_count(&self, label: u64) -> Result<u64> {
        self.call(move |q| async move { q.get_point_count(label).await })
    }

    /// [`Query::get_point_count`] with its timing (`timing=True`).
    pub fn get_point_count_timed(&self, label: u64) -> Result<(u64, Timing)> {
        self.call(move |q| async move { q.get_point_count_timed(label).await })
    }

    /// Every distinct point of `label`, `(N, D)` in `np.unique(axis=0)` order; `(0, D)` for
    /// an unknown label (PoCADuck's `get_points`, with its cache).
    pub fn get_points(&self, label: u64) -> Result<Points> {
        self.call(move |q| async move { q.get_points(label).await })
    }

    /// [`Query::get_points`] with its timing (`timing=True`).
    pub fn get_points_timed(&self, label: u64) -> Result<(Points, Timing)> {
        self.call(move |q| async move { q.get_points_timed(label).await })
    }

    /// [`Query::get_points_timed`] using the cache only when `use_cache`
    /// (`get_points(label, use_cache, timing=True)`).
    pub fn get_points_with(&self, label: u64, use_cache: bool) -> Result<(Points, Timing)> {
        self.call(move |q| async move { q.get_points_with(label, use_cache).await })
    }

    /// PoCADuck block ids holding `label` (PoCADuck's `get_blocks_for_label`).
    pub fn get_blocks_for_label(&self, label: u64) -> Result<Vec<String>> {
        self.call(move |q| async move { q.get_blocks_for_label(label).await })
    }

    /// [`Query::get_blocks_for_label`] with its timing (`timing=True`).
    pub fn get_blocks_for_label_timed(&self, label: u64) -> Result<(Vec<String>, Timing)> {
        self.call(move |q| async move { q.get_blocks_for_label_timed(label).await })
    }

    /// Empties the cache and stops the runtime (PoCADuck's `close`; dropping does the same).
    pub fn close(self) {
        self.inner.cache.lock().expect("cache lock").entries.clear();
    }
}

impl Drop for Query {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Unlike a plain drop, this is allowed inside another runtime's async context.
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on `runtime` and waits for it on this thread, whatever runtime (if any)
/// this thread is in.
fn run<F>(runtime: &tokio::runtime::Runtime, future: F) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv()
        .map_err(|_| Error::Runtime("the query task ended without an answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_joined_then_ordered_only_when_needed() {
        let a = PointCloud::new(2, vec![3, 1, 0, 0]).unwrap();
        let b = PointCloud::new(2, vec![0, 0, 2, 5]).unwrap();
        let joined = assemble(2, vec![a.clone(), b.clone()], false).unwrap();
        assert_eq!(joined.values(), &[0, 0, 2, 5, 3, 1]);
        let sorted = PointCloud::new(2, vec![0, 1, 0, 2]).unwrap();
        assert_eq!(assemble(2, vec![sorted.clone()], false).unwrap(), sorted);
        // Pieces known to be in order are joined as they are.
        let known = assemble(2, vec![b, a], true).unwrap();
        assert_eq!(known.values(), &[0, 0, 2, 5, 3, 1, 0, 0]);
    }

    #[test]
    fn the_cache_forgets_the_least_recently_used_label() {
        let mut cache = Cache {
            capacity: 2,
            entries: VecDeque::new(),
        };
        let p = |n: i64| Points {
            dims: 1,
            data: vec![n],
        };
        cache.put(1, &p(1));
        cache.put(2, &p(2));
        assert!(cache.get(1).is_some());
        cache.put(3, &p(3));
        assert!(cache.get(2).is_none(), "2 was the least recently used");
        assert_eq!(cache.get(1).unwrap().data, vec![1]);
        assert_eq!(cache.get(3).unwrap().data, vec![3]);
        let mut none = Cache {
            capacity: 0,
            entries: VecDeque::new(),
        };
        none.put(1, &p(1));
        assert!(none.get(1).is_none());
    }

    #[test]
    fn points_have_numpy_shapes() {
        let p = Points {
            dims: 3,
            data: vec![1, 2, 3, 4, 5, 6],
        };
        assert_eq!(p.shape(), (2, 3));
        assert_eq!(p.row(1), &[4, 5, 6]);
        assert_eq!(p.rows().count(), 2);
        assert_eq!(Points::empty(4).shape(), (0, 4));
        assert_eq!(Points::default().len(), 0);
    }
}
