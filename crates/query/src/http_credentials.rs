//! Credentials for an `http(s)://` dataset that a pocaduck-edge server guards
//! (docs/security.md): a bearer token (`extra_config` `bearer_token`) sent as a header, and
//! a signed URL's query (`base_path`'s) carried on every request.

use async_trait::async_trait;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::ClientOptions;

/// The `extra_config` key of a bearer token for an `http(s)://` dataset.
pub const BEARER_TOKEN: &str = "bearer_token";

/// `Authorization: Bearer <token>`, marked sensitive (never in a debug print), as the
/// default headers of every request.
pub(crate) fn bearer_headers(token: &str) -> Result<HeaderMap, String> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| format!("extra_config {BEARER_TOKEN} is not a valid header value"))?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}

/// Connects object_store's HTTP client so that every request carries `query` (a signed
/// URL's parameters) after its own.
#[derive(Debug)]
pub(crate) struct SignedQuery {
    query: String,
}

impl SignedQuery {
    /// Every request to carry `query`.
    pub(crate) fn new(query: &str) -> Self {
        Self {
            query: query.to_owned(),
        }
    }
}

impl HttpConnector for SignedQuery {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(WithQuery {
            inner: ReqwestConnector::default().connect(options)?,
            query: self.query.clone(),
        }))
    }
}

/// An HTTP client that appends `query` to each request's.
#[derive(Debug)]
struct WithQuery {
    inner: HttpClient,
    query: String,
}

#[async_trait]
impl HttpService for WithQuery {
    async fn call(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        *request.uri_mut() = with_query(request.uri(), &self.query)
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
        self.inner.execute(request).await
    }
}

/// `uri` with `query` after its own query.
fn with_query(uri: &http::Uri, query: &str) -> Result<http::Uri, http::Error> {
    let path_and_query = match uri.query().filter(|q| !q.is_empty()) {
        Some(own) => format!("{}?{own}&{query}", uri.path()),
        None => format!("{}?{query}", uri.path()),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse()?);
    Ok(http::Uri::from_parts(parts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_follows_the_requests_own() {
        let signed = "expires=9&kid=k1&prefix=%2Fv1%2F&sig=abc";
        let bare: http::Uri = "http://127.0.0.1:8080/v1/datasets/d/files/manifest.json"
            .parse()
            .unwrap();
        assert_eq!(
            with_query(&bare, signed).unwrap().to_string(),
            format!("{bare}?{signed}")
        );
        let own: http::Uri = "https://h/v1/x?a=1".parse().unwrap();
        assert_eq!(
            with_query(&own, signed).unwrap().to_string(),
            format!("https://h/v1/x?a=1&{signed}")
        );
    }

    #[test]
    fn a_token_is_a_sensitive_bearer_header() {
        let headers = bearer_headers("t0k3n").unwrap();
        assert_eq!(headers[AUTHORIZATION], "Bearer t0k3n");
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(!format!("{headers:?}").contains("t0k3n"));
        assert!(bearer_headers("line\nbreak").is_err());
    }
}
