//! Building answers: JSON bodies, error bodies, streamed bodies and the headers the API
//! adds (`Server-Timing`, the point count).

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use pocaduck_edge_read::Timing;

use crate::body::{Body, ChunkStream};
use crate::error::ApiError;

/// The header of a points answer that gives its number of points before they arrive, so a
/// client can size its output once; absent when unknown when the answer starts (a `bbox`
/// filter over a streamed answer, or a VastDB table's streamed answer).
pub const POINT_COUNT: &str = "pocaduck-point-count";

/// A header value the service made (always ASCII).
pub(super) fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("generated header values are ASCII")
}

/// Sets [`POINT_COUNT`] when the count is known.
pub(super) fn set_point_count(headers: &mut HeaderMap, count: Option<u64>) {
    if let Some(count) = count {
        headers.insert(POINT_COUNT, HeaderValue::from(count));
    }
}

/// Sets `Server-Timing`, and keeps the timing in the answer's extensions for the log.
pub(super) fn set_timing(r: &mut Response<Body>, timing: &Timing) {
    r.headers_mut()
        .insert("server-timing", header_value(&timing.header()));
    r.extensions_mut().insert(timing.clone());
}

/// A JSON answer.
pub(super) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::Full(Bytes::from(
        serde_json::to_vec(value).expect("JSON values serialise"),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A streamed answer of `content_type`: the chunks of `head`, then those `rest` yields
/// (an `Err` ends the body early).
pub(super) fn streamed(
    content_type: &'static str,
    head: Vec<Bytes>,
    rest: impl futures::Stream<Item = Result<Vec<Bytes>, ApiError>> + MaybeSendStatic,
    timing: &Timing,
) -> Response<Body> {
    use futures::StreamExt;
    let body: ChunkStream = Box::pin(
        futures::stream::iter([Ok(head)])
            .chain(rest)
            .flat_map(crate::body::chunks),
    );
    let mut r = Response::new(Body::Stream(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    set_timing(&mut r, timing);
    r
}

/// `Send + 'static` on native hosts, `'static` on wasm: what a streamed body may hold.
#[cfg(not(target_arch = "wasm32"))]
pub(super) trait MaybeSendStatic: Send + 'static {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + 'static> MaybeSendStatic for T {}
/// `Send + 'static` on native hosts, `'static` on wasm: what a streamed body may hold.
#[cfg(target_arch = "wasm32")]
pub(super) trait MaybeSendStatic: 'static {}
#[cfg(target_arch = "wasm32")]
impl<T: 'static> MaybeSendStatic for T {}

/// The JSON answer of an error of request `request_id`.
pub(super) fn error_response(e: &ApiError, request_id: &str) -> Response<Body> {
    let mut r = Response::new(Body::Full(Bytes::from(e.to_json(request_id))));
    *r.status_mut() = e.status;
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in &e.headers {
        headers.insert(name.clone(), value.clone());
    }
    r
}
