//! VastDB pass-through in the Worker. A reply the service only sends on (a request marked
//! [`PassOn`](pocaduck_edge_read::PassOn)) is asked for in HTTP/1.0, so its body is every
//! byte after the head until the server closes, never chunked. The head is read and parsed
//! here; a `200`'s body stays in the runtime, a stream the answer is made of, filled from the
//! socket in reads of up to [`READ_BYTES`]: the Worker never copies it into wasm, whatever
//! its size. The host takes it by its [`HostBody`] id ([`take`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::StreamExt;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use js_sys::{Object, Reflect, Uint8Array};
use pocaduck_edge_read::{ByteStream, HostBody, UpstreamError, UpstreamResponse};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultController, ReadableStreamReadResult};

use crate::socket::{byob_reader, js_message, open, ByobReader, Pace, READ_BYTES};
use crate::upstream::{connection_failed, within};

/// The most bytes a reply's head may take.
const HEAD_BYTES: usize = 64 << 10;
/// The most bytes of an error reply's body kept (for its message).
const ERROR_BYTES: usize = 64 << 10;
/// The bytes one read of a reply's head or error body asks for.
const SMALL_READ: u32 = 16 << 10;

thread_local! {
    /// Bodies kept for the host, by id, until it takes them.
    static BODIES: RefCell<HashMap<u64, ReadableStream>> = RefCell::new(HashMap::new());
    /// The next body's id.
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Takes the body kept as `body`, if it is still there.
pub(crate) fn take(body: HostBody) -> Option<ReadableStream> {
    BODIES.with(|bodies| bodies.borrow_mut().remove(&body.0))
}

/// Sends `request` to `host`:`port` (through TLS when `tls`) in HTTP/1.0 and reads the
/// reply's head; a `200`'s body is kept for the host, any other's read here. Each wait (the
/// request written, each read of the head, of an error body or of the kept body) is bounded
/// by `limit`; the kept body flows as fast as its client reads it.
pub(crate) async fn send(
    (host, port, tls): (&str, u16, bool),
    request: http::Request<Bytes>,
    limit: Duration,
) -> Result<UpstreamResponse, UpstreamError> {
    let socket = open(host, port, tls).map_err(connection_failed)?;
    let exchanged = exchange(&socket, request, limit).await;
    match exchanged {
        Ok(Exchanged::Whole(response)) => {
            let _ = socket.close();
            Ok(response)
        }
        Ok(Exchanged::Kept {
            response,
            reader,
            leftover,
        }) => keep(socket, reader, leftover, response, limit),
        Err(e) => {
            let _ = socket.close();
            Err(e)
        }
    }
}

/// What an exchange gave: a reply read whole, or a `200` whose body is still to come.
enum Exchanged {
    Whole(UpstreamResponse),
    Kept {
        response: http::response::Builder,
        reader: ByobReader,
        leftover: Vec<u8>,
    },
}

/// Writes `request`, reads the reply's head, and an error reply's body.
async fn exchange(
    socket: &worker::worker_sys::Socket,
    request: http::Request<Bytes>,
    limit: Duration,
) -> Result<Exchanged, UpstreamError> {
    let js = |e: JsValue| connection_failed(js_message(e));
    let writer = socket.writable().map_err(js)?.get_writer().map_err(js)?;
    let bytes = Uint8Array::from(&http10(&request)[..]);
    within(
        limit,
        "request sent",
        JsFuture::from(writer.write_with_chunk(&bytes)),
    )
    .await?
    .map_err(js)?;
    writer.release_lock();
    let reader = byob_reader(&socket.readable().map_err(js)?);
    let mut got = Vec::new();
    let end = loop {
        match within(limit, "reply", read(&reader)).await?? {
            Some(bytes) => got.extend_from_slice(&bytes),
            None => return Err(connection_failed("the reply ended inside its head")),
        }
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if got.len() > HEAD_BYTES {
            return Err(connection_failed("the reply's head is over 64 KB"));
        }
    };
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut fields);
    head.parse(&got[..end])
        .map_err(|e| connection_failed(format!("the reply's head: {e}")))?;
    let status = head.code.unwrap_or_default();
    let mut response = http::Response::builder().status(status);
    for field in head.headers.iter() {
        response = response.header(field.name, field.value);
    }
    let leftover = got[end..].to_vec();
    if status != 200 {
        let mut body = leftover;
        while body.len() < ERROR_BYTES {
            match within(limit, "reply bytes", read(&reader)).await?? {
                Some(bytes) => body.extend_from_slice(&bytes),
                None => break,
            }
        }
        let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from(body))]));
        return response
            .body(body)
            .map(Exchanged::Whole)
            .map_err(connection_failed);
    }
    if head
        .headers
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case(TRANSFER_ENCODING.as_str()) && !f.value.is_empty())
    {
        return Err(connection_failed(
            "VastDB framed the body of an HTTP/1.0 reply with a transfer encoding",
        ));
    }
    Ok(Exchanged::Kept {
        response,
        reader,
        leftover,
    })
}

