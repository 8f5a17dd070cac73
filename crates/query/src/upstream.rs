//! The VastDB upstream over reqwest: requests as the SDK sends them (a `GET` may carry a
//! body, no compression asked), with connect and idle-read time limits.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use pocaduck_edge_read::{ByteStream, Task, Upstream, UpstreamError, UpstreamResponse};
use thread_local::ThreadLocal;

use crate::error::{Error, Result};

/// reqwest as the reader's upstream, with a client per thread: a connection's reads then
/// stay on the thread whose runtime consumes them.
pub struct HttpUpstream {
    read: Duration,
    clients: ThreadLocal<reqwest::Client>,
}

/// The longest wait for a connection to VastDB.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpUpstream {
    /// A client that gives up connecting after 10 s and waiting for bytes after `read`.
    pub fn new(read: Duration) -> Result<Self> {
        let upstream = Self {
            read,
            clients: ThreadLocal::new(),
        };
        upstream.client()?;
        Ok(upstream)
    }

    /// This thread's client.
    fn client(&self) -> Result<&reqwest::Client> {
        self.clients.get_or_try(|| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(self.read)
                .build()
                .map_err(|e| Error::Runtime(format!("building the HTTP client: {e}")))
        })
    }
}

fn classify(e: reqwest::Error) -> UpstreamError {
    // The message never holds credentials: they travel only in the Authorization header.
    let message = e.to_string();
    if e.is_timeout() {
        UpstreamError::Timeout(message)
    } else {
        UpstreamError::Connection(message)
    }
}

#[async_trait]
impl Upstream for HttpUpstream {
    async fn send(&self, request: http::Request<Bytes>) -> Result<UpstreamResponse, UpstreamError> {
        let client = self
            .client()
            .map_err(|e| UpstreamError::Connection(e.to_string()))?;
        let (parts, body) = request.into_parts();
        let mut request = client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers);
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request.send().await.map_err(classify)?;
        let (status, headers) = (response.status(), response.headers().clone());
        let body: ByteStream = Box::pin(response.bytes_stream().map_err(classify));
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Spawns `task` on the runtime of the calling thread, if it runs in one.
    fn spawn(&self, task: Task) -> Option<Task> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(task);
                None
            }
            Err(_) => Some(task),
        }
    }
}
