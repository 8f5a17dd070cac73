//! The native range store: any `object_store` backend (local disk, S3, GCS, Azure, HTTP)
//! under a dataset prefix, and the system clock.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;
use pocaduck_edge_read::{dataset_name, Clock, RangeStore, StoreError};

use crate::error::{Error, Result};

/// A dataset's files in an object store, below `prefix`.
pub struct ObjectRanges {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
}

impl ObjectRanges {
    /// Opens `location`: a local directory, or a URL (`file://`, `s3://`, `gs://`, `az://`,
    /// `https://`) whose credentials come from the usual environment variables. Returns the
    /// dataset name (the last path segment) and the store.
    pub fn open(location: &str) -> Result<(String, Self)> {
        let open_error = |message: String| Error::Open {
            location: location.to_string(),
            message,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, StorePath) = if location.contains("://") {
            let url =
                url::Url::parse(location).map_err(|e| open_error(format!("not a URL: {e}")))?;
            // Only the stores' own variables: object_store also takes short aliases
            // (`token`, `endpoint`, `region`…) that unrelated variables must not set.
            let options: Vec<(String, String)> = std::env::vars()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .filter(|(k, _)| {
                    ["aws_", "google_", "azure_"]
                        .iter()
                        .any(|prefix| k.starts_with(prefix))
                })
                .collect();
            let (store, prefix) = object_store::parse_url_opts(&url, options)
                .map_err(|e| open_error(e.to_string()))?;
            (Arc::from(store), prefix)
        } else {
            let store = local_store(location).map_err(open_error)?;
            (Arc::new(store), StorePath::default())
        };
        Ok((dataset_name(location).to_string(), Self { store, prefix }))
    }

    /// The files of `store` below `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: StorePath) -> Self {
        Self { store, prefix }
    }

    fn path(&self, path: &str) -> StorePath {
        path.split('/')
            .fold(self.prefix.clone(), |p, part| p.child(part))
    }
}

/// The local directory `dir` as a store (the directory must exist).
pub(crate) fn local_store(dir: &str) -> Result<LocalFileSystem, String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("dataset directory: {e}"))?;
    LocalFileSystem::new_with_prefix(&dir).map_err(|e| e.to_string())
}

fn store_error(path: &str, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound(path.into()),
        other => StoreError::Other {
            path: path.into(),
            message: other.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl RangeStore for ObjectRanges {
    async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        let result = self
            .store
            .get(&self.path(path))
            .await
            .map_err(|e| store_error(path, e))?;
        result.bytes().await.map_err(|e| store_error(path, e))
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.store
            .get_range(&self.path(path), range)
            .await
            .map_err(|e| store_error(path, e))
    }
}

/// Milliseconds since the clock was made (the server's start, a query's opening), and the
/// system's wall-clock time.
pub struct SystemClock(Instant);

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1e3
    }

    fn unix_seconds(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
