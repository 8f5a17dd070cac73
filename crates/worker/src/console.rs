//! The Worker's log: a line per request to `console.log`, and each failure on the server's
//! side to `console.error`, where `wrangler tail` and the dashboard's logs show them, under
//! the request id its answer names.

use http::Method;
use pocaduck_edge_proxy::{ApiError, RequestLog, RequestRecord};

/// Logs to the console.
pub(crate) struct ConsoleLog;

impl RequestLog for ConsoleLog {
    fn served(&self, r: &RequestRecord) {
        worker::console_log!(
            "served request_id={} method={} path={} route={} dataset={} status={} bytes={} duration_ms={:.3} upstream_ms={:.3} cache_hits={} cache_misses={} complete={}",
            r.request_id,
            r.method,
            r.path,
            r.route,
            r.dataset.as_deref().unwrap_or("-"),
            r.status,
            r.bytes,
            r.duration_ms,
            r.upstream_ms,
            r.cache_hits,
            r.cache_misses,
            r.complete
        );
    }

    fn failed(&self, request_id: &str, method: &Method, path: &str, error: &ApiError) {
        let detail = error.detail.as_deref().unwrap_or(&error.message);
        worker::console_error!(
            "request {request_id} {method} {path}: {} {}: {detail}",
            error.status.as_u16(),
            error.code
        );
    }
}