/// `request` in HTTP/1.0, with its `Host` and `Content-Length`, then its body.
fn http10(request: &http::Request<Bytes>) -> Vec<u8> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!("{} {target} HTTP/1.0\r\n", request.method()).into_bytes();
    let mut field = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    if let (false, Some(authority)) = (request.headers().contains_key(HOST), uri.authority()) {
        field(b"host", authority.as_str().as_bytes());
    }
    for (name, value) in request.headers() {
        field(name.as_str().as_bytes(), value.as_bytes());
    }
    if !request.headers().contains_key(CONTENT_LENGTH) {
        field(
            b"content-length",
            request.body().len().to_string().as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(request.body());
    out
}

/// One read of whatever arrives, up to [`SMALL_READ`] bytes: `None` at the end.
async fn read(reader: &ByobReader) -> Result<Option<Vec<u8>>, UpstreamError> {
    read_view(reader, 1, SMALL_READ)
        .await
        .map(|view| view.map(|v| v.to_vec()))
}

/// One read of at least `least` bytes into a new buffer of `size`, left in the runtime.
async fn read_view(
    reader: &ByobReader,
    least: u32,
    size: u32,
) -> Result<Option<Uint8Array>, UpstreamError> {
    let view = Uint8Array::new_with_length(size);
    let result: ReadableStreamReadResult = JsFuture::from(reader.read_at_least(least, &view))
        .await
        .map_err(|e| connection_failed(js_message(e)))?
        .unchecked_into();
    if result.get_done().unwrap_or(false) {
        return Ok(None);
    }
    Ok(Some(result.get_value().unchecked_into()))
}

/// The reading of a kept body: the socket, its reader, and who waits for the end.
struct Source {
    socket: worker::worker_sys::Socket,
    reader: ByobReader,
    /// The longest wait for a read.
    limit: Duration,
    /// How much the next read waits for.
    pace: Pace,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

impl Source {
    /// Ends the body: closes the socket and tells the waiting service how it ended.
    fn finish(&mut self, how: Result<(), String>) {
        let _ = self.socket.close();
        if let Some(done) = self.done.take() {
            let _ = done.send(how);
        }
    }
}

/// Keeps a `200`'s body for the host: a stream of `leftover`, then the socket's bytes. The
/// reply's own body stream ends when that stream has.
fn keep(
    socket: worker::worker_sys::Socket,
    reader: ByobReader,
    leftover: Vec<u8>,
    response: http::response::Builder,
    limit: Duration,
) -> Result<UpstreamResponse, UpstreamError> {
    let (done, ended) = oneshot::channel();
    let source = Rc::new(RefCell::new(Source {
        socket,
        reader,
        limit,
        pace: Pace::new(true),
        done: Some(done),
    }));
    let stream = body_stream(&source, leftover).map_err(|e| {
        source.borrow_mut().finish(Err(e.clone()));
        connection_failed(e)
    })?;
    let id = NEXT_ID.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    BODIES.with(|bodies| bodies.borrow_mut().insert(id, stream));
    let body: ByteStream = Box::pin(futures::stream::once(ended).filter_map(|ended| async move {
        match ended {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(Err(UpstreamError::Connection(why))),
            Err(_) => Some(Err(connection_failed("the reply's body was dropped"))),
        }
    }));
    response
        .extension(HostBody(id))
        .body(body)
        .map_err(connection_failed)
}

/// A runtime stream of `leftover`, then of `source`'s socket until it ends.
fn body_stream(source: &Rc<RefCell<Source>>, leftover: Vec<u8>) -> Result<ReadableStream, String> {
    let first = Uint8Array::from(&leftover[..]);
    let start = Closure::once_into_js(move |controller: ReadableStreamDefaultController| {
        if first.length() > 0 {
            let _ = controller.enqueue_with_chunk(&first);
        }
    });
    let pulling = source.clone();
    let pull = Closure::<dyn FnMut(ReadableStreamDefaultController) -> js_sys::Promise>::new(
        move |controller: ReadableStreamDefaultController| {
            let source = pulling.clone();
            wasm_bindgen_futures::future_to_promise(async move {
                let (reader, least, limit) = {
                    let s = source.borrow();
                    let least = s.pace.least();
                    let reader: ByobReader = s.reader.clone().unchecked_into();
                    (reader, least, s.limit)
                };
                let read = within(limit, "reply bytes", read_view(&reader, least, READ_BYTES));
                match read.await.and_then(|read| read) {
                    Ok(Some(view)) => {
                        source.borrow_mut().pace.read(view.length());
                        controller.enqueue_with_chunk(&view)?;
                    }
                    Ok(None) => {
                        controller.close()?;
                        source.borrow_mut().finish(Ok(()));
                    }
                    Err(e) => {
                        let why = e.to_string();
                        controller.error_with_e(&JsValue::from_str(&why));
                        source.borrow_mut().finish(Err(why));
                    }
                }
                Ok(JsValue::UNDEFINED)
            })
        },
    )
    .into_js_value();
    let cancelled = source.clone();
    let cancel = Closure::once_into_js(move |_reason: JsValue| {
        cancelled
            .borrow_mut()
            .finish(Err("the client stopped reading".to_owned()));
    });
    let underlying = Object::new();
    for (name, function) in [("start", start), ("pull", pull), ("cancel", cancel)] {
        Reflect::set(&underlying, &JsValue::from_str(name), &function).map_err(js_message)?;
    }
    ReadableStream::new_with_underlying_source(&underlying).map_err(js_message)
}
