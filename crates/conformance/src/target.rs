//! What the checks send requests to: a host over HTTP, or the service in-process.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pocaduck_edge_proxy::Service;

/// How long one request may take, answer included, before the check fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A host serving the read API.
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// Sends `request` and returns its whole answer. The request's URI is a path and query
    /// (`/v1/datasets?…`), sent exactly as written (`..` and `%2e%2e` segments included);
    /// the target adds the rest. Panics when no answer comes (a transport failure, or a
    /// body that breaks off), which fails the check.
    async fn send(&self, request: http::Request<Bytes>) -> http::Response<Bytes>;
}

/// A host at a base URL (`http://127.0.0.1:8080`, or with a path prefix), over HTTP.
///
/// Requests go through reqwest (`http://` and `https://`), except those whose path its URL
/// parser would rewrite (dot segments, as in the path-escape checks): those are written as
/// given on one HTTP/1.1 connection, which needs an `http://` base (`wrangler dev` and the
/// native server on loopback are).
#[derive(Debug, Clone)]
pub struct HttpTarget {
    base: reqwest::Url,
    client: reqwest::Client,
}

impl HttpTarget {
    /// The host at `base`. Panics on a base that is not an absolute URL.
    pub fn new(base: &str) -> Self {
        let base = reqwest::Url::parse(base.trim_end_matches('/'))
            .unwrap_or_else(|e| panic!("{base:?} is not a base URL: {e}"));
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("builds an HTTP client");
        Self { base, client }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `path_and_query` under the base's path.
    fn target_path(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base.path().trim_end_matches('/'))
    }

    /// Sends `request` to `target` (a path and query) exactly as written, over a connection
    /// of its own.
    async fn send_as_written(
        &self,
        mut request: http::Request<Bytes>,
        target: &str,
    ) -> http::Response<Bytes> {
        assert_eq!(
            self.base.scheme(),
            "http",
            "{target}: a request target sent as written needs an http:// base"
        );
        let host = self.base.host_str().expect("a base URL has a host");
        let port = self.base.port_or_known_default().expect("http has a port");
        let authority = match self.base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        *request.uri_mut() = target.parse().expect("a valid request target");
        request.headers_mut().insert(
            http::header::HOST,
            authority.parse().expect("a valid host header"),
        );
        let exchange = async {
            let stream = tokio::net::TcpStream::connect((host, port)).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            let connection = tokio::spawn(connection);
            let response = sender.send_request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            drop(sender);
            let _ = connection.await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(http::Response::from_parts(
                parts, body,
            ))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => panic!("{target}: {e}"),
            Err(_) => panic!("{target}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }
}

#[async_trait::async_trait]
impl Target for HttpTarget {
    async fn send(&self, request: http::Request<Bytes>) -> http::Response<Bytes> {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let target = self.target_path(&path_and_query);
        let url = self
            .base
            .join(&target)
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        let as_given = self.target_path(request.uri().path());
        if url.path() != as_given {
            return self.send_as_written(request, &target).await;
        }
        let (mut parts, body) = request.into_parts();
        parts.uri = url.as_str().parse().expect("a URL is a URI");
        let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        let response = self
            .client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        let mut answer = http::Response::builder()
            .status(response.status())
            .version(response.version());
        *answer.headers_mut().expect("a new builder") = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{target}: the body broke off: {e}"));
        answer.body(body).expect("a valid response")
    }
}

/// The service itself, handed each request in this process (no socket): the host is
/// whatever IO its [`pocaduck_edge_proxy::ServiceConfig`] was given.
#[derive(Clone)]
pub struct InProcess {
    service: Arc<Service>,
}

impl InProcess {
    /// Requests go to `service`.
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    /// The service.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }
}

#[async_trait::async_trait]
impl Target for InProcess {
    async fn send(&self, request: http::Request<Bytes>) -> http::Response<Bytes> {
        let what = format!("{} {}", request.method(), request.uri());
        let response = self.service.handle(request.map(Full::new)).await;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{what}: the body broke off: {e}"))
            .to_bytes();
        http::Response::from_parts(parts, body)
    }
}
