//! Response bodies: whole bytes, or a stream of chunks for large answers. [`Body`] is an
//! [`http_body::Body`], so a host hands it to its HTTP stack as it is.

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

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = ApiError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, ApiError>>> {
        use std::task::Poll;
        match &mut *self {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => {
                let bytes = std::mem::take(bytes);
                *self = Body::Empty;
                Poll::Ready((!bytes.is_empty()).then(|| Ok(http_body::Frame::data(bytes))))
            }
            Body::Stream(stream) => stream
                .as_mut()
                .poll_next(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(http_body::Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_empty(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Empty => http_body::SizeHint::with_exact(0),
            Body::Full(bytes) => http_body::SizeHint::with_exact(bytes.len() as u64),
            Body::Stream(_) => http_body::SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn collect(body: Body) -> Result<Vec<u8>, ApiError> {
        futures::executor::block_on(body.collect()).map(|c| c.to_bytes().to_vec())
    }

    #[test]
    fn every_kind_of_body_yields_its_bytes_and_a_stream_its_error() {
        assert_eq!(collect(Body::Empty).unwrap(), b"");
        assert_eq!(
            collect(Body::Full(Bytes::from_static(b"abc"))).unwrap(),
            b"abc"
        );
        let parts = [Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))];
        let stream: ChunkStream = Box::pin(futures::stream::iter(parts));
        assert_eq!(collect(Body::Stream(stream)).unwrap(), b"abc");
        let broken = [
            Ok(Bytes::from_static(b"ab")),
            Err(ApiError::bad_request("cut")),
        ];
        let stream: ChunkStream = Box::pin(futures::stream::iter(broken));
        assert_eq!(collect(Body::Stream(stream)).unwrap_err().message, "cut");
        let full = Body::Full(Bytes::from_static(b"abcd"));
        assert_eq!(http_body::Body::size_hint(&full).exact(), Some(4));
    }
}
