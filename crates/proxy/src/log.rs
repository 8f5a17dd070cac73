//! What the service tells the host's log: each failure on the server's side with its
//! details, under the request id that the client's answer names (`x-request-id`, and
//! `request_id` in an error body), so an operator can find one from the other.

use std::sync::atomic::{AtomicU64, Ordering};

use http::Method;
use pocaduck_edge_read::MaybeSend;

use crate::error::ApiError;

/// The header naming the request in every answer.
pub const REQUEST_ID: &str = "x-request-id";

/// The host's log (`tracing` natively, `console` on the Worker).
pub trait ErrorLog: MaybeSend {
    /// Request `request_id` (`method path`) failed with `error`: a 5xx, whose
    /// [`ApiError::detail`] the client was not told, or a streamed answer that broke off.
    fn failed(&self, request_id: &str, method: &Method, path: &str, error: &ApiError);
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
