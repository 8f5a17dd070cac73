//! Errors a client causes: malformed labels and options (400), unknown routes, datasets and
//! labels (404), a method a route lacks (405). Each a JSON error with a code and a message.

use bytes::Bytes;
use http::Method;

use crate::assert_error;
use crate::Api;

/// Malformed labels, in the path or in a `POST` body (a JSON number above 2^53 included),
/// are 400 `bad_label`.
pub async fn bad_labels_are_400(api: &Api<'_>) {
    for bad in ["abc", "-1", "18446744073709551616", "1.5", "%20"] {
        let r = api.get(&api.path(&format!("/labels/{bad}"))).await;
        assert_eq!(assert_error(&r, 400), "bad_label", "{bad}");
        let r = api.get(&api.path(&format!("/labels/{bad}/points"))).await;
        assert_eq!(assert_error(&r, 400), "bad_label", "{bad}");
    }
    let body = serde_json::json!({"labels": [9007199254740993u64]});
    let r = api.post_json(&api.path("/points"), &body).await;
    assert_eq!(
        assert_error(&r, 400),
        "bad_label",
        "a JSON number above 2^53"
    );
    let body = serde_json::json!({"labels": ["-5"]});
    let r = api.post_json(&api.path("/points"), &body).await;
    assert_error(&r, 400);
}

/// An unknown label (its info, its points, in a `POST`), dataset or API version is 404.
pub async fn unknown_things_are_404(api: &Api<'_>) {
    let r = api.get(&api.path("/labels/12345")).await;
    assert_eq!(assert_error(&r, 404), "not_found");
    assert_error(&api.points(12345, "").await, 404);
    let r = api.get("/v1/datasets/no-such-dataset/labels").await;
    assert_error(&r, 404);
    assert_error(&api.get("/v2/anything").await, 404);
    assert_error(&api.post_points("", &[12345]).await, 404);
}

/// Unknown, repeated or conflicting options, a bad `limit` or `bbox`, a body that is not
/// JSON are 400; a method a route does not have is 405.
pub async fn bad_options_are_400(api: &Api<'_>) {
    let label = api.labels().await[0];
    for q in [
        "format=csv",
        "order=zyx",
        "limit=-3",
        "bbox=1,2,3",
        "bbox=2,1",
        "bogus=1",
        "format=json&format=npy",
        "shape=diagonal",
        "shape=columns&format=npy",
        "format=parquet&shape=rows",
    ] {
        let r = api.points(label, q).await;
        assert_eq!(r.status(), 400, "{q}");
        assert_error(&r, 400);
    }
    assert_error(&api.get(&api.path("/labels?limit=0")).await, 400);
    assert_error(&api.post_points("format=npy", &[label]).await, 400);
    let r = api
        .request(Method::POST, &api.path("/points"), &[], "not json")
        .await;
    assert_error(&r, 400);
    let r = api
        .request(Method::DELETE, &api.path("/labels"), &[], Bytes::new())
        .await;
    assert_error(&r, 405);
}
