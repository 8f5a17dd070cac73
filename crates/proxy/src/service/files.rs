//! Raw files of an edge-layout dataset: the manifest and the files it names, whole or one
//! `Range`, with ETags and conditional requests.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use pocaduck_edge_core::manifest::DataFile;
use pocaduck_edge_read::Dataset;

use super::respond::header_value;
use super::{Answer, Service};
use crate::body::Body;
use crate::error::ApiError;
use crate::files::{none_match, parse_range};

impl Service {
    /// `GET`/`HEAD …/files/{path}`: a file the manifest names, whole or one range, with
    /// its ETag.
    pub(super) async fn edge_file(
        &self,
        d: &Dataset,
        path: &str,
        headers: &HeaderMap,
        head: bool,
    ) -> Answer {
        let name = &d.name;
        let l = d.loaded(self.clock.as_ref()).await?;
        // Only the files the manifest names are served: no path outside the dataset can match.
        let file = if path == "manifest.json" {
            None
        } else {
            let f = l
                .manifest
                .all_files()
                .find(|f| f.path == path)
                .ok_or_else(|| {
                    ApiError::not_found(format!("no file {path:?} in dataset {name}"))
                })?;
            Some(f)
        };
        let (size, etag) = match file {
            None => (l.manifest_bytes.len() as u64, l.manifest_etag.clone()),
            Some(f) => (f.size, f.etag.clone()),
        };
        let mut r = Response::new(Body::Empty);
        let h = r.headers_mut();
        h.insert(header::ETAG, header_value(&format!("\"{etag}\"")));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        if none_match(
            headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok()),
            &etag,
        ) {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            return Ok(r);
        }
        let range_header = headers
            .get(header::RANGE)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::bad_request("Range is not ASCII"))
            })
            .transpose()?;
        let range = parse_range(range_header, size).map_err(|e| {
            if e.status == StatusCode::RANGE_NOT_SATISFIABLE {
                e.with_header(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{size}")),
                )
            } else {
                e
            }
        })?;
        let whole = 0..size;
        let span = range.clone().unwrap_or(whole);
        if let Some(rg) = &range {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{size}", rg.start, rg.end - 1)),
            );
        }
        r.headers_mut().insert(
            header::CONTENT_LENGTH,
            header_value(&(span.end - span.start).to_string()),
        );
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if path.ends_with(".json") {
                "application/json"
            } else {
                "application/octet-stream"
            }),
        );
        if head || span.is_empty() {
            return Ok(r);
        }
        *r.body_mut() = match file {
            None => Body::Full(
                l.manifest_bytes
                    .slice(span.start as usize..span.end as usize),
            ),
            Some(f) => file_body(d, f, span).await?,
        };
        Ok(r)
    }
}

/// Bytes per step of a streamed file body.
const FILE_STEP_BYTES: u64 = 8 << 20;

/// Bytes `span` of a dataset's file as a body: fetched now when small (so a failure gets a
/// status), else streamed in steps of [`FILE_STEP_BYTES`]. A whole file is checked against
/// its hash ([`Dataset::read_range`], [`Dataset::stream_range`]).
async fn file_body(
    d: &Dataset,
    file: &DataFile,
    span: std::ops::Range<u64>,
) -> Result<Body, ApiError> {
    if span.end - span.start <= FILE_STEP_BYTES {
        return Ok(Body::Full(d.read_range(file, span).await?));
    }
    let steps = d.stream_range(file, span, FILE_STEP_BYTES);
    Ok(Body::Stream(Box::pin(futures::StreamExt::map(
        steps,
        |step| step.map_err(ApiError::from),
    ))))
}
