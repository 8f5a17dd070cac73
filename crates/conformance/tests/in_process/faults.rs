//! Failures on the server's side, in-process: a VastDB table behind a scripted upstream
//! (a connection that fails, a timeout, `503 SlowDown` past the retries, `403
//! SignatureDoesNotMatch`) and an object store that fails. Each answers its status and code
//! with a generic message and a request id; the host's log has the details under that id,
//! and no answer shows the endpoint, keys, bucket, schema, table or store path.

use std::sync::Arc;

use pocaduck_edge_conformance::memory::{CapturedLog, FailingStore, WallClock};
use pocaduck_edge_conformance::scripted::{Reply, ScriptedUpstream};
use pocaduck_edge_conformance::{assert_logged_error, json_body, Api, InProcess, Response};
use pocaduck_edge_proxy::cors::CorsPolicy;
use pocaduck_edge_proxy::{Access, Limits, RangeStore, Service, ServiceConfig};
use pocaduck_edge_read::vast::{VastConfig, VastSource};
use pocaduck_edge_read::Layout;
use pocaduck_edge_vastdb::{Credentials, Endpoint, TablePath};

const ENDPOINT: &str = "http://vast.internal.example:9090";
const ACCESS_KEY: &str = "AKIAINPROCESSEXAMPLE";
const SECRET_KEY: &str = "in-process-secret-never-shown";
const BUCKET: &str = "private-bucket";
const SCHEMA: &str = "private-schema";
const TABLE: &str = "private-table";
/// Retries of a `SlowDown` before the answer gives up.
const MAX_RETRIES: u32 = 3;

/// What no answer may show.
const HIDDEN: [&str; 6] = [
    "vast.internal.example",
    ACCESS_KEY,
    SECRET_KEY,
    BUCKET,
    SCHEMA,
    TABLE,
];

/// A host serving the table `points` (columnar, 3 dims) through `upstream`, and its log.
fn vast_host(upstream: Arc<ScriptedUpstream>) -> (InProcess, Arc<CapturedLog>) {
    let clock = Arc::new(WallClock::new());
    let config = VastConfig {
        endpoint: Endpoint::parse(ENDPOINT).unwrap(),
        credentials: Credentials::new(ACCESS_KEY, SECRET_KEY),
        table: TablePath::new(BUCKET, SCHEMA, TABLE).unwrap(),
        layout: Layout::Columnar,
        dims: 3,
        max_retries: MAX_RETRIES,
        limit_rows: 1000,
    };
    let source = VastSource::new("points", config, upstream, clock.clone());
    host(Vec::new(), vec![source])
}

/// A host of `datasets` and `vast`, with a log of its own.
fn host(
    datasets: Vec<(String, Arc<dyn RangeStore>)>,
    vast: Vec<VastSource>,
) -> (InProcess, Arc<CapturedLog>) {
    let log = Arc::new(CapturedLog::default());
    let service = Service::new(ServiceConfig {
        datasets,
        vast,
        access: Access::open(CorsPolicy::new(vec!["*".into()])),
        limits: Limits::default(),
        clock: Arc::new(WallClock::new()),
        log: log.clone(),
    });
    (InProcess::new(Arc::new(service)), log)
}

/// Reads label 5's points from a table whose upstream plays `replies`: the answer, the log
/// line under its request id (checked to hide everything of [`HIDDEN`]) with its code, and
/// the upstream.
async fn read_through(
    replies: Vec<Reply>,
    status: u16,
) -> (Response, String, String, Arc<ScriptedUpstream>) {
    let upstream = Arc::new(ScriptedUpstream::new(replies));
    let (target, log) = vast_host(upstream.clone());
    let api = Api::new(&target, "points");
    let r = api.points(5, "format=npy").await;
    let (code, line) = assert_logged_error(&r, status, &*log, &HIDDEN);
    // The upstream was asked, at the table's endpoint, signed with the key.
    let sent = upstream.sent();
    assert!(!sent.is_empty());
    for request in &sent {
        assert_eq!(request.uri.host(), Some("vast.internal.example"));
        let authorization = request.headers["authorization"].to_str().unwrap();
        assert!(authorization.contains(ACCESS_KEY), "{authorization}");
        assert!(!authorization.contains(SECRET_KEY));
    }
    (r, code, line, upstream)
}

