//! The IO trait for VastDB: send one signed request, get a status, headers and a streamed
//! body. Hosts implement it (reqwest natively, `fetch` in the Worker); timeouts are theirs.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use crate::store::MaybeSend;

/// Why an upstream request failed below HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No answer (or no next body bytes) within the host's time limit.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection could not be made or broke.
    #[error("connection failed: {0}")]
    Connection(String),
}

/// The body of an upstream reply, as it arrives.
#[cfg(not(target_arch = "wasm32"))]
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send + 'static>>;
/// The body of an upstream reply, as it arrives.
#[cfg(target_arch = "wasm32")]
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + 'static>>;

/// An upstream reply whose body has not been read yet.
pub type UpstreamResponse = http::Response<ByteStream>;

/// Sends requests to a VastDB endpoint.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Upstream: MaybeSend {
    /// Sends `request` (its URI absolute; a `GET` may carry a body) and returns once the
    /// status and headers are in.
    async fn send(&self, request: http::Request<Bytes>) -> Result<UpstreamResponse, UpstreamError>;

    /// Waits `ms` milliseconds (between retries).
    async fn sleep(&self, ms: u64);
}
