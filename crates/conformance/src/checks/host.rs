//! What a host was configured with, taken as arguments: its CORS origins and limits, and
//! datasets beside the checked one (broken ones, one with coarse levels).

use std::time::{Duration, Instant};

use pocaduck_edge_proxy::Limits;

use crate::api::{header, json_body, text, ServerLog};
use crate::decode::{arrow_rows, npy_rows, parquet_rows, spread};
use crate::{assert_logged_error, Api};

/// An origin no host of the checks allows.
const OTHER_ORIGIN: &str = "https://elsewhere.example";

/// The host allows `origin` (and only it): answers carry `Access-Control-Allow-Origin` and
/// expose the headers a client reads (ranges, ETag, timings, point count, request id); a
/// preflight answers 204 allowing `POST`. Another origin gets no CORS headers.
pub async fn cors_allows_the_configured_origin_without_preflight(api: &Api<'_>, origin: &str) {
    let label = api.labels().await[0];
    let points = api.path(&format!("/labels/{label}/points"));
    let r = api.get_with(&points, &[("origin", origin)]).await;
    assert_eq!(header(&r, "access-control-allow-origin"), origin);
    let exposed = header(&r, "access-control-expose-headers");
    for h in [
        "Content-Range",
        "Content-Length",
        "ETag",
        "Accept-Ranges",
        "Server-Timing",
        "Pocaduck-Point-Count",
        "X-Request-Id",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
    assert!(header(&r, "server-timing").contains("fetch;dur="));
    let r = api
        .get_with(&api.path("/labels"), &[("origin", OTHER_ORIGIN)])
        .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let preflight = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
    ];
    let r = api
        .request(
            http::Method::OPTIONS,
            &api.path("/points"),
            &preflight,
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert!(header(&r, "access-control-allow-methods").contains("POST"));
}

/// Past the host's `limits` (which `origin` may read from): a `POST` of more labels, an
/// answer held whole of more points (npy with a `bbox`, whose count is not known first; a
/// level of detail under the limit is fine, and Arrow and Parquet stream any size), a body of more bytes are 413, naming the limit; the
/// last like any error, with a request id and CORS. Needs more labels than the limit and a
/// label of more points.
pub async fn limits_answer_413_naming_the_limit(api: &Api<'_>, limits: &Limits, origin: &str) {
    let labels: Vec<u64> = api
        .labels()
        .await
        .into_iter()
        .take(limits.max_labels + 1)
        .collect();
    assert_eq!(
        labels.len(),
        limits.max_labels + 1,
        "the dataset has more than {} labels",
        limits.max_labels
    );
    let r = api.post_points("", &labels).await;
    assert_eq!(r.status(), 413);
    let v = json_body(&r);
    let named = format!("{} labels", limits.max_labels);
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&named),
        "{v}"
    );
    // The biggest label is above the limit for whole answers, but streams as Arrow and
    // Parquet (and a level of detail under the limit is fine in any format).
    let (big, n) = api.biggest_label().await;
    assert!(n > limits.max_points, "label {big} has {n} points");
    let r = api
        .points(
            big,
            "format=npy&bbox=-4611686018427387904,4611686018427387904",
        )
        .await;
    assert_eq!(r.status(), 413);
    let named = format!("{} points", limits.max_points);
    assert!(text(&r).contains(&named), "{}", text(&r));
    let under = format!("limit={}", limits.max_points);
    assert_eq!(
        api.npy_points(big, &under).await.len() as u64,
        limits.max_points
    );
    let r = api.points(big, "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(arrow_rows(r.body()).len() as u64, n);
    let r = api.points(big, "format=parquet").await;
    assert_eq!(r.status(), 200);
    assert_eq!(parquet_rows(r.into_body()).len() as u64, n);
    // A body over the limit is refused as any other error: JSON, a request id, CORS.
    let headers = [("origin", origin), ("content-type", "application/json")];
    let body = vec![b' '; limits.max_body_bytes + 1];
    let r = api
        .request(http::Method::POST, &api.path("/points"), &headers, body)
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(header(&r, "access-control-allow-origin"), origin);
    let id = header(&r, "x-request-id").to_owned();
    let v = json_body(&r);
    assert_eq!(v["error"]["code"], "too_large");
    assert_eq!(v["error"]["request_id"], id.as_str());
    let named = format!("{} bytes", limits.max_body_bytes);
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&named),
        "{v}"
    );
}

