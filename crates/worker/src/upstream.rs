//! VastDB through the Workers runtime's TCP sockets (`connect()`), HTTP/1.1 by hyper: a
//! VastDB query is a `GET` with a body, which the runtime's `fetch` refuses to send. The reply
//! body is streamed as it arrives; every wait is bounded by the read timeout.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use http::header::{HeaderValue, HOST};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use pocaduck_edge_read::{ByteStream, Upstream, UpstreamError, UpstreamResponse};
use worker::{Delay, SecureTransport, Socket};

/// Sends each request on a connection of its own.
pub(crate) struct SocketUpstream {
    read_timeout: Duration,
}

impl SocketUpstream {
    /// Waits at most `read_timeout` for the connection, the reply's head and each of its
    /// body's chunks.
    pub(crate) fn new(read_timeout: Duration) -> Self {
        Self { read_timeout }
    }
}

fn connection_failed(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Connection(e.to_string())
}

/// `future`'s output, unless `limit` passes first.
async fn within<F: Future>(
    limit: Duration,
    what: &str,
    future: F,
) -> Result<F::Output, UpstreamError> {
    let future = std::pin::pin!(future);
    let delay = std::pin::pin!(Delay::from(limit));
    match futures::future::select(future, delay).await {
        futures::future::Either::Left((output, _)) => Ok(output),
        futures::future::Either::Right(_) => Err(UpstreamError::Timeout(format!(
            "no {what} within {} s",
            limit.as_secs_f64()
        ))),
    }
}

/// `stream`, ending with a timeout error when its next item takes longer than `limit`.
fn timed(
    stream: impl Stream<Item = Result<Bytes, UpstreamError>> + 'static,
    limit: Duration,
) -> ByteStream {
    let state = (Box::pin(stream), false);
    Box::pin(futures::stream::unfold(
        state,
        move |(mut stream, ended)| async move {
            if ended {
                return None;
            }
            match within(limit, "reply bytes", stream.next()).await {
                Ok(Some(item)) => {
                    let ended = item.is_err();
                    Some((item, (stream, ended)))
                }
                Ok(None) => None,
                Err(timeout) => Some((Err(timeout), (stream, true))),
            }
        },
    ))
}

#[async_trait(?Send)]
impl Upstream for SocketUpstream {
    async fn send(&self, request: http::Request<Bytes>) -> Result<UpstreamResponse, UpstreamError> {
        let (mut parts, body) = request.into_parts();
        let uri = parts.uri.clone();
        let host = uri
            .host()
            .ok_or_else(|| connection_failed("the request names no host"))?;
        let tls = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let socket = Socket::builder()
            .secure_transport(if tls {
                SecureTransport::On
            } else {
                SecureTransport::Off
            })
            .connect(host, port)
            .map_err(connection_failed)?;
        let limit = self.read_timeout;
        let (mut sender, connection) = within(
            limit,
            "connection",
            hyper::client::conn::http1::handshake(TokioIo::new(socket)),
        )
        .await?
        .map_err(connection_failed)?;
        // The connection's IO runs beside the reply's reading, until the reply is read.
        wasm_bindgen_futures::spawn_local(async move {
            let _closed = connection.await;
        });
        // HTTP/1.1 in origin form, with the `Host` the signature covers.
        if let Some(authority) = uri.authority() {
            let host = HeaderValue::from_str(authority.as_str()).map_err(connection_failed)?;
            parts.headers.entry(HOST).or_insert(host);
        }
        parts.uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(connection_failed)?;
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = within(limit, "reply", sender.send_request(request))
            .await?
            .map_err(connection_failed)?;
        let (parts, incoming) = response.into_parts();
        let body = incoming.into_data_stream().map_err(connection_failed);
        Ok(http::Response::from_parts(parts, timed(body, limit)))
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
