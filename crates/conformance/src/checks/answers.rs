//! What answers say about their points before and beside them: bounds in the metadata of
//! one whole label's answer, and the point count in a header when it is known up front.

use bytes::Bytes;
use serde_json::Value;

use crate::api::Response;
use crate::decode::{
    arrow_metadata, arrow_rows, bounds_text, npy_rows, parquet_metadata, parquet_points_and_bounds,
    parquet_rows,
};
use crate::Api;

/// Arrow rows answers of one whole label name its bounds (the edge layout knows them from
/// its index); a level of detail, a box and several labels name none.
pub async fn rows_answers_of_one_whole_label_name_its_bounds(api: &Api<'_>) {
    let labels = api.labels().await;
    let vastdb = api.is_vastdb().await;
    for &label in &labels {
        let r = api.points(label, "").await;
        let rows: Vec<Vec<i64>> = arrow_rows(r.body()).into_iter().map(|(_, p)| p).collect();
        // As in the columns shape: the edge layout knows the bounds from its index.
        let hint = arrow_metadata(r.body()).get("pocaduck_edge:bbox").cloned();
        if !vastdb || hint.is_some() {
            assert_eq!(hint, Some(bounds_text(&rows)), "label {label}");
        }
    }
    // A level of detail, a box and several labels name none.
    let label = labels[0];
    for q in ["limit=50".to_owned(), api.lower_half_bbox(label).await.0] {
        let r = api.points(label, &q).await;
        assert!(
            !arrow_metadata(r.body()).contains_key("pocaduck_edge:bbox"),
            "{q}"
        );
    }
    let chosen = [labels[0], *labels.last().unwrap()];
    let r = api.post_points("", &chosen).await;
    assert_eq!(r.status(), 200);
    let metadata = arrow_metadata(r.body());
    assert!(!metadata.contains_key("pocaduck_edge:bbox"));
}

/// Parquet answers of one label name their bounds: every point's (the label's), or a
/// selection's when the host buffers the answer (never the label's); several labels none.
pub async fn parquet_answers_of_one_label_name_their_bounds(api: &Api<'_>) {
    let vastdb = api.is_vastdb().await;
    let labels = api.labels().await;
    // Every point of a label: its bounds, from the index on the edge layout.
    for &label in &labels {
        let (rows, hint) =
            parquet_points_and_bounds(api.points(label, "format=parquet").await.into_body());
        assert_eq!(rows, api.label_rows(label, "").await, "label {label}");
        if !vastdb || hint.is_some() {
            assert_eq!(hint, Some(bounds_text(&rows)), "label {label}");
        }
    }
    // A selection: the bounds of what it holds when the server knows them (an answer it
    // buffers), never the label's; the edge layout's streamed answers name none.
    let label = labels[0];
    for q in ["limit=50".to_owned(), api.lower_half_bbox(label).await.0] {
        let (rows, hint) = parquet_points_and_bounds(
            api.points(label, &format!("format=parquet&{q}"))
                .await
                .into_body(),
        );
        assert_eq!(rows, api.label_rows(label, &q).await, "{q}");
        if !vastdb {
            assert_eq!(hint, None, "{q}");
        } else if let Some(hint) = hint {
            assert_eq!(hint, bounds_text(&rows), "{q}");
        }
    }
    // Several labels: none.
    let r = api.post_points("format=parquet", &labels[..2]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(parquet_metadata(r.body(), "pocaduck_edge:bbox"), None);
}

/// The answer's `Pocaduck-Point-Count`, if any.
fn point_count(r: &Response) -> Option<u64> {
    r.headers()
        .get("pocaduck-point-count")
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// `Pocaduck-Point-Count` gives the points an answer holds when known before them: always on
/// the edge layout without a box, and for npy and JSON everywhere; several labels the sum.
pub async fn answers_give_their_point_count_before_the_points_when_known(api: &Api<'_>) {
    let labels = api.labels().await;
    let edge = api.summary().await["backend"] == "edge";
    let label = *labels.last().unwrap();
    let info = api.label_info(label).await;
    let total = info["point_count"].as_u64().unwrap();
    for query in [
        "",
        "format=parquet",
        "format=npy",
        "format=json",
        "limit=50",
    ] {
        let r = api.points(label, query).await;
        let count = point_count(&r);
        let body: Bytes = r.into_body();
        let returned = match query {
            "format=parquet" => parquet_rows(body).len(),
            "format=npy" => npy_rows(&body).len(),
            "format=json" => serde_json::from_slice::<Value>(&body).unwrap()["count"]
                .as_u64()
                .unwrap() as usize,
            _ => arrow_rows(&body).len(),
        } as u64;
        assert_eq!(
            returned,
            if query == "limit=50" {
                50.min(total)
            } else {
                total
            }
        );
        // Every edge-layout answer knows it; a VastDB table's streamed answers cannot.
        if edge || matches!(query, "format=npy" | "format=json") {
            assert_eq!(count, Some(returned), "{query:?}");
        } else if let Some(count) = count {
            assert_eq!(count, returned, "{query:?}");
        }
    }
    // A bbox filters the points as they stream: the count is not known up front.
    // (Edge layout; a VastDB table's Arrow answer never has one.)
    let bbox = format!(
        "bbox={},{},{},{},{},{}",
        info["bbox"]["min"][0],
        info["bbox"]["min"][1],
        info["bbox"]["min"][2],
        info["bbox"]["min"][0],
        info["bbox"]["max"][1],
        info["bbox"]["max"][2]
    );
    assert_eq!(point_count(&api.points(label, &bbox).await), None);
    // Several labels: the sum.
    let chosen = [labels[labels.len() - 2], *labels.last().unwrap()];
    let r = api.post_points("", &chosen).await;
    let count = point_count(&r);
    let rows = arrow_rows(r.body()).len() as u64;
    if edge {
        assert_eq!(count, Some(rows));
    }
}
