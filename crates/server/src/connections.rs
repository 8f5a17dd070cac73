//! The connections of `serve`: accepting from the shared socket under a cap, serving each
//! with hyper under time limits, and draining them on shutdown within a bound.
//!
//! * **Connections**: at most [`ConnectionLimits::max_connections`] at once across the
//!   threads. At the cap a thread stops accepting (as nginx does once its
//!   `worker_connections` are taken): new connections wait in the kernel's listen queue
//!   until one closes.
//! * **Heads**: a request's head must arrive whole within
//!   [`ConnectionLimits::header_timeout`] of the server starting to wait for it: from the
//!   connection's start, or the end of the previous answer on a kept-alive connection, so
//!   a connection idle that long is closed too (hyper's header timer).
//! * **Bodies**: a request body whose next bytes take longer than
//!   [`ConnectionLimits::body_timeout`] is cut (the service answers 400).
//! * **Requests**: at most [`ConnectionLimits::max_requests`] in progress at once (an
//!   answer is in progress until its body ends); others wait for a turn. A request not
//!   answered in full within [`ConnectionLimits::request_timeout`] is cut: its connection
//!   is closed.
//! * **HTTP/2** over cleartext (prior knowledge) only when [`ConnectionLimits::h2c`] is set;
//!   otherwise a connection speaks HTTP/1.1 alone.
//! * **Shutdown**: once `stop` resolves, no connection is accepted, idle ones close, and
//!   requests in progress finish; connections still open after
//!   [`ConnectionLimits::shutdown_timeout`] are dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

/// An error that ends a body or a request early (hyper then closes the connection).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bounds on connections and requests (`serve`'s flags, docs/cli.md).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once, across threads.
    pub max_connections: usize,
    /// Requests in progress at once, across threads.
    pub max_requests: usize,
    /// The longest wait for a request's whole head (and so for an idle connection's next
    /// request).
    pub header_timeout: Duration,
    /// The longest wait for a request body's next bytes.
    pub body_timeout: Duration,
    /// The longest a request may take, from its head to its answer's last byte.
    pub request_timeout: Duration,
    /// The longest wait, once stopped, for requests in progress to finish.
    pub shutdown_timeout: Duration,
    /// Serve HTTP/2 over cleartext to clients that open with its preface.
    pub h2c: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_requests: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            shutdown_timeout: Duration::from_secs(30),
            h2c: false,
        }
    }
}

/// The flags of [`ConnectionLimits`] (`serve`'s, docs/cli.md).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionFlags {
    /// Most connections open at once; beyond it, new ones wait in the listen queue.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most requests in progress at once; beyond it, requests wait for a turn.
    #[arg(long, default_value_t = ConnectionLimits::default().max_requests as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests: u32,
    /// Seconds for a request's head to arrive whole (and for an idle connection's next one).
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds to wait for a request body's next bytes.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::default().body_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Seconds a request may take, from its head to its answer's last byte.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::default().request_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Seconds to let requests in progress finish once stopped (Ctrl-C, SIGTERM).
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::default().shutdown_timeout.as_secs())]
    pub shutdown_timeout: u64,
    /// Serve HTTP/2 over cleartext (prior knowledge) too.
    #[arg(long)]
    pub h2c: bool,
}

impl ConnectionFlags {
    /// The limits these flags set.
    pub fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections as usize,
            max_requests: self.max_requests as usize,
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            request_timeout: Duration::from_secs(self.request_timeout),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            h2c: self.h2c,
        }
    }
}

/// What every thread shares: the limits, the permits of the two caps, and the gauge of
/// open connections.
#[derive(Clone)]
pub(crate) struct Shared {
    limits: Arc<ConnectionLimits>,
    connections: Arc<Semaphore>,
    requests: Arc<Semaphore>,
    open: Gauge,
}

impl Shared {
    /// The caps of `limits`, shared by every thread given a clone, counting open
    /// connections in `open`.
    pub(crate) fn new(limits: ConnectionLimits, open: Gauge) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            requests: Arc::new(Semaphore::new(limits.max_requests.max(1))),
            limits: Arc::new(limits),
            open,
        }
    }
}

