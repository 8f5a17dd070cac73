//! The range stores of the Worker's datasets: an R2 bucket binding, and any base URL that
//! answers `Range` requests. One request per range, as the native store makes.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use pocaduck_edge_read::{RangeStore, StoreError};
use worker::{Bucket, Fetch, Headers, Method, Request, RequestInit};

/// A store's failure on `path`, with its message.
fn failed(path: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Other {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// `bytes` when they are exactly `range`'s length.
fn exactly(path: &str, range: &Range<u64>, bytes: Vec<u8>) -> Result<Bytes, StoreError> {
    let want = range.end - range.start;
    if bytes.len() as u64 != want {
        return Err(failed(
            path,
            format!(
                "asked for {want} bytes at {}, got {}",
                range.start,
                bytes.len()
            ),
        ));
    }
    Ok(Bytes::from(bytes))
}

/// A dataset's files in R2 or under a base URL.
pub(crate) enum WorkerRanges {
    /// Under a key prefix (empty, or ending in `/`) of an R2 bucket binding.
    R2 { bucket: Bucket, prefix: String },
    /// Under a base URL (ending in `/`), with `fetch` and `Range`.
    Url { base: String },
}

impl WorkerRanges {
    /// The object at `path`, or `range` of it.
    async fn read(&self, path: &str, range: Option<&Range<u64>>) -> Result<Vec<u8>, StoreError> {
        match self {
            WorkerRanges::R2 { bucket, prefix } => read_r2(bucket, prefix, path, range).await,
            WorkerRanges::Url { base } => read_url(base, path, range).await,
        }
    }
}

#[async_trait(?Send)]
impl RangeStore for WorkerRanges {
    async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        self.read(path, None).await.map(Bytes::from)
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let bytes = self.read(path, Some(&range)).await?;
        exactly(path, &range, bytes)
    }
}

/// One `get` of the bucket, ranged when `range` is given.
async fn read_r2(
    bucket: &Bucket,
    prefix: &str,
    path: &str,
    range: Option<&Range<u64>>,
) -> Result<Vec<u8>, StoreError> {
    let mut get = bucket.get(format!("{prefix}{path}"));
    if let Some(range) = range {
        get = get.range(worker::Range::OffsetWithLength {
            offset: range.start,
            length: range.end - range.start,
        });
    }
    let object = get
        .execute()
        .await
        .map_err(|e| failed(path, e))?
        .ok_or_else(|| StoreError::NotFound(path.to_string()))?;
    let body = object
        .body()
        .ok_or_else(|| failed(path, "R2 returned the object without a body"))?;
    body.bytes().await.map_err(|e| failed(path, e))
}

/// One `fetch`, with a `Range` header when `range` is given: 200 or 206 as asked, or 404.
async fn read_url(
    base: &str,
    path: &str,
    range: Option<&Range<u64>>,
) -> Result<Vec<u8>, StoreError> {
    let headers = Headers::new();
    if let Some(range) = range {
        let value = format!("bytes={}-{}", range.start, range.end - 1);
        headers.set("range", &value).map_err(|e| failed(path, e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request =
        Request::new_with_init(&format!("{base}{path}"), &init).map_err(|e| failed(path, e))?;
    let mut response = Fetch::Request(request)
        .send()
        .await
        .map_err(|e| failed(path, e))?;
    let status = response.status_code();
    let expected = if range.is_some() { 206 } else { 200 };
    if status == 404 {
        return Err(StoreError::NotFound(path.to_string()));
    }
    if status != expected {
        return Err(failed(
            path,
            format!("answered {status} where {expected} was expected"),
        ));
    }
    response.bytes().await.map_err(|e| failed(path, e))
}
