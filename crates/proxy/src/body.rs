//! Response bodies: whole bytes, or a stream of chunks for large answers.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use crate::error::ApiError;

/// A stream of body chunks; an `Err` ends the body early (the host aborts the response).
#[cfg(not(target_arch = "wasm32"))]
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send + 'static>>;
/// A stream of body chunks; an `Err` ends the body early (the host aborts the response).
#[cfg(target_arch = "wasm32")]
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + 'static>>;

/// The chunks of one step of an answer, as items of a [`ChunkStream`] (empty ones dropped).
pub fn chunks(
    step: Result<Vec<Bytes>, ApiError>,
) -> futures::stream::Iter<std::vec::IntoIter<Result<Bytes, ApiError>>> {
    let items: Vec<_> = match step {
        Ok(chunks) => chunks
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(Ok)
            .collect(),
        Err(e) => vec![Err(e)],
    };
    futures::stream::iter(items)
}

/// A response body.
pub enum Body {
    /// No body (HEAD, 304).
    Empty,
    /// All of it.
    Full(Bytes),
    /// Produced chunk by chunk.
    Stream(ChunkStream),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => write!(f, "Body::Empty"),
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::Stream(_) => write!(f, "Body::Stream"),
        }
    }
}
