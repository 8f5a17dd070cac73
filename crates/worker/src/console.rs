//! The Worker's log: each failure on the server's side to `console.error`, where `wrangler
//! tail` and the dashboard's logs show it, under the request id its answer names.

use http::Method;
use pocaduck_edge_proxy::{ApiError, ErrorLog};

/// Logs to `console.error`.
pub(crate) struct ConsoleLog;

impl ErrorLog for ConsoleLog {
    fn failed(&self, request_id: &str, method: &Method, path: &str, error: &ApiError) {
        let detail = error.detail.as_deref().unwrap_or(&error.message);
        worker::console_error!(
            "request {request_id} {method} {path}: {} {}: {detail}",
            error.status.as_u16(),
            error.code
        );
    }
}
