//! The native range store: any `object_store` backend (local disk, S3, GCS, Azure, HTTP)
//! under a dataset prefix, and the system clock.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;
use pocaduck_edge_proxy::{Clock, RangeStore, StoreError};

/// A dataset's files in an object store, below `prefix`.
pub struct ObjectRanges {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
}

impl ObjectRanges {
    /// Opens `location`: a local directory, or a URL (`file://`, `s3://`, `gs://`, `az://`,
    /// `https://`) whose credentials come from the usual environment variables. Returns the
    /// dataset name (the last path segment) and the store.
    pub fn open(location: &str) -> anyhow::Result<(String, Self)> {
        let (store, prefix): (Arc<dyn ObjectStore>, StorePath) = if location.contains("://") {
            let url =
                url::Url::parse(location).with_context(|| format!("{location} is not a URL"))?;
            let options: Vec<(String, String)> = std::env::vars()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            let (store, prefix) = object_store::parse_url_opts(&url, options)
                .with_context(|| format!("opening {location}"))?;
            (Arc::from(store), prefix)
        } else {
            let dir = std::fs::canonicalize(location)
                .with_context(|| format!("dataset directory {location}"))?;
            (
                Arc::new(LocalFileSystem::new_with_prefix(&dir)?),
                StorePath::default(),
            )
        };
        let name = location
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(location)
            .to_string();
        Ok((name, Self { store, prefix }))
    }

    fn path(&self, path: &str) -> StorePath {
        path.split('/')
            .fold(self.prefix.clone(), |p, part| p.child(part))
    }
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

/// Milliseconds since the server started.
pub struct SystemClock(Instant);

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self(Instant::now())
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
