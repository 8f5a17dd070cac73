//! The one route table of the API, and the handlers every backend shares: the listing,
//! health and readiness, and reading a request's labels.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::json;

use super::neuroglancer::NgDataset;
use super::respond::json_response;
use super::{Answer, Service, Source};
use crate::access::signed::without_signature;
use crate::access::Credentials;
use crate::error::ApiError;
use crate::request::{body_labels, label as label_param};

/// A route of the API, whatever the method; its fields are the path's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    /// `/healthz`
    Health,
    /// `/readyz`
    Ready,
    /// `/v1/datasets`
    Datasets,
    /// `/v1/datasets/{ds}`
    Dataset(&'a str),
    /// `/v1/datasets/{ds}/labels`
    Labels(&'a str),
    /// `/v1/datasets/{ds}/labels/{label}`
    Label(&'a str, &'a str),
    /// `/v1/datasets/{ds}/labels/{label}/points`
    LabelPoints(&'a str, &'a str),
    /// `/v1/datasets/{ds}/labels/{label}/vastdb-reply`
    LabelReply(&'a str, &'a str),
    /// `/v1/datasets/{ds}/points`
    Points(&'a str),
    /// `/v1/datasets/{ds}/files/{path…}`
    File(&'a str, &'a str),
    /// `/v1/datasets/{ds}/neuroglancer/{key…}`: a key of its annotation source
    Neuroglancer(&'a str, &'a str),
}

impl<'a> Route<'a> {
    /// The route at `path` (one trailing `/` or more ignored, but in a file's path).
    fn parse(path: &'a str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        Some(match segments.as_slice() {
            ["healthz"] => Route::Health,
            ["readyz"] => Route::Ready,
            ["v1", "datasets"] => Route::Datasets,
            ["v1", "datasets", ds] => Route::Dataset(ds),
            ["v1", "datasets", ds, "labels"] => Route::Labels(ds),
            ["v1", "datasets", ds, "labels", label] => Route::Label(ds, label),
            ["v1", "datasets", ds, "labels", label, "points"] => Route::LabelPoints(ds, label),
            ["v1", "datasets", ds, "labels", label, "vastdb-reply"] => Route::LabelReply(ds, label),
            ["v1", "datasets", ds, "points"] => Route::Points(ds),
            ["v1", "datasets", ds, "neuroglancer", _, ..] => Route::Neuroglancer(
                ds,
                path.trim_end_matches('/')
                    .splitn(6, '/')
                    .nth(5)
                    .unwrap_or_default(),
            ),
            ["v1", "datasets", ds, "files", _, ..] => {
                Route::File(ds, path.splitn(6, '/').nth(5).unwrap_or_default())
            }
            _ => return None,
        })
    }

    /// The route's name in the log and metrics, and the dataset it names.
    fn describe(&self) -> (&'static str, Option<&'a str>) {
        match *self {
            Route::Health => ("healthz", None),
            Route::Ready => ("readyz", None),
            Route::Datasets => ("datasets", None),
            Route::Dataset(ds) => ("dataset", Some(ds)),
            Route::Labels(ds) => ("labels", Some(ds)),
            Route::Label(ds, _) => ("label", Some(ds)),
            Route::LabelPoints(ds, _) => ("label_points", Some(ds)),
            Route::LabelReply(ds, _) => ("vastdb_reply", Some(ds)),
            Route::Points(ds) => ("points", Some(ds)),
            Route::File(ds, _) => ("files", Some(ds)),
            Route::Neuroglancer(ds, _) => ("neuroglancer", Some(ds)),
        }
    }

    /// Whether the route answers `method`: `POST` for many labels' points, else `GET`
    /// and `HEAD`.
    fn allows(&self, method: &Method) -> bool {
        match self {
            Route::Points(_) => method == Method::POST,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

impl Service {
    /// Routes a request whose body is read (and whose dataset, if any, the caller may
    /// read).
    pub(super) async fn route(&self, request: Request<Bytes>) -> Answer {
        let path = request.uri().path();
        // A signed URL's parameters are not the route's options.
        let query = without_signature(request.uri().query());
        let query = query.as_deref();
        let method = request.method();
        let route =
            Route::parse(path).ok_or_else(|| ApiError::not_found(format!("no route {path}")))?;
        if !route.allows(method) {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not served at {path}"
            )));
        }
        let head = method == Method::HEAD;
        let ds = match route {
            Route::Health => return Ok(json_response(StatusCode::OK, &json!({"status": "ok"}))),
            Route::Ready => return self.readiness(&request).await,
            Route::Datasets => return self.list_datasets(&request).await,
            Route::Dataset(ds)
            | Route::Labels(ds)
            | Route::Label(ds, _)
            | Route::LabelPoints(ds, _)
            | Route::LabelReply(ds, _)
            | Route::Points(ds)
            | Route::File(ds, _)
            | Route::Neuroglancer(ds, _) => ds,
        };
        match (self.source(ds)?, route) {
            (Source::Edge(d), Route::Dataset(_)) => self.edge_summary(d).await,
            (Source::Edge(d), Route::Labels(_)) => self.edge_labels(d, query).await,
            (Source::Edge(d), Route::Label(_, label)) => {
                self.edge_label(d, label_param(label)?).await
            }
            (Source::Edge(d), Route::LabelPoints(_, label)) => {
                self.edge_points(d, vec![label_param(label)?], query, Many::One)
                    .await
            }
            (Source::Edge(d), Route::LabelReply(..)) => Err(ApiError::not_found(format!(
                "dataset {} is an edge-layout dataset: it has no VastDB reply",
                d.name
            ))),
            (Source::Edge(d), Route::Points(_)) => {
                let labels = body_labels(request.body(), self.limits.max_labels)?;
                self.edge_points(d, labels, query, Many::Several).await
            }
            (Source::Edge(d), Route::File(_, file)) => {
                self.edge_file(d, file, request.headers(), head).await
            }
            (Source::Edge(d), Route::Neuroglancer(_, key)) => {
                self.neuroglancer(NgDataset::Edge(d), key, request.headers())
                    .await
            }
            (Source::Vast(v), Route::Dataset(_)) => self.vast_summary(v).await,
            (Source::Vast(v), Route::Labels(_)) => self.vast_labels(v, query).await,
            (Source::Vast(v), Route::Label(_, label)) => {
                self.vast_label(v, label_param(label)?).await
            }
            (Source::Vast(v), Route::LabelPoints(_, label)) => {
                self.vast_points(v, vec![label_param(label)?], query, Many::One)
                    .await
            }
            (Source::Vast(v), Route::LabelReply(_, label)) => {
                self.vast_reply_page(v, label_param(label)?, query).await
            }
            (Source::Vast(v), Route::Points(_)) => {
                let labels = body_labels(request.body(), self.limits.max_labels)?;
                self.vast_points(v, labels, query, Many::Several).await
            }
            (Source::Vast(v), Route::Neuroglancer(_, key)) => {
                self.neuroglancer(NgDataset::Vast(v), key, request.headers())
                    .await
            }
            (Source::Vast(v), Route::File(..)) => Err(ApiError::not_found(format!(
                "dataset {} is a VastDB table: it has no files",
                v.name
            ))),
            (_, Route::Health | Route::Ready | Route::Datasets) => {
                unreachable!("answered above")
            }
        }
    }

    /// `GET /readyz`: 200 when every dataset loads and every table answers, else 503
    /// with how many do not, naming those the caller may read (as the listing would).
    async fn readiness(&self, request: &Request<Bytes>) -> Answer {
        let mut unready = Vec::new();
        for d in &self.datasets {
            if d.loaded(self.clock.as_ref()).await.is_err() {
                unready.push(&d.name);
            }
        }
        for v in &self.vast {
            if v.labels().await.is_err() || v.dim_names().await.is_err() {
                unready.push(&v.name);
            }
        }
        if unready.is_empty() {
            return Ok(json_response(StatusCode::OK, &json!({"status": "ready"})));
        }
        let readable = self.readable_by(request);
        let named: Vec<_> = unready.iter().filter(|name| readable(name)).collect();
        Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unready", "unready_count": unready.len(), "unready": named}),
        ))
    }

    /// Whether the caller of `request` may read a dataset, by name.
    fn readable_by<'r>(&'r self, request: &'r Request<Bytes>) -> impl Fn(&str) -> bool + 'r {
        let credentials = Credentials::of(request.headers(), request.uri().query());
        let (path, now) = (request.uri().path(), self.clock.unix_seconds());
        move |name| self.access.check(name, path, &credentials, now).is_ok()
    }

    /// `GET /v1/datasets`: every dataset the caller may read, with its status.
    async fn list_datasets(&self, request: &Request<Bytes>) -> Answer {
        let readable = self.readable_by(request);
        let mut items = Vec::new();
        for d in self.datasets.iter().filter(|d| readable(&d.name)) {
            items.push(match d.loaded(self.clock.as_ref()).await {
                Ok(l) => {
                    json!({"name": d.name, "status": "ok", "backend": "edge", "label_count": l.manifest.label_count,
                    "point_count": l.manifest.point_count, "dims": l.manifest.dims})
                }
                Err(e) => json!({"name": d.name, "status": "unavailable", "backend": "edge", "error": ApiError::from(e).message}),
            });
        }
        for v in self.vast.iter().filter(|v| readable(&v.name)) {
            items.push(match (v.labels().await, v.dim_names().await) {
                (Ok(labels), Ok(dims)) => {
                    json!({"name": v.name, "status": "ok", "backend": "vastdb", "label_count": labels.len(), "dims": dims})
                }
                (Err(e), _) | (_, Err(e)) => {
                    json!({"name": v.name, "status": "unavailable", "backend": "vastdb", "error": ApiError::from(e).message})
                }
            });
        }
        Ok(json_response(
            http::StatusCode::OK,
            &json!({"datasets": items}),
        ))
    }
}

