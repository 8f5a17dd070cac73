//! The server's Prometheus metrics, at `GET /metrics` (OpenMetrics text): requests by route
//! and status, bytes sent, request durations, upstream failures, index page cache hits and
//! misses, open connections, and the
//! bytes held by points answers and the answers waiting for them. The
//! service tells them through the host's log ([`Metrics::served`], [`Metrics::failed`]);
//! the connections module counts connections.

use std::sync::Arc;

use pocaduck_edge_proxy::budget::AnswerBudget;
use pocaduck_edge_proxy::{ApiError, RequestRecord};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of the answer of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request's route and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

/// A request's route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnly {
    route: &'static str,
}

/// A cache look-up's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lookup {
    result: &'static str,
}

/// A failure's API code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: &'static str,
}

/// The metrics and their registry.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    bytes: Family<RouteOnly, Counter>,
    seconds: Family<RouteOnly, Histogram, fn() -> Histogram>,
    upstream_failures: Family<Code, Counter>,
    index_pages: Family<Lookup, Counter>,
    /// Connections open now.
    pub(crate) connections: Gauge,
    answer_bytes: Gauge,
    waiting_answers: Gauge,
}

/// Request durations' buckets: 1 ms to about 65 s, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    /// Fresh metrics, registered under `pocaduck_edge_`.
    pub(crate) fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("pocaduck_edge");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        let bytes = Family::<RouteOnly, Counter>::default();
        registry.register("response_bytes", "Body bytes sent, by route", bytes.clone());
        let seconds = Family::<RouteOnly, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request to its answer's last byte, by route",
            seconds.clone(),
        );
        let upstream_failures = Family::<Code, Counter>::default();
        registry.register(
            "upstream_failures",
            "Requests failed by a store or VastDB, by API code",
            upstream_failures.clone(),
        );
        let index_pages = Family::<Lookup, Counter>::default();
        registry.register(
            "index_page_lookups",
            "Index pages looked up, by result: hit (in the cache) or miss (read from the store)",
            index_pages.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open",
            connections.clone(),
        );
        let answer_bytes = Gauge::default();
        registry.register(
            "answer_bytes_held",
            "Bytes of the answer budget held by points answers in flight",
            answer_bytes.clone(),
        );
        let waiting_answers = Gauge::default();
        registry.register(
            "answers_waiting",
            "Points answers waiting for the answer budget",
            waiting_answers.clone(),
        );
        Arc::new(Self {
            registry,
            answer_bytes,
            waiting_answers,
            requests,
            bytes,
            seconds,
            upstream_failures,
            index_pages,
            connections,
        })
    }

    /// Counts a request served.
    pub(crate) fn served(&self, r: &RequestRecord) {
        let route = r.route;
        self.requests
            .get_or_create(&RouteStatus {
                route,
                status: r.status,
            })
            .inc();
        self.bytes
            .get_or_create(&RouteOnly { route })
            .inc_by(r.bytes);
        self.seconds
            .get_or_create(&RouteOnly { route })
            .observe(r.duration_ms / 1000.0);
        for (result, n) in [("hit", r.cache_hits), ("miss", r.cache_misses)] {
            if n > 0 {
                self.index_pages.get_or_create(&Lookup { result }).inc_by(n);
            }
        }
    }

    /// Counts a failure, when a store or VastDB caused it.
    pub(crate) fn failed(&self, error: &ApiError) {
        if matches!(
            error.code,
            "upstream_error" | "upstream_timeout" | "dataset_unavailable"
        ) {
            self.upstream_failures
                .get_or_create(&Code { code: error.code })
                .inc();
        }
    }

    /// The metrics as OpenMetrics text, `budget` as it stands.
    pub(crate) fn text(&self, budget: &AnswerBudget) -> String {
        self.answer_bytes
            .set(i64::try_from(budget.held_bytes()).unwrap_or(i64::MAX));
        self.waiting_answers
            .set(i64::try_from(budget.waiting()).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}
