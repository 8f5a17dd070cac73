//! The read API as one service: an HTTP request in, a response out (docs/api.md). A host
//! hands every request to [`Service::handle`] and sends back what it returns; the service
//! reads the body up to its limit, routes, answers errors as JSON with a request id, logs
//! failures on the server's side and a record of every request through the host's
//! [`RequestLog`], refuses callers the [`Access`] does not let read a dataset, and adds the
//! CORS of the answer's dataset.
//!
//! * [`routes`]: the one route table, and the listing;
//! * [`edge`]: the handlers of edge-layout datasets; [`files`], their raw files;
//! * [`vast`]: the handlers of VastDB tables;
//! * [`neuroglancer`]: every dataset as a neuroglancer precomputed annotation source;
//! * [`encoder`]: the encoders of points answers; [`respond`]: answers and headers.

mod edge;
mod encoder;
mod files;
mod neuroglancer;
mod respond;
mod routes;
mod vast;

use std::sync::Arc;

use bytes::Bytes;
use http::header;
use http::{Method, Request, Response, StatusCode};
use pocaduck_edge_read::{Clock, Dataset, RangeStore, VastSource};

use crate::access::{Access, Credentials};
use crate::body::Body;
use crate::budget::AnswerBudget;
use crate::error::ApiError;
use crate::log::{Counted, RequestIds, RequestLog, RequestRecord, REQUEST_ID};
use respond::{error_response, header_value};

pub use respond::POINT_COUNT;
pub use vast::{REPLY_SCHEMA, REPLY_SUB_SPLITS, VASTDB_REPLY};

/// Per-request limits; exceeding one answers 413 naming it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Labels in one `POST …/points`.
    pub max_labels: usize,
    /// Points in one answer that must be held whole (npy and JSON filtered by a `bbox`;
    /// npy, JSON and Parquet from a VastDB table); streamed answers have no such limit.
    pub max_points: u64,
    /// Bytes of a request body.
    pub max_body_bytes: usize,
    /// Bytes the points answers in flight hold in memory together ([`crate::budget`]);
    /// an answer waits until its share is free.
    pub max_answer_bytes: u64,
    /// Points answers that may wait for [`Limits::max_answer_bytes`] at once; one more is
    /// refused with 503 `busy`.
    pub max_waiting_answers: usize,
}

