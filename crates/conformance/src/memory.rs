//! A host's IO in memory, for running the service in-process ([`InProcess`](crate::InProcess)):
//! datasets as maps of files, a store that fails, a wall clock, and a log that keeps what
//! the service tells it.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pocaduck_edge_proxy::{ApiError, RequestLog, RequestRecord};
use pocaduck_edge_read::{Clock, RangeStore, StoreError};

use crate::api::ServerLog;

/// A dataset's files in memory, by path relative to its root.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    files: Arc<HashMap<String, Bytes>>,
}

impl MemoryStore {
    /// A store of `files`.
    pub fn new(files: HashMap<String, Bytes>) -> Self {
        Self {
            files: Arc::new(files),
        }
    }

    /// The files.
    pub fn files(&self) -> &HashMap<String, Bytes> {
        &self.files
    }
}

#[async_trait::async_trait]
impl RangeStore for MemoryStore {
    async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(path.to_owned()))
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let file = self.get(path).await?;
        if range.start > range.end || range.end > file.len() as u64 {
            return Err(StoreError::Other {
                path: path.to_owned(),
                message: format!(
                    "bytes {}..{} asked of an object of {} bytes",
                    range.start,
                    range.end,
                    file.len()
                ),
            });
        }
        Ok(file.slice(range.start as usize..range.end as usize))
    }
}

/// A store every read of which fails with [`StoreError::Other`] naming the object under
/// `root` (as an object store names its URL or a disk its path) and `message`.
#[derive(Debug, Clone)]
pub struct FailingStore {
    /// Where the objects would be, in the errors.
    pub root: String,
    /// What the store says.
    pub message: String,
}

#[async_trait::async_trait]
impl RangeStore for FailingStore {
    async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        Err(StoreError::Other {
            path: format!("{}/{path}", self.root),
            message: self.message.clone(),
        })
    }

    async fn get_range(&self, path: &str, _range: Range<u64>) -> Result<Bytes, StoreError> {
        self.get(path).await
    }
}

/// The machine's clocks: milliseconds since the clock was made, and the Unix time.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    start: Instant,
}

impl WallClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for WallClock {
    fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    fn unix_seconds(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A log keeping a line per failure the service reports, as the native host's log has it:
/// the request id, method, path, status, code, and the detail the client was not told.
#[derive(Debug, Default)]
pub struct CapturedLog {
    lines: Mutex<Vec<String>>,
}

impl CapturedLog {
    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl RequestLog for CapturedLog {
    /// Only failures are captured: the checks look up a failure by its request id.
    fn served(&self, _: &RequestRecord) {}

    fn failed(&self, request_id: &str, method: &http::Method, path: &str, error: &ApiError) {
        let line = format!(
            "request failed request_id={request_id} method={method} path={path} status={} code={} detail={}",
            error.status.as_u16(),
            error.code,
            error.detail.as_deref().unwrap_or(&error.message),
        );
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

impl ServerLog for CapturedLog {
    fn contents(&self) -> String {
        self.lines().join("\n")
    }
}
