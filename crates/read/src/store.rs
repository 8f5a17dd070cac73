//! The IO traits a host implements: a range store per dataset and a clock.

use std::ops::Range;

use bytes::Bytes;

/// Why a store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Any other failure, with the store's message.
    #[error("{path}: {message}")]
    Other {
        /// The object.
        path: String,
        /// What the store said.
        message: String,
    },
}

/// `Send + Sync` on native hosts, nothing on wasm (the Worker's futures are not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSend for T {}
/// `Send + Sync` on native hosts, nothing on wasm (the Worker's futures are not `Send`).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// Byte access to one dataset's files, by path relative to the dataset root.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait RangeStore: MaybeSend {
    /// The whole object.
    async fn get(&self, path: &str) -> Result<Bytes, StoreError>;
    /// Bytes `range` of the object; the store must return exactly that many bytes.
    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StoreError>;

    /// Bytes `range` of a file the manifest lists with content hash `etag`: what
    /// [`RangeStore::get_range`] reads, which a store may keep in a cache keyed on the hash,
    /// since the bytes under one hash never change.
    async fn get_range_of(
        &self,
        path: &str,
        etag: &str,
        range: Range<u64>,
    ) -> Result<Bytes, StoreError> {
        let _ = etag;
        self.get_range(path, range).await
    }
}

/// The name a dataset is served under, on every host: its location's last path segment
/// (`s3://bucket/flyem/hemibrain-da1/` → `hemibrain-da1`).
pub fn dataset_name(location: &str) -> &str {
    let trimmed = location.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Milliseconds from an arbitrary origin, for timings and retry delays, and the wall-clock
/// time, for signatures.
pub trait Clock: MaybeSend {
    /// Now, in milliseconds.
    fn now_ms(&self) -> f64;
    /// Seconds since the Unix epoch.
    fn unix_seconds(&self) -> u64;
}
