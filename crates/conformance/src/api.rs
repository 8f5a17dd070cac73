//! The API as the checks call it: [`Api`] (a target and a dataset) with the requests they
//! make, and assertions on answers shared by the checks and their runners.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde_json::Value;

use crate::decode::{arrow_rows, npy_rows};
use crate::target::Target;

/// An answer, its body whole.
pub type Response = http::Response<Bytes>;

/// One dataset of a target, and the requests the checks make of it.
#[derive(Clone, Copy)]
pub struct Api<'a> {
    target: &'a dyn Target,
    dataset: &'a str,
}

impl<'a> Api<'a> {
    /// Dataset `dataset` of `target`.
    pub fn new(target: &'a dyn Target, dataset: &'a str) -> Self {
        Self { target, dataset }
    }

    /// Another dataset of the same target.
    pub fn dataset_named(&self, dataset: &'a str) -> Api<'a> {
        Api::new(self.target, dataset)
    }

    /// The dataset's name.
    pub fn dataset(&self) -> &'a str {
        self.dataset
    }

    /// The target.
    pub fn target(&self) -> &'a dyn Target {
        self.target
    }

    /// The path of `rest` under the dataset: `/v1/datasets/{dataset}{rest}`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/datasets/{}{rest}", self.dataset)
    }

    /// Sends `method path` (a path from the root) with `headers` and `body`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response {
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        let request = request
            .body(body.into())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        self.target.send(request).await
    }

    /// `GET path` (from the root).
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// `GET path` (from the root) with `headers`.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request(Method::GET, path, headers, Bytes::new()).await
    }

    /// `POST path` (from the root) of `body` as JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        let body = serde_json::to_vec(body).expect("JSON serialises");
        let headers = [("content-type", "application/json")];
        self.request(Method::POST, path, &headers, body).await
    }

    /// `POST …/points?query` of these labels (as decimal strings) under the dataset.
    pub async fn post_points(&self, query: &str, labels: &[u64]) -> Response {
        let labels: Vec<String> = labels.iter().map(u64::to_string).collect();
        let body = serde_json::json!({ "labels": labels });
        let path = match query {
            "" => self.path("/points"),
            query => self.path(&format!("/points?{query}")),
        };
        self.post_json(&path, &body).await
    }

    /// `GET path` (from the root) as JSON, checking it answers 200.
    pub async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{path}: {}", text(&r));
        json_body(&r)
    }

    /// The dataset's summary (`GET /v1/datasets/{dataset}`).
    pub async fn summary(&self) -> Value {
        self.json(&self.path("")).await
    }

    /// Whether the dataset is a VastDB table (its summary's `backend`), whose streamed
    /// answers cannot know counts and bounds up front.
    pub async fn is_vastdb(&self) -> bool {
        self.summary().await["backend"] == "vastdb"
    }

    /// Every label, in the order listed (one page of up to 10000).
    pub async fn labels(&self) -> Vec<u64> {
        let v = self.json(&self.path("/labels?limit=10000")).await;
        v["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|l| l.as_str().expect("labels as strings").parse().unwrap())
            .collect()
    }

    /// A label's info (`GET …/labels/{label}`).
    pub async fn label_info(&self, label: u64) -> Value {
        self.json(&self.path(&format!("/labels/{label}"))).await
    }

    /// `GET …/labels/{label}/points?query`.
    pub async fn points(&self, label: u64, query: &str) -> Response {
        self.get(&self.path(&format!("/labels/{label}/points?{query}")))
            .await
    }

    /// A label's points as npy (`format=npy&query`), as rows.
    pub async fn npy_points(&self, label: u64, query: &str) -> Vec<Vec<i64>> {
        let r = self.points(label, &format!("format=npy&{query}")).await;
        assert_eq!(r.status(), 200, "label {label}, {query}: {}", text(&r));
        npy_rows(r.body())
    }

    /// A label's points through the streamed Arrow format (no size limit), as rows.
    pub async fn label_rows(&self, label: u64, query: &str) -> Vec<Vec<i64>> {
        let r = self.points(label, query).await;
        assert_eq!(r.status(), 200, "label {label}, {query}: {}", text(&r));
        let rows = arrow_rows(r.body());
        assert!(rows.iter().all(|(l, _)| *l == label));
        rows.into_iter().map(|(_, p)| p).collect()
    }

    /// A `bbox` option from a label's lowest corner to the middle of its bounds, and that
    /// middle.
    pub async fn lower_half_bbox(&self, label: u64) -> (String, Vec<i64>) {
        let info = self.label_info(label).await;
        let (min, max) = (&info["bbox"]["min"], &info["bbox"]["max"]);
        let mid: Vec<i64> = (0..3)
            .map(|d| (min[d].as_i64().unwrap() + max[d].as_i64().unwrap()) / 2)
            .collect();
        let q = format!(
            "bbox={},{},{},{},{},{}",
            min[0], min[1], min[2], mid[0], mid[1], mid[2]
        );
        (q, mid)
    }

    /// The label with the most points, and its count.
    pub async fn biggest_label(&self) -> (u64, u64) {
        let mut best = None;
        for label in self.labels().await {
            let n = self.label_info(label).await["point_count"]
                .as_u64()
                .expect("point_count");
            if best.is_none_or(|(_, most)| n >= most) {
                best = Some((label, n));
            }
        }
        best.expect("the dataset has labels")
    }
}