/// The answer's message, which for a 5xx is generic.
fn message(r: &Response) -> String {
    json_body(r)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_failed_connection_is_502() {
    let url = format!("{ENDPOINT}/{BUCKET}/{SCHEMA}?query");
    let failure = format!("error sending request for url ({url}): connection refused");
    let (r, code, line, _) = read_through(vec![Reply::ConnectionFailed(failure)], 502).await;
    assert_eq!(code, "upstream_error");
    assert_eq!(message(&r), "the upstream store failed");
    assert!(
        line.contains("connection failed") && line.contains(&url),
        "{line}"
    );
}

#[tokio::test]
async fn a_timeout_is_504() {
    let failure = format!("no reply from {ENDPOINT} within 30 s");
    let (r, code, line, _) = read_through(vec![Reply::TimedOut(failure.clone())], 504).await;
    assert_eq!(code, "upstream_timeout");
    assert_eq!(message(&r), "the upstream store did not answer in time");
    assert!(line.contains(&failure), "{line}");
}

#[tokio::test]
async fn slowdown_past_the_retries_is_502_naming_it_in_the_log() {
    let (r, code, line, upstream) = read_through(vec![Reply::slow_down()], 502).await;
    assert_eq!(code, "upstream_error");
    assert_eq!(message(&r), "the upstream store failed");
    assert!(
        line.contains("503 SlowDown") && line.contains("reduce your request rate"),
        "{line}"
    );
    // The first request, then each retry after a doubling wait; no more.
    assert_eq!(upstream.sent().len(), MAX_RETRIES as usize + 1);
    assert_eq!(upstream.slept_ms(), [100, 200, 400]);
}

#[tokio::test]
async fn slowdown_within_the_retries_then_an_error_answers_that_error() {
    let replies = vec![
        Reply::slow_down(),
        Reply::slow_down(),
        Reply::signature_does_not_match(),
    ];
    let (_, code, line, upstream) = read_through(replies, 502).await;
    assert_eq!(code, "upstream_error");
    assert!(line.contains("403 SignatureDoesNotMatch"), "{line}");
    assert_eq!(upstream.sent().len(), 3);
    assert_eq!(upstream.slept_ms(), [100, 200]);
}

#[tokio::test]
async fn wrong_keys_are_502_naming_signature_does_not_match_in_the_log() {
    let (r, code, line, upstream) =
        read_through(vec![Reply::signature_does_not_match()], 502).await;
    assert_eq!(code, "upstream_error");
    assert_eq!(message(&r), "the upstream store failed");
    assert!(line.contains("403 SignatureDoesNotMatch"), "{line}");
    assert_eq!(upstream.sent().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_failing_store_is_503_naming_its_path_in_the_log_only() {
    let store = FailingStore {
        root: "s3://private-bucket/datasets/failing".into(),
        message: "access denied by bucket policy".into(),
    };
    let (target, log) = host(vec![("failing".into(), Arc::new(store))], Vec::new());
    let api = Api::new(&target, "failing");
    for path in [api.path("/labels"), api.path("/labels/5/points")] {
        let r = api.get(&path).await;
        let hidden = ["s3://", "private-bucket", "datasets/failing", "denied"];
        let (code, line) = assert_logged_error(&r, 503, &*log, &hidden);
        assert_eq!(code, "dataset_unavailable");
        assert_eq!(message(&r), "dataset failing is unavailable");
        assert!(
            line.contains("s3://private-bucket/datasets/failing/manifest.json")
                && line.contains("access denied by bucket policy"),
            "{path}: {line}"
        );
    }
    // The listing names it unavailable, and no more.
    let listing = api.get("/v1/datasets").await;
    let text = String::from_utf8_lossy(listing.body()).into_owned();
    assert!(
        text.contains("unavailable") && !text.contains("private-bucket"),
        "{text}"
    );
}
