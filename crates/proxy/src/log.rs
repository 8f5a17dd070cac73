//! What the service tells the host's log: one record of each request served, and each
//! failure on the server's side with its details, under the request id that the client's
//! answer names (`x-request-id`, and `request_id` in an error body), so an operator can
//! find one from the other. A record names the path alone: never the query (which may
//! carry a signature) or a header (which may carry a token).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http::Method;
use pocaduck_edge_read::{Clock, MaybeSend};

use crate::body::ChunkStream;
use crate::error::ApiError;

/// The header naming the request in every answer.
pub const REQUEST_ID: &str = "x-request-id";

/// The host's log (`tracing` natively, `console` on the Worker).
pub trait RequestLog: MaybeSend {
    /// Request `request_id` (`method path`) failed with `error`: a 5xx, whose
    /// [`ApiError::detail`] the client was not told, or a streamed answer that broke off.
    fn failed(&self, request_id: &str, method: &Method, path: &str, error: &ApiError);

    /// Request `record.request_id` was served: once its answer's body has ended (sent
    /// whole, broken off, or dropped by a client gone away).
    fn served(&self, record: &RequestRecord);
}

/// One request as served, for the host's log and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// The id its answer names.
    pub request_id: String,
    /// Its method.
    pub method: Method,
    /// Its path, without the query.
    pub path: String,
    /// The route it took (`points`, `label`, `files`, …; `unknown` for no route).
    pub route: &'static str,
    /// The dataset it named, if any.
    pub dataset: Option<String>,
    /// The answer's status.
    pub status: u16,
    /// The body bytes handed to the host.
    pub bytes: u64,
    /// Milliseconds from the request to its answer's end.
    pub duration_ms: f64,
    /// Milliseconds spent waiting on stores or VastDB (for a streamed answer, up to its
    /// first piece).
    pub upstream_ms: f64,
    /// Index pages found in the cache.
    pub cache_hits: u64,
    /// Index pages read from the store, not found in the cache.
    pub cache_misses: u64,
    /// Whether the body went out to its end (false: broken off, or dropped unfinished).
    pub complete: bool,
}

/// A streamed body that counts its bytes and records the request once it ends or is
/// dropped.
pub(crate) struct Counted {
    stream: ChunkStream,
    record: Option<RequestRecord>,
    started_ms: f64,
    log: Arc<dyn RequestLog>,
    clock: Arc<dyn Clock>,
}

impl Counted {
    /// `stream`, to record as `record` (its bytes counted from 0) in `log` once it ends.
    pub(crate) fn new(
        stream: ChunkStream,
        record: RequestRecord,
        started_ms: f64,
        log: Arc<dyn RequestLog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            stream,
            record: Some(record),
            started_ms,
            log,
            clock,
        }
    }

    /// Records the request, once.
    fn record(&mut self, complete: bool) {
        if let Some(mut record) = self.record.take() {
            record.complete = complete;
            record.duration_ms = self.clock.now_ms() - self.started_ms;
            self.log.served(&record);
        }
    }
}

impl Stream for Counted {
    type Item = Result<Bytes, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.stream.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(record) = self.record.as_mut() {
                    record.bytes += chunk.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => self.record(false),
            Poll::Ready(None) => self.record(true),
            Poll::Pending => {}
        }
        next
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.record(false);
    }
}

/// Request ids: a per-service seed (from the clock at start) and a counter, hashed into 16
/// hex digits, so ids from different instances and restarts do not repeat each other.
#[derive(Debug)]
pub(crate) struct RequestIds {
    seed: u64,
    next: AtomicU64,
}

impl RequestIds {
    /// Ids seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            next: AtomicU64::new(0),
        }
    }

    /// The next id.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.seed.to_le_bytes());
        bytes[8..].copy_from_slice(&n.to_le_bytes());
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_by_request_and_by_seed() {
        let (a, b) = (RequestIds::new(1), RequestIds::new(2));
        let from_a: Vec<String> = (0..1000).map(|_| a.next()).collect();
        let mut distinct = from_a.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 1000);
        assert!(from_a.iter().all(|id| id.len() == 16));
        assert_ne!(RequestIds::new(1).next(), b.next());
        assert_eq!(
            RequestIds::new(1).next(),
            from_a[0],
            "ids are a function of the seed"
        );
    }
}