impl Limits {
    /// The defaults, for `const` items: `Limits { max_labels: 5, ..Limits::DEFAULT }`.
    pub const DEFAULT: Limits = Limits {
        max_labels: 10_000,
        max_points: 50_000_000,
        max_body_bytes: 1 << 20,
        max_answer_bytes: 256 << 20,
        max_waiting_answers: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the service serves and how.
pub struct ServiceConfig {
    /// Datasets by name, each with its store.
    pub datasets: Vec<(String, Arc<dyn RangeStore>)>,
    /// VastDB tables served as datasets.
    pub vast: Vec<VastSource>,
    /// Who may read each dataset, and from which origins ([`Access::open`]: anyone, from
    /// one allowlist of origins).
    pub access: Access,
    /// Request limits.
    pub limits: Limits,
    /// The host's clock.
    pub clock: Arc<dyn Clock>,
    /// The host's log, told of every request and the details of each failure on the
    /// server's side.
    pub log: Arc<dyn RequestLog>,
}

/// The read API, shared by every host.
pub struct Service {
    datasets: Vec<Arc<Dataset>>,
    vast: Vec<Arc<VastSource>>,
    access: Access,
    limits: Limits,
    budget: AnswerBudget,
    clock: Arc<dyn Clock>,
    log: Arc<dyn RequestLog>,
    request_ids: RequestIds,
    refusal: Option<ApiError>,
    ng_extents: neuroglancer::ExtentsCache,
}

/// The answer to one request, before the request id and CORS headers.
type Answer = Result<Response<Body>, ApiError>;

/// Where a dataset's data is.
enum Source<'a> {
    /// An edge-layout dataset.
    Edge(&'a Arc<Dataset>),
    /// A VastDB table.
    Vast(&'a Arc<VastSource>),
}

impl Service {
    /// A service over `config`'s datasets.
    pub fn new(config: ServiceConfig) -> Self {
        let datasets = config
            .datasets
            .into_iter()
            .map(|(name, store)| Arc::new(Dataset::new(name, store)))
            .collect();
        Self {
            datasets,
            vast: config.vast.into_iter().map(Arc::new).collect(),
            access: config.access,
            budget: AnswerBudget::new(
                config.limits.max_answer_bytes,
                config.limits.max_waiting_answers,
            ),
            limits: config.limits,
            request_ids: RequestIds::new(
                config.clock.unix_seconds() ^ config.clock.now_ms().to_bits(),
            ),
            clock: config.clock,
            log: config.log,
            refusal: None,
            ng_extents: neuroglancer::ExtentsCache::default(),
        }
    }

    /// The bytes the points answers in flight hold, and the answers waiting for theirs.
    pub fn budget(&self) -> &AnswerBudget {
        &self.budget
    }

    /// The service answering every request but preflights with `error` (logged as any
    /// 5xx): a host whose configuration failed still answers, with a request id and CORS.
    pub fn refusing(mut self, error: ApiError) -> Self {
        self.refusal = Some(error);
        self
    }

    /// Answers one request. Never fails: errors become JSON error responses naming the
    /// request id, and a 5xx's details go to the host's log under that id. Every answer
    /// carries the id and the CORS headers, and is recorded in the host's log once its
    /// body ends.
    ///
    /// The request body is read here, up to [`Limits::max_body_bytes`] (beyond: 413).
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = self.request_ids.next();
        let started_ms = self.clock.now_ms();
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (method, path) = (request.method().clone(), request.uri().path().to_string());
        let preflight = method == Method::OPTIONS;
        // Preflights carry no credentials: they are answered whatever the dataset.
        let dataset = routes::describe(&path).1.map(str::to_owned);
        let credentials = Credentials::of(request.headers(), request.uri().query());
        let access = match (&dataset, preflight) {
            (Some(ds), false) => {
                self.access
                    .check(ds, &path, &credentials, self.clock.unix_seconds())
            }
            _ => Ok(()),
        };
        let granted = !preflight && access.is_ok();
        let answer = if preflight {
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        } else {
            self.answer(request, access).await
        };
        let response = answer.unwrap_or_else(|e| {
            if e.is_server_error() {
                self.log.failed(&request_id, &method, &path, &e);
            }
            error_response(&e, &request_id)
        });
        let record = self.record(&request_id, &method, &path, &response);
        let mut response = response.map(|body| match body {
            // A streamed answer that breaks off is logged under the request's id too.
            Body::Stream(stream) => {
                let (log, id) = (self.log.clone(), request_id.clone());
                Body::Stream(Box::pin(futures::StreamExt::inspect(
                    stream,
                    move |chunk| {
                        if let Err(e) = chunk {
                            log.failed(&id, &method, &path, e);
                        }
                    },
                )))
            }
            whole => whole,
        });
        // A streamed answer is recorded at its end; one held whole as it is handed over.
        response = response.map(|body| match body {
            Body::Stream(stream) => Body::Stream(Box::pin(Counted::new(
                stream,
                record,
                started_ms,
                self.log.clone(),
                self.clock.clone(),
            ))),
            whole => {
                self.log.served(&RequestRecord {
                    bytes: http_body::Body::size_hint(&whole).exact().unwrap_or(0),
                    duration_ms: self.clock.now_ms() - started_ms,
                    complete: true,
                    ..record
                });
                whole
            }
        });
        response
            .headers_mut()
            .insert(REQUEST_ID, header_value(&request_id));
        self.access
            .restrict_caching(dataset.as_deref(), response.headers_mut());
        self.access.cors(dataset.as_deref(), granted).apply(
            origin.as_deref(),
            response.headers_mut(),
            preflight,
        );
        response
    }

    /// The record of request `request_id` answered `response`, before its body is sent.
    fn record(
        &self,
        request_id: &str,
        method: &Method,
        path: &str,
        response: &Response<Body>,
    ) -> RequestRecord {
        let (route, dataset) = routes::describe(path);
        let timing = response.extensions().get::<pocaduck_edge_read::Timing>();
        RequestRecord {
            request_id: request_id.to_owned(),
            method: method.clone(),
            path: path.to_owned(),
            route,
            dataset: dataset.map(str::to_owned),
            status: response.status().as_u16(),
            bytes: 0,
            duration_ms: 0.0,
            upstream_ms: timing.map_or(0.0, |t| t.fetch),
            cache_hits: timing.map_or(0, |t| t.cache_hits),
            cache_misses: timing.map_or(0, |t| t.cache_misses),
            complete: false,
        }
    }

    /// The answer to a request other than a preflight, `access` its dataset's check: its
    /// body read, then routed.
    async fn answer<B>(&self, request: Request<B>, access: Result<(), ApiError>) -> Answer
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(refusal) = &self.refusal {
            return Err(refusal.clone());
        }
        access?;
        let request = self.read_body(request).await?;
        self.route(request).await
    }

    /// The request with its body read whole, up to the limit.
    async fn read_body<B>(&self, request: Request<B>) -> Result<Request<Bytes>, ApiError>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let max = self.limits.max_body_bytes;
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, max))
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::too_large(format!("the body is over the limit of {max} bytes"))
                } else {
                    ApiError::bad_request(format!("the body could not be read: {e}"))
                }
            })?
            .to_bytes();
        Ok(Request::from_parts(parts, body))
    }

    /// The dataset or table named `name`.
    fn source(&self, name: &str) -> Result<Source<'_>, ApiError> {
        if let Some(v) = self.vast.iter().find(|v| v.name == name) {
            return Ok(Source::Vast(v));
        }
        self.datasets
            .iter()
            .find(|d| d.name == name)
            .map(Source::Edge)
            .ok_or_else(|| ApiError::not_found(format!("no dataset {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;
    use crate::cors::CorsPolicy;

    struct FixedClock;

    impl Clock for FixedClock {
        fn now_ms(&self) -> f64 {
            0.0
        }
        fn unix_seconds(&self) -> u64 {
            1_700_000_000
        }
    }

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl RequestLog for Lines {
        fn failed(&self, request_id: &str, _: &Method, path: &str, error: &ApiError) {
            let line = format!("{request_id} {path} {}", error.code);
            self.0.lock().unwrap().push(line);
        }

        fn served(&self, _: &RequestRecord) {}
    }

    fn service(log: Arc<Lines>) -> Service {
        Service::new(ServiceConfig {
            datasets: Vec::new(),
            vast: Vec::new(),
            access: Access::open(CorsPolicy::new(vec!["https://viewer.example".into()])),
            limits: Limits {
                max_body_bytes: 8,
                ..Limits::default()
            },
            clock: Arc::new(FixedClock),
            log,
        })
    }

    fn post<B>(body: B) -> Request<B> {
        Request::post("/v1/datasets/d/points")
            .header(header::ORIGIN, "https://viewer.example")
            .body(body)
            .unwrap()
    }

    /// An error answer's status, code and request id, after checking that it carries the
    /// id in its header and CORS.
    fn error_of(response: Response<Body>) -> (StatusCode, String) {
        let status = response.status();
        let headers = response.headers().clone();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://viewer.example"
        );
        let body = futures::executor::block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json["error"]["request_id"],
            headers[REQUEST_ID].to_str().unwrap()
        );
        (status, json["error"]["code"].as_str().unwrap().to_owned())
    }

    #[test]
    fn a_body_over_the_limit_or_unreadable_is_refused_as_any_error() {
        let log = Arc::new(Lines::default());
        let service = service(log.clone());
        let over =
            futures::executor::block_on(service.handle(post(Full::new(Bytes::from("123456789")))));
        assert_eq!(
            error_of(over),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large".to_owned())
        );
        let broken = futures::stream::iter([
            Ok(http_body::Frame::data(Bytes::from("{"))),
            Err(std::io::Error::other("connection reset")),
        ]);
        let unread = futures::executor::block_on(service.handle(post(StreamBody::new(broken))));
        assert_eq!(
            error_of(unread),
            (StatusCode::BAD_REQUEST, "bad_request".to_owned())
        );
        // Refusing a request is not a failure of the server's: nothing is logged.
        assert!(log.0.lock().unwrap().is_empty());
        // Within the limit, the body reaches the route: no such dataset.
        let within =
            futures::executor::block_on(service.handle(post(Full::new(Bytes::from("{}")))));
        assert_eq!(
            error_of(within),
            (StatusCode::NOT_FOUND, "not_found".to_owned())
        );
    }

    #[test]
    fn a_refusing_service_answers_every_request_503_and_logs_the_detail() {
        let log = Arc::new(Lines::default());
        let detail = "VASTDB_SECRET_KEY is not set".to_owned();
        let service =
            service(log.clone()).refusing(ApiError::misconfigured("VASTDB_SECRET_KEY", detail));
        let get = Request::get("/v1/datasets")
            .header(header::ORIGIN, "https://viewer.example")
            .body(Full::new(Bytes::new()))
            .unwrap();
        for request in [get, post(Full::new(Bytes::from("{}")))] {
            let answer = futures::executor::block_on(service.handle(request));
            assert_eq!(
                error_of(answer),
                (StatusCode::SERVICE_UNAVAILABLE, "misconfigured".to_owned())
            );
        }
        let lines = log.0.lock().unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines.iter().all(|l| l.ends_with(" misconfigured")),
            "{lines:?}"
        );
        // A preflight is still answered.
        let preflight = Request::options("/v1/datasets")
            .header(header::ORIGIN, "https://viewer.example")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let answer = futures::executor::block_on(service.handle(preflight));
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    }
}
