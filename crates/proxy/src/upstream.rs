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
pub struct UpstreamResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: ByteStream,
}

impl UpstreamResponse {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends requests to a VastDB endpoint.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Upstream: MaybeSend {
    /// Sends `method url` with `headers` and `body` (a `GET` may carry one) and returns once
    /// the status and headers are in.
    async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<UpstreamResponse, UpstreamError>;

    /// Waits `ms` milliseconds (between retries).
    async fn sleep(&self, ms: u64);
}
