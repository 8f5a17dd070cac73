//! VastDB through the Workers runtime's TCP sockets (`connect()`), HTTP/1.1 by hyper: a
//! VastDB query is a `GET` with a body, which the runtime's `fetch` refuses to send. The reply
//! body is streamed as it arrives, in the socket's reads (`socket`); every wait is bounded by
//! the read timeout. A reply the service only sends on is read by `pass_on` instead, its
//! body left in the runtime.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use http::header::{HeaderValue, CONNECTION, HOST};
use http_body_util::{BodyExt, Full};
use pocaduck_edge_read::{ByteStream, PassOn, Task, Upstream, UpstreamError, UpstreamResponse};
use worker::Delay;

use crate::pass_on;
use crate::socket::SocketIo;

/// Sends each request on a connection of its own.
pub(crate) struct SocketUpstream {
    read_timeout: Duration,
}

impl SocketUpstream {
    /// Waits at most `read_timeout` for the connection, the reply's head and each of its
    /// body's chunks: a socket read, of up to [`READ_BYTES`](crate::socket::READ_BYTES)
    /// while the reply flows.
    pub(crate) fn new(read_timeout: Duration) -> Self {
        Self { read_timeout }
    }
}

/// A connection's failure, with its message.
pub(crate) fn connection_failed(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Connection(e.to_string())
}

/// `future`'s output, unless `limit` passes first. The timer starts only when the output is
/// not ready at once.
pub(crate) async fn within<F: Future>(
    limit: Duration,
    what: &str,
    future: F,
) -> Result<F::Output, UpstreamError> {
    let mut future = std::pin::pin!(future);
    if let Some(output) = future.as_mut().now_or_never() {
        return Ok(output);
    }
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
        let uri = request.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| connection_failed("the request names no host"))?;
        let tls = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let limit = self.read_timeout;
        if request.extensions().get::<PassOn>().is_some() {
            return pass_on::send((host, port, tls), request, limit).await;
        }
        let (mut parts, body) = request.into_parts();
        let socket = SocketIo::connect(host, port, tls).map_err(connection_failed)?;
        let (mut sender, connection) = within(
            limit,
            "connection",
            hyper::client::conn::http1::handshake(socket),
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
        // The server closes the connection after the reply, which ends the socket's last read
        // (each waits for `READ_BYTES`, or the end) when fewer bytes remain.
        parts
            .headers
            .insert(CONNECTION, HeaderValue::from_static("close"));
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

    /// Runs `task` past the answer of the request it is started for (`background`).
    fn spawn(&self, task: Task) -> Option<Task> {
        crate::background::spawn(task)
    }
}
