//! The checks fail on a host that breaks the API: the in-process host behind a target that
//! tampers with requests or answers as a faulty host would, each tampering caught by the
//! check of what it breaks.

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures::FutureExt;
use pocaduck_edge_conformance::checks::{answers, files, host};
use pocaduck_edge_conformance::{Api, Target};

use crate::fixture::{self, DATASET, ORIGIN};

/// The in-process host, its requests and answers passed through `request` and `answer`.
struct Tampered {
    request: fn(&mut http::Request<Bytes>),
    answer: fn(&mut http::Response<Bytes>),
}

#[async_trait::async_trait]
impl Target for Tampered {
    async fn send(&self, mut request: http::Request<Bytes>) -> http::Response<Bytes> {
        (self.request)(&mut request);
        let mut answer = fixture::host().target.send(request).await;
        (self.answer)(&mut answer);
        answer
    }
}

/// Whether `check` panics (fails).
async fn fails(check: impl std::future::Future<Output = ()>) -> bool {
    AssertUnwindSafe(check).catch_unwind().await.is_err()
}

#[tokio::test]
async fn a_host_that_drops_the_point_count_fails() {
    let target = Tampered {
        request: |_| {},
        answer: |r| drop(r.headers_mut().remove("pocaduck-point-count")),
    };
    let api = Api::new(&target, DATASET);
    let check = answers::answers_give_their_point_count_before_the_points_when_known(&api);
    assert!(fails(check).await);
}

#[tokio::test]
async fn a_host_that_tidies_dot_segments_fails() {
    // As a host whose router resolves `..` before the API sees the path.
    let target = Tampered {
        request: |r| {
            let tidy = r
                .uri()
                .path()
                .replace("/points/../", "/")
                .replace("/../", "/");
            *r.uri_mut() = tidy.parse().unwrap();
        },
        answer: |_| {},
    };
    let api = Api::new(&target, DATASET);
    let check = files::files_serve_ranges_etags_and_nothing_outside_the_dataset(&api);
    assert!(fails(check).await);
}

#[tokio::test]
async fn a_host_that_leaks_internals_in_5xx_answers_fails() {
    let target = Tampered {
        request: |_| {},
        answer: |r| {
            if r.status().is_server_error() {
                let body = String::from_utf8_lossy(r.body()).replace(
                    "is unavailable",
                    "is unavailable: /tmp/datasets/manifest.json",
                );
                *r.body_mut() = Bytes::from(body);
            }
        },
    };
    let api = Api::new(&target, DATASET);
    let log = &*fixture::host().log;
    let check = host::broken_datasets_answer_503_while_the_others_serve(&api, log);
    assert!(fails(check).await);
}

#[tokio::test]
async fn a_host_without_cors_fails() {
    let target = Tampered {
        request: |_| {},
        answer: |r| drop(r.headers_mut().remove("access-control-allow-origin")),
    };
    let api = Api::new(&target, DATASET);
    let check = host::cors_allows_the_configured_origin_without_preflight(&api, ORIGIN);
    assert!(fails(check).await);
}
