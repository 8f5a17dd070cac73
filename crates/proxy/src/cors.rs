//! CORS: an allowlist of origins (per dataset under an access configuration,
//! [`crate::access`]); plain GETs (with a single bounded `Range`) need no
//! preflight, and the headers a range reader needs are exposed.

use http::header::{HeaderMap, HeaderValue};

/// Headers a browser script may read from our responses.
pub const EXPOSED: &str =
    "Content-Range, Content-Length, ETag, Accept-Ranges, Server-Timing, Pocaduck-Point-Count, Pocaduck-Reply-Schema, Pocaduck-Reply-Sub-Splits, X-Request-Id";
/// Methods answered to a preflight.
pub const METHODS: &str = "GET, HEAD, POST, OPTIONS";
/// Request headers allowed by a preflight.
pub const ALLOWED_HEADERS: &str = "Range, If-None-Match, Content-Type, Authorization";

/// Which origins may read responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// Allows the listed origins; `*` allows any.
    pub fn new(origins: Vec<String>) -> Self {
        Self { origins }
    }

    /// The origins allowed, as given.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    fn allow(&self, origin: &str) -> Option<HeaderValue> {
        if self.origins.iter().any(|o| o == "*") {
            Some(HeaderValue::from_static("*"))
        } else if self.origins.iter().any(|o| o == origin) {
            HeaderValue::from_str(origin).ok()
        } else {
            None
        }
    }

    /// Adds the CORS headers of a response to a request from `origin`.
    pub fn apply(&self, origin: Option<&str>, headers: &mut HeaderMap, preflight: bool) {
        headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
        let Some(allowed) = origin.and_then(|o| self.allow(o)) else {
            return;
        };
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
        if preflight {
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                http::header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
        }
    }
}
