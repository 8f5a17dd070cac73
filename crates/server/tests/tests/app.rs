//! `pocaduck_edge::app`: the routes `serve` mounts, handed requests in-process (no socket):
//! the site at `/`, the API under `/v1`.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use pocaduck_edge::ServeOptions;
use pocaduck_edge_proxy::Limits;
use serde_json::Value;
use tower::ServiceExt;

use crate::common;

/// The site's page.
const INDEX: &str = "<!doctype html><title>viewer</title>";

/// Sends `path` to `app` and returns the status, the content type and the body.
async fn get(app: &axum::Router, path: &str) -> (StatusCode, String, bytes::Bytes) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map_or_else(String::new, |v| v.to_str().unwrap().to_owned());
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, body)
}

#[tokio::test]
async fn the_app_serves_the_site_at_the_root_and_the_api_under_v1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("grid");
    let big = (1u64 << 53) + 1;
    common::grid_dataset(&data, &[(7, 100), (big, 300)]);
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), INDEX).unwrap();
    let app = pocaduck_edge::app(&ServeOptions {
        data: vec![data.to_str().unwrap().to_owned()],
        addr: "127.0.0.1:0".parse().unwrap(),
        cors_origins: vec!["*".into()],
        access: None,
        limits: Limits::default(),
        vastdb: None,
        www: Some(www),
        threads: 1,
        metrics_addr: None,
        connections: Default::default(),
    })
    .unwrap();

    let (status, content_type, body) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(&body[..], INDEX.as_bytes());

    let (status, content_type, body) = get(&app, "/v1/datasets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let listing: Value = serde_json::from_slice(&body).unwrap();
    let datasets = listing["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 1, "{listing}");
    assert_eq!(datasets[0]["name"], "grid");
    assert_eq!(datasets[0]["status"], "ok");

    // A label above 2^53, read through the same router.
    let (status, _, body) = get(&app, &format!("/v1/datasets/grid/labels/{big}")).await;
    assert_eq!(status, StatusCode::OK);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["label"], big.to_string());
    assert_eq!(info["point_count"], 300);
    // Outside `/v1`, a missing file of the site: not the API's answer.
    let (status, _, body) = get(&app, "/v2/datasets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.starts_with(b"{"), "the API answered outside /v1");
}

#[test]
fn two_datasets_of_one_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for copy in ["a/same", "b/same"] {
        common::grid_dataset(&dir.path().join(copy), &[(1, 10)]);
    }
    let result = pocaduck_edge::app(&ServeOptions {
        data: vec![
            dir.path().join("a/same").to_str().unwrap().to_owned(),
            dir.path().join("b/same").to_str().unwrap().to_owned(),
        ],
        addr: "127.0.0.1:0".parse().unwrap(),
        cors_origins: vec!["*".into()],
        access: None,
        limits: Limits::default(),
        vastdb: None,
        www: None,
        threads: 1,
        metrics_addr: None,
        connections: Default::default(),
    });
    let error = result.expect_err("two datasets of one name are refused");
    assert!(error.to_string().contains("\"same\""), "{error}");
}