/// How many labels a points route answers, which decides the formats it may use (npy
/// holds one label) and whether the answer names the label alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Many {
    /// `GET …/labels/{label}/points`.
    One,
    /// `POST …/points`.
    Several,
}

/// The name of the route at `path` in the log and metrics (`unknown` when none), and the
/// dataset it names.
pub(super) fn describe(path: &str) -> (&'static str, Option<&str>) {
    Route::parse(path).map_or(("unknown", None), |route| route.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_is_one_route_with_its_methods() {
        let cases = [
            ("/v1/datasets", Some(Route::Datasets)),
            ("/v1/datasets/", Some(Route::Datasets)),
            ("/v1/datasets/d", Some(Route::Dataset("d"))),
            ("/v1/datasets/d/labels", Some(Route::Labels("d"))),
            ("/v1/datasets/d/labels/7", Some(Route::Label("d", "7"))),
            (
                "/v1/datasets/d/labels/7/points",
                Some(Route::LabelPoints("d", "7")),
            ),
            ("/v1/datasets/d/points", Some(Route::Points("d"))),
            (
                "/v1/datasets/d/labels/7/vastdb-reply",
                Some(Route::LabelReply("d", "7")),
            ),
            (
                "/v1/datasets/d/files/manifest.json",
                Some(Route::File("d", "manifest.json")),
            ),
            (
                "/v1/datasets/d/files/points/a.parquet",
                Some(Route::File("d", "points/a.parquet")),
            ),
            ("/v1/datasets/d/files", None),
            (
                "/v1/datasets/d/neuroglancer/info",
                Some(Route::Neuroglancer("d", "info")),
            ),
            (
                "/v1/datasets/d/neuroglancer/spatial/0/0_0_0/",
                Some(Route::Neuroglancer("d", "spatial/0/0_0_0")),
            ),
            ("/v1/datasets/d/neuroglancer", None),
            ("/v1/datasets/d/labels/7/points/x", None),
            ("/v1", None),
            ("/", None),
            ("/healthz", Some(Route::Health)),
            ("/readyz", Some(Route::Ready)),
        ];
        for (path, route) in cases {
            assert_eq!(Route::parse(path), route, "{path}");
        }
        let points = Route::Points("d");
        assert!(points.allows(&Method::POST) && !points.allows(&Method::GET));
        let labels = Route::Labels("d");
        assert!(labels.allows(&Method::GET) && labels.allows(&Method::HEAD));
        assert!(!labels.allows(&Method::POST) && !labels.allows(&Method::DELETE));
        assert_eq!(
            describe("/v1/datasets/d/labels/7/points"),
            ("label_points", Some("d"))
        );
        assert_eq!(describe("/v1/datasets/d/files/a/b"), ("files", Some("d")));
        assert_eq!(describe("/nothing/here"), ("unknown", None));
    }
}
