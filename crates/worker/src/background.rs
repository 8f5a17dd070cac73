//! Work that runs past a request's answer. The runtime does a request's IO in that request's
//! context, and cancels what is left of it once the answer has been sent or the client has
//! gone, unless `waitUntil` covers it. So what runs for a request (the service's handling,
//! its answer's body, the tasks these start) runs with that [`Request`] as the current one;
//! a task the service spawns ([`spawn`]) is handed to the current request's `waitUntil`; and
//! each request keeps its context until its answer's body has ended or been dropped, so that
//! what a dropped body starts (the rollback of its transaction) is covered too.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures::channel::oneshot;
use pocaduck_edge_read::Task;
use wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::Context as JsContext;

thread_local! {
    /// The request whose work is running.
    static CURRENT: RefCell<Option<Request>> = const { RefCell::new(None) };
}

/// One request's context, which its background work runs in.
#[derive(Clone)]
pub(crate) struct Request(Rc<JsContext>);

impl Request {
    /// The request of the fetch event `ctx`.
    pub(crate) fn new(ctx: &worker::Context) -> Self {
        let ctx: &JsValue = ctx.as_ref().as_ref();
        Self(Rc::new(ctx.clone().unchecked_into()))
    }

    /// `future`, run as this request's work.
    pub(crate) fn run<T: Future + Unpin>(&self, future: T) -> Current<T> {
        Current {
            request: self.clone(),
            inner: Some(future),
            ended: None,
        }
    }

    /// `body`, sent as this request's answer: the request's context is kept until the body
    /// has ended or been dropped.
    pub(crate) fn answer<B>(&self, body: B) -> Current<B> {
        let (ended, waiting) = oneshot::channel::<()>();
        self.wait_until(async move {
            let _ended = waiting.await;
        });
        Current {
            request: self.clone(),
            inner: Some(body),
            ended: Some(ended),
        }
    }

    /// Runs `future` to its end beside the request's answer (`waitUntil`), as this request's
    /// work; where the runtime refuses (the request's context is gone), as far as it lets it.
    pub(crate) fn wait_until(&self, future: impl Future<Output = ()> + 'static) {
        let future = self.run(Box::pin(future));
        let promise = wasm_bindgen_futures::future_to_promise(async move {
            future.await;
            Ok(JsValue::UNDEFINED)
        });
        // The future runs once the promise is made; refused, it runs uncovered.
        let _refused = self.0.wait_until(&promise);
    }
}

/// Runs `task` as the current request's work past its answer (`waitUntil`), or hands it back
/// when no request's work is running.
pub(crate) fn spawn(task: Task) -> Option<Task> {
    match CURRENT.with(|current| current.borrow().clone()) {
        Some(request) => {
            request.wait_until(task);
            None
        }
        None => Some(task),
    }
}

/// `inner` (a future or an answer's body), polled and dropped with its request as the
/// current one, so that what it starts runs in that request's context.
pub(crate) struct Current<T> {
    request: Request,
    inner: Option<T>,
    /// An answer's: dropped once the body has been dropped, which ends the request's wait.
    ended: Option<oneshot::Sender<()>>,
}

impl<T> Current<T> {
    /// `f` of the inner value, with the request current.
    fn enter<R>(&mut self, f: impl FnOnce(&mut Option<T>) -> R) -> R {
        let previous = CURRENT.with(|current| current.replace(Some(self.request.clone())));
        let output = f(&mut self.inner);
        CURRENT.with(|current| *current.borrow_mut() = previous);
        output
    }
}

impl<T> Drop for Current<T> {
    fn drop(&mut self) {
        self.enter(|inner| drop(inner.take()));
        drop(self.ended.take());
    }
}

impl<T: Future + Unpin> Future for Current<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T::Output> {
        self.enter(|inner| Pin::new(inner.as_mut().expect("polled after its end")).poll(cx))
    }
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for Current<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        self.enter(|inner| match inner {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            |body| body.size_hint(),
        )
    }
}
