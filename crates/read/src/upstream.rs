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

/// Work a host runs in the background, beside its requests.
#[cfg(not(target_arch = "wasm32"))]
pub type Task = Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;
/// Work a host runs in the background, beside its requests.
#[cfg(target_arch = "wasm32")]
pub type Task = Pin<Box<dyn std::future::Future<Output = ()> + 'static>>;

/// An upstream reply whose body has not been read yet.
pub type UpstreamResponse = http::Response<ByteStream>;

/// The mark, in a request's extensions, of a reply whose body the caller only sends on
/// unchanged (VastDB pass-through): an [`Upstream`] may then keep the body to itself, in the
/// host's own form, and mark the reply with [`HostBody`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassOn;

/// The mark, in a reply's extensions, of a body the [`Upstream`] kept to itself for the host
/// to send on as it is, named by the host's id for it. The reply's [`ByteStream`] then carries
/// no bytes: it ends once the host's body has been sent, or with the error that stopped it.
/// An upstream that never sets it lets its bytes through the body stream as usual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostBody(pub u64);

/// Sends requests to a VastDB endpoint.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Upstream: MaybeSend {
    /// Sends `request` (its URI absolute; a `GET` may carry a body) and returns once the
    /// status and headers are in. A request marked [`PassOn`] may get a 200 reply marked
    /// [`HostBody`].
    async fn send(&self, request: http::Request<Bytes>) -> Result<UpstreamResponse, UpstreamError>;

    /// Waits `ms` milliseconds (between retries).
    async fn sleep(&self, ms: u64);

    /// Runs `task` to its end in the background, beside the requests (a refresh of a cached
    /// list, the rollback of a transaction whose reader was dropped before its end), or
    /// hands it back when the host cannot: the caller then runs it itself or leaves it.
    fn spawn(&self, task: Task) -> Option<Task> {
        Some(task)
    }
}