/// The body as text, lossily (for messages).
pub fn text(r: &Response) -> String {
    String::from_utf8_lossy(r.body()).into_owned()
}

/// The body as JSON.
pub fn json_body(r: &Response) -> Value {
    serde_json::from_slice(r.body()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(r)))
}

/// Header `name` as text. Panics when the answer has none.
pub fn header<'r>(r: &'r Response, name: &str) -> &'r str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers()))
        .to_str()
        .expect("a text header")
}

/// Checks `r` is a JSON error answer of `status` with a message, and returns its code.
pub fn assert_error(r: &Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status, "{}", text(r));
    let v = json_body(r);
    let code = v["error"]["code"].as_str().expect("error.code").to_string();
    assert!(!v["error"]["message"]
        .as_str()
        .expect("error.message")
        .is_empty());
    code
}

/// Where a host writes the details of its failures.
pub trait ServerLog: Send + Sync {
    /// Everything logged so far.
    fn contents(&self) -> String;
}

/// A log file the server writes.
impl ServerLog for std::path::PathBuf {
    fn contents(&self) -> String {
        std::fs::read_to_string(self).unwrap_or_else(|e| panic!("{}: {e}", self.display()))
    }
}

/// What no error answer may show of the inside, whatever the host: URLs, loopback
/// addresses, temporary paths, VastDB's query string.
pub const INTERNALS: [&str; 5] = ["http://", "https://", "127.0.0.1", "/tmp", "?data"];

/// Checks `r` is a JSON error answer of `status` naming the request (`request_id` equal to
/// its `x-request-id` header) that tells a client nothing of the inside (none of
/// [`INTERNALS`] nor of `hidden`: keys, bucket, schema, table, file paths), and that `log`
/// has a line under that request id. Returns the answer's code and that line.
pub fn assert_logged_error(
    r: &Response,
    status: u16,
    log: &dyn ServerLog,
    hidden: &[&str],
) -> (String, String) {
    assert_eq!(r.status().as_u16(), status, "{}", text(r));
    let id = match r.headers().get("x-request-id") {
        Some(id) => id.to_str().unwrap().to_owned(),
        None => panic!("no request id in {:?}: {}", r.headers(), text(r)),
    };
    let body_text = text(r);
    let body = json_body(r);
    assert_eq!(body["error"]["request_id"], id.as_str(), "{body_text}");
    for internal in INTERNALS.iter().chain(hidden) {
        assert!(!body_text.contains(internal), "{internal:?} in {body_text}");
    }
    let code = body["error"]["code"].as_str().unwrap().to_owned();
    let log = log.contents();
    let line = log
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no log line names request {id}:\n{log}"));
    (code, line.to_owned())
}
