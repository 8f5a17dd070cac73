//! A TCP connection from the Workers runtime's `connect()` as hyper's IO, over the socket's
//! JS streams. While bytes flow, they are read with a BYOB reader's `readAtLeast` (workerd's),
//! which gathers [`READ_BYTES`] in the runtime before the Worker sees them: the runtime reads
//! a socket [`RUNTIME_READ`] bytes at a time, and each read that reaches the Worker costs it
//! far more than its bytes. After a read that found less than that, the next one takes
//! whatever arrives, so a reply that pauses (VastDB's keep-alives) is seen as it trickles and
//! every wait stays bounded by the caller's timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ReadableStreamByobReader, ReadableStreamGetReaderOptions, ReadableStreamReadResult,
    ReadableStreamReaderMode, WritableStreamDefaultWriter,
};
use worker::worker_sys;

/// The bytes a read waits for while bytes flow, unless the stream ends first.
pub(crate) const READ_BYTES: u32 = 256 << 10;
/// The most bytes the runtime hands over in one read of its own: a read that finds less
/// than this found the socket idle.
const RUNTIME_READ: u32 = 4 << 10;

/// How much the next read of a socket waits for: [`READ_BYTES`] while bytes flow, whatever
/// arrives after a read that found the socket idle (less than [`RUNTIME_READ`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    flowing: bool,
}

impl Pace {
    /// A pace starting as if bytes flowed (`true`) or the socket were idle.
    pub(crate) fn new(flowing: bool) -> Self {
        Self { flowing }
    }

    /// The bytes the next read waits for.
    pub(crate) fn least(self) -> u32 {
        if self.flowing {
            READ_BYTES
        } else {
            1
        }
    }

    /// Takes in a read that found `bytes`.
    pub(crate) fn read(&mut self, bytes: u32) {
        self.flowing = bytes >= RUNTIME_READ;
    }
}

#[wasm_bindgen]
extern "C" {
    /// A BYOB reader, with workerd's `readAtLeast`.
    #[wasm_bindgen(extends = ReadableStreamByobReader)]
    pub(crate) type ByobReader;

    /// Reads into `view`'s buffer (which it detaches) at least `min_bytes`, or fewer when the
    /// stream ends: `{ value, done }`, `value` a view of the same memory.
    #[wasm_bindgen(method, js_name = readAtLeast)]
    pub(crate) fn read_at_least(this: &ByobReader, min_bytes: u32, view: &Uint8Array) -> Promise;
}

/// A JS failure's message.
pub(crate) fn js_message(value: JsValue) -> String {
    match value.dyn_into::<js_sys::Error>() {
        Ok(error) => String::from(error.to_string()),
        Err(value) => value.as_string().unwrap_or_else(|| format!("{value:?}")),
    }
}

/// A TCP connection to `host`:`port` from the runtime's `connect()`, through its TLS when
/// `tls`.
pub(crate) fn open(host: &str, port: u16, tls: bool) -> Result<worker_sys::Socket, String> {
    let object = |fields: [(&str, JsValue); 2]| {
        let object = Object::new();
        for (name, value) in fields {
            Reflect::set(&object, &JsValue::from_str(name), &value).map_err(js_message)?;
        }
        Ok::<JsValue, String>(object.into())
    };
    let address = object([
        ("hostname", JsValue::from_str(host)),
        ("port", JsValue::from(port)),
    ])?;
    let options = object([
        ("allowHalfOpen", JsValue::FALSE),
        (
            "secureTransport",
            JsValue::from_str(if tls { "on" } else { "off" }),
        ),
    ])?;
    worker_sys::connect(address, options).map_err(js_message)
}

/// A BYOB reader of `readable`.
pub(crate) fn byob_reader(readable: &web_sys::ReadableStream) -> ByobReader {
    let options = ReadableStreamGetReaderOptions::new();
    options.set_mode(ReadableStreamReaderMode::Byob);
    readable.get_reader_with_options(&options).unchecked_into()
}

/// One connection, closed when dropped.
pub(crate) struct SocketIo {
    socket: worker_sys::Socket,
    reader: ByobReader,
    writer: WritableStreamDefaultWriter,
    /// The view the next read fills.
    buffer: Uint8Array,
    /// The read under way.
    reading: Option<JsFuture>,
    /// Bytes read that hyper has not taken yet: `chunk[taken..]`.
    chunk: Vec<u8>,
    taken: usize,
    /// Whether the socket's readable side has ended.
    ended: bool,
    /// How much the next read waits for.
    pace: Pace,
    /// The write under way, and its length.
    writing: Option<(JsFuture, usize)>,
    /// The closing of the writable side, under way.
    closing: Option<JsFuture>,
}

fn io_error(value: JsValue) -> io::Error {
    io::Error::other(js_message(value))
}

impl SocketIo {
    /// Connects to `host`:`port`, through the runtime's TLS when `tls`.
    pub(crate) fn connect(host: &str, port: u16, tls: bool) -> Result<Self, String> {
        let socket = open(host, port, tls)?;
        let reader = byob_reader(&socket.readable().map_err(js_message)?);
        let writer = socket
            .writable()
            .map_err(js_message)?
            .get_writer()
            .map_err(js_message)?;
        Ok(Self {
            socket,
            reader,
            writer,
            buffer: Uint8Array::new_with_length(READ_BYTES),
            reading: None,
            chunk: Vec::new(),
            taken: 0,
            ended: false,
            pace: Pace::new(false),
            writing: None,
            closing: None,
        })
    }

    /// Waits for the write under way, if any: its length.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((future, len)) = &mut self.writing else {
            return Poll::Ready(Ok(0));
        };
        let written = ready!(Pin::new(future).poll(cx));
        let len = *len;
        self.writing = None;
        Poll::Ready(written.map(|_| len).map_err(io_error))
    }
}

impl Read for SocketIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.taken == this.chunk.len() && !this.ended {
            let least = this.pace.least();
            let future = this.reading.get_or_insert_with(|| {
                JsFuture::from(this.reader.read_at_least(least, &this.buffer))
            });
            let read = ready!(Pin::new(future).poll(cx));
            this.reading = None;
            let read: ReadableStreamReadResult = read.map_err(io_error)?.unchecked_into();
            if read.get_done().unwrap_or(false) {
                this.ended = true;
            } else {
                let view: Uint8Array = read.get_value().unchecked_into();
                this.pace.read(view.length());
                this.chunk = view.to_vec();
                this.taken = 0;
                this.buffer = Uint8Array::new(&view.buffer());
            }
        }
        let end = this.chunk.len().min(this.taken + buf.remaining());
        buf.put_slice(&this.chunk[this.taken..end]);
        this.taken = end;
        Poll::Ready(Ok(()))
    }
}

impl Write for SocketIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.writing.is_none() {
            let chunk = Uint8Array::from(buf);
            let future = JsFuture::from(this.writer.write_with_chunk(&chunk));
            this.writing = Some((future, buf.len()));
        }
        this.poll_written(cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_written(cx).map_ok(|_| ())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_written(cx))?;
        let future = this
            .closing
            .get_or_insert_with(|| JsFuture::from(this.writer.close()));
        Pin::new(future).poll(cx).map_ok(|_| ()).map_err(io_error)
    }
}

impl Drop for SocketIo {
    /// Closes both sides, and so ends a read under way.
    fn drop(&mut self) {
        let _ = self.socket.close();
    }
}
