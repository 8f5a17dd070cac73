//! The Workers Cache API in front of a dataset's range store, shared by the isolates of a
//! data centre: a manifest is kept for [`MANIFEST_SECS`], and a range of a file the
//! manifest lists (index pages, footers, points) under the file's content hash, for as
//! long as the cache keeps it, since the bytes under one hash never change. The Cache API
//! keeps only `200` answers, so a range is stored as a `200` of its own key. Anything else
//! is read from the store each time. The entries are in the cache named [`CACHE`], keyed on
//! the Worker's own origin, as Cloudflare asks; on `*.workers.dev` the Cache API keeps
//! nothing, and every read goes to the store.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use pocaduck_edge_read::{RangeStore, StoreError};
use worker::{Cache, Headers, Response};

use crate::stores::WorkerRanges;

/// The name of the Worker's cache.
const CACHE: &str = "pocaduck-edge";
/// Seconds a cached manifest is served before it is read again.
pub(crate) const MANIFEST_SECS: u32 = 60;
/// Seconds a range cached under its content hash may be kept (a year: as long as the
/// cache will).
const RANGE_SECS: u32 = 365 * 24 * 3600;

/// A dataset's store, cached.
pub(crate) struct CachedRanges {
    store: WorkerRanges,
    /// The cache keys' prefix: the Worker's origin and the dataset's location.
    scope: String,
}

impl CachedRanges {
    /// `store`, cached under keys of the Worker's `origin` that `location` (where the
    /// dataset is) makes unique.
    pub(crate) fn new(store: WorkerRanges, origin: &str, location: &str) -> Self {
        let location =
            percent_encoding::utf8_percent_encode(location, percent_encoding::NON_ALPHANUMERIC);
        let scope = format!("{origin}/.pocaduck-edge-cache/{location}/");
        Self { store, scope }
    }

    /// The cached bytes of `key`, if any; a cache that fails is a miss.
    async fn cached(&self, key: &str) -> Option<Vec<u8>> {
        let mut response = Cache::open(CACHE.to_owned())
            .await
            .get(key, false)
            .await
            .ok()??;
        response.bytes().await.ok()
    }

    /// Keeps `bytes` under `key` for `secs` (a failed put only costs the next read).
    async fn keep(&self, key: &str, bytes: &[u8], secs: u32) {
        let headers = Headers::new();
        let control = format!("public, max-age={secs}");
        if headers.set("cache-control", &control).is_err() {
            return;
        }
        if let Ok(response) = Response::from_bytes(bytes.to_vec()) {
            let cache = Cache::open(CACHE.to_owned()).await;
            let _ = cache.put(key, response.with_headers(headers)).await;
        }
    }
}

#[async_trait(?Send)]
impl RangeStore for CachedRanges {
    async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        if path != "manifest.json" {
            return self.store.get(path).await;
        }
        let key = format!("{}{path}", self.scope);
        if let Some(bytes) = self.cached(&key).await {
            return Ok(Bytes::from(bytes));
        }
        let bytes = self.store.get(path).await?;
        self.keep(&key, &bytes, MANIFEST_SECS).await;
        Ok(bytes)
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.store.get_range(path, range).await
    }

    async fn get_range_of(
        &self,
        path: &str,
        etag: &str,
        range: Range<u64>,
    ) -> Result<Bytes, StoreError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let key = format!(
            "{}{path}?etag={etag}&bytes={}-{}",
            self.scope,
            range.start,
            range.end - 1
        );
        if let Some(bytes) = self.cached(&key).await {
            if bytes.len() as u64 == range.end - range.start {
                return Ok(Bytes::from(bytes));
            }
        }
        let bytes = self.store.get_range(path, range).await?;
        self.keep(&key, &bytes, RANGE_SECS).await;
        Ok(bytes)
    }
}