/// The broken datasets a host serves beside the checked one, and what its log must name for
/// each: `bad-manifest` (its `manifest.json` cut short), `missing-parquet` (its
/// `points/part-00000.parquet` gone) and `truncated-parquet` (that file cut to half).
pub const BROKEN_DATASETS: [(&str, &str); 3] = [
    ("bad-manifest", "manifest"),
    ("missing-parquet", "part-00000.parquet"),
    ("truncated-parquet", "part-00000.parquet"),
];

/// Each of [`BROKEN_DATASETS`] answers 503 `dataset_unavailable` quickly, naming only the
/// dataset, while `log` has the reason under the answer's request id; the listing marks a
/// dataset whose manifest is broken unavailable, and the checked dataset still serves.
pub async fn broken_datasets_answer_503_while_the_others_serve(api: &Api<'_>, log: &dyn ServerLog) {
    for (name, why) in BROKEN_DATASETS {
        let started = Instant::now();
        let r = api.get(&format!("/v1/datasets/{name}/labels")).await;
        // The answer names the dataset only; the log, under its request id, the reason.
        let (code, logged) = assert_logged_error(&r, 503, log, &[]);
        assert_eq!(code, "dataset_unavailable");
        assert!(
            logged.contains(why) && logged.contains(name),
            "{name}: {logged}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let listing = api.json("/v1/datasets").await;
    let statuses: Vec<(String, String)> = listing["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&(api.dataset().into(), "ok".into())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("bad-manifest".into(), "unavailable".into())),
        "{statuses:?}"
    );
    assert_eq!(api.get(&api.path("/labels")).await.status(), 200);
}

/// `coarse`, a dataset written with coarse levels of more than `coarse_points` points
/// (every 2^k-th point) on its labels of more than 4 × `coarse_points`: levels of detail up
/// to a level's size read that level (the same ranks of it in every format and route),
/// above it the label's own ranks. At least two of its labels have a level, and not all.
pub async fn levels_of_detail_of_big_labels_read_their_coarse_level(
    coarse: &Api<'_>,
    coarse_points: u64,
) {
    let rows = |label: u64, query: String| async move {
        let r = coarse.points(label, &query).await;
        assert_eq!(r.status(), 200, "label {label}, {query}");
        arrow_rows(r.body())
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<Vec<i64>>>()
    };
    let manifest = coarse.json(&coarse.path("/files/manifest.json")).await;
    assert_eq!(manifest["version"], 2);
    assert!(!manifest["coarse"].as_array().unwrap().is_empty());
    let labels = coarse.labels().await;
    let mut with_level = 0;
    for &label in &labels {
        let all = rows(label, String::new()).await;
        let n = all.len() as u64;
        // Without a level (labels of at most 4 × coarse_points), the label's own ranks.
        let Some(stride) = (n > 4 * coarse_points).then(|| {
            let mut s = 4;
            while n.div_ceil(2 * s) > coarse_points {
                s *= 2;
            }
            s
        }) else {
            let got = rows(label, "limit=77".into()).await;
            assert_eq!(got, spread(&all, 77), "label {label}");
            continue;
        };
        with_level += 1;
        let level: Vec<Vec<i64>> = all.iter().step_by(stride as usize).cloned().collect();
        let m = level.len();
        assert!(m as u64 > coarse_points && m as u64 <= 2 * coarse_points);
        for limit in [1, 77, m / 2, m] {
            let got = rows(label, format!("limit={limit}")).await;
            assert_eq!(got, spread(&level, limit), "label {label}, limit {limit}");
        }
        // Above the level's size, the label's own ranks.
        assert_eq!(
            rows(label, format!("limit={}", m + 1)).await,
            spread(&all, m + 1)
        );
        // Other formats and the many-labels route pick the same points.
        let npy = coarse.points(label, "format=npy&limit=77").await;
        assert_eq!(npy_rows(npy.body()), spread(&level, 77));
        let post = coarse.post_points("limit=77", &[label]).await;
        let posted: Vec<Vec<i64>> = arrow_rows(post.body())
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(posted, spread(&level, 77));
    }
    assert!(with_level >= 2, "{with_level} labels with a coarse level");
    assert!(with_level < labels.len(), "and some without");
}