/// Counts a connection as open while it lives.
struct Open(Gauge);

impl Open {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The HTTP/2 client preface, which a prior-knowledge h2c connection opens with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `app` on the listener (on this thread's runtime) until `stop` resolves, then
/// drains its connections within the shutdown bound.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shared: Shared,
    stop: impl Future<Output = ()>,
) {
    let (closing, closed) = watch::channel(false);
    let mut open = JoinSet::new();
    tokio::pin!(stop);
    loop {
        // At the cap, stop accepting until a connection closes.
        let permit = tokio::select! {
            permit = shared.connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut stop => break,
            Some(_) = open.join_next(), if !open.is_empty() => continue,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted:
                    // wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Streamed answers go out in several writes: without TCP_NODELAY a small one waits
        // for the client's delayed ACK (up to 40 ms).
        let _ = stream.set_nodelay(true);
        open.spawn(connection(
            stream,
            app.clone(),
            shared.clone(),
            closed.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(shared.limits.shutdown_timeout, async {
        while open.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = open.len(),
            "connections still open after the shutdown timeout are dropped"
        );
        open.abort_all();
    }
}

/// Serves one connection until it closes, or, once `closed` turns true, until its request
/// in progress ends. Holds `_permit` (one of the connection cap's) while it runs.
async fn connection(
    stream: tokio::net::TcpStream,
    app: axum::Router,
    shared: Shared,
    mut closed: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _open = Open::new(&shared.open);
    let limits = shared.limits.clone();
    let h2 = limits.h2c && opens_with_h2_preface(&stream, limits.header_timeout).await;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        answer(app.clone(), shared.clone(), request)
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closed.wait_for(|closed| *closed) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Whether the client's first bytes are the HTTP/2 preface (false once they differ from
/// it, at the end of the stream, or when they do not come within `timeout`).
async fn opens_with_h2_preface(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return false;
        }
        if n == H2_PREFACE.len() {
            return true;
        }
        // Part of the preface: peek again once more may have come.
        tokio::time::sleep(Duration::from_millis(10)).await;
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// One request: a turn under the request cap, its body read under the body timeout, and
/// its answer under the request deadline.
async fn answer(
    app: axum::Router,
    shared: Shared,
    request: http::Request<Incoming>,
) -> Result<http::Response<Timed<axum::body::Body>>, BoxError> {
    let deadline = Instant::now() + shared.limits.request_timeout;
    let turn = tokio::time::timeout_at(deadline, shared.requests.clone().acquire_owned())
        .await
        .map_err(|_| "no turn to answer within the request timeout")?
        .map_err(|_| "the server is stopping")?;
    let body_timeout = shared.limits.body_timeout;
    let request = request.map(|body| axum::body::Body::new(Stalling::new(body, body_timeout)));
    let response = tokio::time::timeout_at(deadline, tower::ServiceExt::oneshot(app, request))
        .await
        .map_err(|_| "not answered within the request timeout")?
        .unwrap_or_else(|never| match never {});
    Ok(response.map(|body| Timed {
        body,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        _turn: turn,
    }))
}

/// A request body cut when its next bytes take longer than `timeout`.
struct Stalling<B> {
    body: B,
    timeout: Duration,
    wait: Option<Pin<Box<Sleep>>>,
}

impl<B> Stalling<B> {
    fn new(body: B, timeout: Duration) -> Self {
        Self {
            body,
            timeout,
            wait: None,
        }
    }
}

impl<B> HttpBody for Stalling<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.wait = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let wait = this
                    .wait
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match wait.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                        "no bytes of the body for {} s",
                        timeout.as_secs_f64()
                    )
                    .into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body, cut at the request's deadline, holding its request's turn until it
/// ends.
struct Timed<B> {
    body: B,
    deadline: Pin<Box<Sleep>>,
    _turn: OwnedSemaphorePermit,
}

impl<B> HttpBody for Timed<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err("the answer overran the request timeout".into())));
        }
        Pin::new(&mut this.body)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
