//! API errors: a status, a stable code and a message, sent as
//! `{"error": {code, message, request_id}}`.
//!
//! [`From<ReadError>`](ApiError#impl-From<ReadError>-for-ApiError) is the one place a
//! reading failure gets its status. A 5xx answer says only a generic line: what went wrong
//! inside (store messages, upstream URLs, bucket, schema or table paths) stays in
//! [`ApiError::detail`], which the service hands to the host's log with the request id.

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use pocaduck_edge_read::ReadError;

use crate::formats::FormatError;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for the client: the request's own terms, never internals.
    pub message: String,
    /// What went wrong inside, for the operator's log; never sent.
    pub detail: Option<String>,
    /// Headers the answer carries besides the JSON body's (e.g. a 416's `Content-Range`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    /// The same error, its answer carrying header `name: value` too.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A server-side failure: `message` is generic, `detail` goes to the log only.
    fn server(status: StatusCode, code: &'static str, message: &str, detail: String) -> Self {
        Self {
            detail: Some(detail),
            ..Self::new(status, code, message)
        }
    }

    /// 400: a malformed label.
    pub fn bad_label(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_label", message)
    }

    /// 400: an unknown or malformed option or body.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: a dataset that needs a credential, asked without one ([`crate::access`]).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a credential that does not grant the dataset asked for.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such route, dataset, label or file.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405: the route exists, the method does not.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }

    /// 503: the host could not configure the service. `setting` names what to fix (a
    /// variable's or flag's name, never its value); `detail` goes to the log only.
    pub fn misconfigured(setting: &str, detail: String) -> Self {
        Self::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "misconfigured",
            &format!("the service is misconfigured: {setting} (its log has the details)"),
            detail,
        )
    }

    /// 503 with `Retry-After: 1`: the service is at a configured bound of work in flight
    /// ([`crate::budget`]); the request may be made again shortly.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// 413: over a configured limit (the message names it).
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 416: a `Range` outside the file.
    pub fn range_not_satisfiable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            message,
        )
    }

    /// Whether this is a failure on the server's side (5xx), whose detail is logged.
    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }

    /// The JSON body, naming the request.
    pub fn to_json(&self, request_id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"error": {
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        }}))
        .expect("an error always serialises")
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        let detail = e.to_string();
        match e {
            ReadError::NotFound { .. } => Self::not_found(detail),
            ReadError::BadRequest { message } => Self::bad_request(message),
            ReadError::TooLarge { message } => Self::too_large(message),
            ReadError::Unavailable { dataset, .. } => Self::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "dataset_unavailable",
                &format!("dataset {dataset} is unavailable"),
                detail,
            ),
            ReadError::UpstreamFailed { .. } => Self::server(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "the upstream store failed",
                detail,
            ),
            ReadError::TimedOut { .. } => Self::server(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the upstream store did not answer in time",
                detail,
            ),
            _ => Self::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
                detail,
            ),
        }
    }
}

impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        ReadError::internal(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every category: its status and code, and a 5xx's message free of the detail.
    #[test]
    fn a_status_per_category_and_no_internals_in_5xx_messages() {
        let secret = "s3://private-bucket/schema/table at http://10.1.2.3:9000/?data";
        let cases = [
            (
                ReadError::NotFound {
                    what: "label 5 in dataset d".into(),
                },
                404,
                "not_found",
            ),
            (ReadError::bad_request("bad filter"), 400, "bad_request"),
            (
                ReadError::TooLarge {
                    message: "over 3 labels".into(),
                },
                413,
                "too_large",
            ),
            (
                ReadError::unavailable("d", secret),
                503,
                "dataset_unavailable",
            ),
            (ReadError::upstream(secret), 502, "upstream_error"),
            (
                ReadError::TimedOut {
                    detail: secret.into(),
                },
                504,
                "upstream_timeout",
            ),
            (ReadError::internal(secret), 500, "internal"),
        ];
        for (read, status, code) in cases {
            let api = ApiError::from(read.clone());
            assert_eq!((api.status.as_u16(), api.code), (status, code), "{read:?}");
            let body = String::from_utf8(api.to_json("r1")).unwrap();
            if api.is_server_error() {
                assert!(!body.contains("private-bucket"), "{body}");
                assert!(!body.contains("10.1.2.3"), "{body}");
                assert_eq!(api.detail.as_deref(), Some(read.to_string().as_str()));
            } else {
                assert!(api.detail.is_none());
            }
            assert!(body.contains("\"request_id\":\"r1\""), "{body}");
        }
        assert!(ApiError::from(ReadError::bad_request("bad filter"))
            .to_json("r")
            .windows(10)
            .any(|w| w == b"bad filter"));
    }
}
