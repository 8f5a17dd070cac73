//! A VastDB endpoint played from a script: each request the service sends gets the next
//! reply (a connection failure, a timeout, an answer), the last one again once the script
//! runs out; nothing goes over a socket, and retries do not wait.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use pocaduck_edge_read::{ByteStream, Upstream, UpstreamError, UpstreamResponse};

/// One reply of a [`ScriptedUpstream`].
#[derive(Debug, Clone)]
pub enum Reply {
    /// The connection fails (`UpstreamError::Connection`) with this message.
    ConnectionFailed(String),
    /// Nothing comes in time (`UpstreamError::Timeout`), with this message.
    TimedOut(String),
    /// An answer, its body in one piece.
    Answer {
        /// The status.
        status: u16,
        /// The headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Bytes,
    },
}

impl Reply {
    /// An S3-style error answer: `<Error><Code>code</Code><Message>message</Message></Error>`.
    pub fn s3_error(status: u16, code: &str, message: &str) -> Self {
        Reply::Answer {
            status,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: Bytes::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
            )),
        }
    }

    /// `503 SlowDown`, as VastDB refuses a request to slow its client down.
    pub fn slow_down() -> Self {
        Self::s3_error(503, "SlowDown", "Please reduce your request rate.")
    }

    /// `403 SignatureDoesNotMatch`, as VastDB answers a request signed with the wrong keys.
    pub fn signature_does_not_match() -> Self {
        Self::s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    }
}

/// A request the service sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its method.
    pub method: http::Method,
    /// Its absolute URI.
    pub uri: http::Uri,
    /// Its headers (signed).
    pub headers: http::HeaderMap,
}

/// An [`Upstream`] that plays a script of replies.
#[derive(Debug)]
pub struct ScriptedUpstream {
    script: Mutex<VecDeque<Reply>>,
    last: Reply,
    sent: Mutex<Vec<Sent>>,
    slept_ms: Mutex<Vec<u64>>,
}

impl ScriptedUpstream {
    /// Replies in the order given, the last one to every request after. Panics on an empty
    /// script.
    pub fn new(replies: impl IntoIterator<Item = Reply>) -> Self {
        let script: VecDeque<Reply> = replies.into_iter().collect();
        let last = script
            .back()
            .cloned()
            .expect("a script of one reply or more");
        Self {
            script: Mutex::new(script),
            last,
            sent: Mutex::new(Vec::new()),
            slept_ms: Mutex::new(Vec::new()),
        }
    }

    /// The requests sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The waits asked for so far (between retries), in milliseconds.
    pub fn slept_ms(&self) -> Vec<u64> {
        self.slept_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl Upstream for ScriptedUpstream {
    async fn send(&self, request: http::Request<Bytes>) -> Result<UpstreamResponse, UpstreamError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Sent {
                method: request.method().clone(),
                uri: request.uri().clone(),
                headers: request.headers().clone(),
            });
        let reply = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or_else(|| self.last.clone());
        match reply {
            Reply::ConnectionFailed(m) => Err(UpstreamError::Connection(m)),
            Reply::TimedOut(m) => Err(UpstreamError::Timeout(m)),
            Reply::Answer {
                status,
                headers,
                body,
            } => {
                let stream: ByteStream = Box::pin(futures::stream::iter([Ok(body)]));
                let mut response = http::Response::builder().status(status);
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                Ok(response.body(stream).expect("a valid scripted answer"))
            }
        }
    }

    async fn sleep(&self, ms: u64) {
        self.slept_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ms);
    }
}
