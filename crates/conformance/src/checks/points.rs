//! A label's points in every format and shape, in PoCADuck's order, and their selections
//! (`limit`, `bbox`, several labels).

use std::collections::BTreeSet;

use arrow_schema::DataType;
use serde_json::Value;

use crate::api::{header, json_body};
use crate::decode::{arrow_column_rows, arrow_rows, bounds_text, parquet_rows};
use crate::Api;

/// Arrow (the default), npy, JSON and Parquet answers carry the same points.
pub async fn every_format_carries_the_same_points(api: &Api<'_>) {
    let labels = api.labels().await;
    let label = *labels.last().unwrap();
    let npy: BTreeSet<Vec<i64>> = api.npy_points(label, "").await.into_iter().collect();

    let arrow = api.points(label, "").await;
    assert_eq!(
        header(&arrow, "content-type"),
        "application/vnd.apache.arrow.stream"
    );
    let rows = arrow_rows(arrow.body());
    assert!(rows.iter().all(|(l, _)| *l == label));
    assert_eq!(
        rows.into_iter().map(|(_, r)| r).collect::<BTreeSet<_>>(),
        npy
    );

    let json = json_body(&api.points(label, "format=json").await);
    assert_eq!(json["label"], label.to_string());
    assert_eq!(json["count"].as_u64().unwrap(), npy.len() as u64);
    let json_rows: BTreeSet<Vec<i64>> = json["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(json_rows, npy);

    let parquet = parquet_rows(api.points(label, "format=parquet").await.into_body());
    assert!(parquet.iter().all(|row| row[0] as u64 == label));
    let parquet: BTreeSet<Vec<i64>> = parquet.into_iter().map(|row| row[1..].to_vec()).collect();
    assert_eq!(parquet, npy);
}

/// Every label's points come strictly ascending (x, then y, then z), as `order=xyz` asks.
pub async fn points_come_in_pocaducks_xyz_order(api: &Api<'_>) {
    for label in api.labels().await {
        let stored = api.label_rows(label, "").await;
        assert!(
            stored.windows(2).all(|w| w[0] < w[1]),
            "label {label}: strictly ascending rows"
        );
        assert_eq!(api.label_rows(label, "order=xyz").await, stored);
    }
}

/// `limit` picks a level of detail spread over the whole label, from its first point;
/// `bbox` picks the points inside; Arrow and npy agree.
pub async fn limit_and_bbox_select_subsets(api: &Api<'_>) {
    let label = api.labels().await[0];
    let all: BTreeSet<Vec<i64>> = api.label_rows(label, "").await.into_iter().collect();
    let some = api.npy_points(label, "limit=50").await;
    assert_eq!(some.len(), 50.min(all.len()));
    assert!(some.iter().all(|p| all.contains(p)));
    let sorted: Vec<&Vec<i64>> = all.iter().collect();
    assert_eq!(
        &some[0], sorted[0],
        "a level of detail starts at the first point"
    );
    assert!(
        some.last().unwrap()[0] > sorted[sorted.len() / 2][0],
        "and spreads over the whole label"
    );
    let arrow_some = arrow_rows(api.points(label, "limit=50").await.body());
    assert_eq!(
        arrow_some.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
        some
    );
    assert_eq!(
        api.label_rows(label, &format!("limit={}", all.len() + 10))
            .await
            .len(),
        all.len()
    );
    assert_eq!(api.label_rows(label, "limit=0").await.len(), 0);

    let (q, mid) = api.lower_half_bbox(label).await;
    let inside = api.label_rows(label, &q).await;
    let expected: Vec<&Vec<i64>> = all
        .iter()
        .filter(|p| (0..3).all(|d| p[d] <= mid[d]))
        .collect();
    assert_eq!(inside.len(), expected.len());
    assert!(!inside.is_empty() && inside.len() < all.len());
    let arrow_inside = arrow_rows(api.points(label, &q).await.body());
    assert_eq!(arrow_inside.len(), inside.len());
}

/// `shape=columns` carries the rows shape's points: one label's with the label in the
/// metadata and a column per dim (of type `stored`, when the caller knows how the dataset
/// stores coordinates), and its bounds when it holds every point of a label of the edge
/// layout; several labels' with a label column first.
pub async fn the_columns_shape_carries_the_same_points_as_rows(
    api: &Api<'_>,
    stored: Option<DataType>,
) {
    let labels = api.labels().await;
    let vastdb = api.is_vastdb().await;
    let dims: Vec<String> = api.summary().await["dims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    for &label in &labels {
        let r = api.points(label, "shape=columns").await;
        assert_eq!(r.status(), 200);
        let (schema, rows) = arrow_column_rows(r.body());
        // One label: no label column, the label in the metadata, a column per dim.
        assert_eq!(schema.metadata()["pocaduck_edge:label"], label.to_string());
        let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, dims.iter().collect::<Vec<_>>());
        if let Some(stored) = &stored {
            assert!(schema.fields().iter().all(|f| f.data_type() == stored));
        }
        let rows: Vec<Vec<i64>> = rows.into_iter().map(|(_, p)| p).collect();
        assert_eq!(rows, api.label_rows(label, "").await, "label {label}");
        // The edge layout knows a label's bounds from its index: an answer of every point
        // gives them (D minima, then D maxima); VastDB's streamed answers do not.
        let hint = schema.metadata().get("pocaduck_edge:bbox");
        if !vastdb || hint.is_some() {
            assert_eq!(hint, Some(&bounds_text(&rows)), "label {label}");
        }
    }
    // A level of detail and a box select the same points in either shape, and name no
    // bounds: those of the label are not theirs.
    let label = labels[0];
    for q in ["limit=50".to_owned(), api.lower_half_bbox(label).await.0] {
        let r = api.points(label, &format!("shape=columns&{q}")).await;
        let (schema, rows) = arrow_column_rows(r.body());
        assert!(!schema.metadata().contains_key("pocaduck_edge:bbox"), "{q}");
        let rows: Vec<Vec<i64>> = rows.into_iter().map(|(_, p)| p).collect();
        assert_eq!(rows, api.label_rows(label, &q).await, "{q}");
    }
    // Several labels: a label column first.
    let chosen = [labels[0], *labels.last().unwrap()];
    let r = api.post_points("shape=columns", &chosen).await;
    assert_eq!(r.status(), 200);
    let (schema, rows) = arrow_column_rows(r.body());
    assert_eq!(schema.field(0).name(), "label");
    let r = api.post_points("", &chosen).await;
    assert_eq!(rows, arrow_rows(r.body()));
}

/// One `POST …/points` answers several labels, each with its own points, as Arrow and as
/// JSON.
pub async fn many_labels_in_one_post(api: &Api<'_>) {
    let labels = api.labels().await;
    let chosen = [labels[labels.len() - 2], *labels.last().unwrap()];
    let r = api.post_points("", &chosen).await;
    assert_eq!(r.status(), 200);
    let rows = arrow_rows(r.body());
    for label in chosen {
        let got: BTreeSet<Vec<i64>> = rows
            .iter()
            .filter(|(l, _)| *l == label)
            .map(|(_, p)| p.clone())
            .collect();
        let expected: BTreeSet<Vec<i64>> = api.label_rows(label, "").await.into_iter().collect();
        assert_eq!(got, expected, "label {label}");
    }
    let json: Value = json_body(&api.post_points("format=json&order=xyz", &chosen).await);
    assert_eq!(json["labels"].as_array().unwrap().len(), 2);
    assert_eq!(json["labels"][1]["label"], chosen[1].to_string());
}
