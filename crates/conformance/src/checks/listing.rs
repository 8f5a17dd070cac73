//! Listing datasets and labels, and each label's info.

use std::collections::BTreeSet;

use crate::Api;

/// The dataset is listed as `ok`, and its summary gives its dims and label count.
pub async fn lists_the_dataset(api: &Api<'_>) {
    let v = api.json("/v1/datasets").await;
    let ds = v["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == api.dataset())
        .expect("listed");
    assert_eq!(ds["status"], "ok");
    let summary = api.summary().await;
    assert_eq!(summary["dims"].as_array().unwrap().len(), 3);
    assert_eq!(
        summary["label_count"].as_u64().unwrap(),
        api.labels().await.len() as u64
    );
}

/// Labels list in ascending order, as strings (ids above 2^53 included), and page by
/// `after` to the same list.
pub async fn labels_page_in_ascending_order_and_include_big_ids(api: &Api<'_>) {
    let labels = api.labels().await;
    assert!(labels.windows(2).all(|w| w[0] < w[1]));
    assert!(
        labels.iter().any(|l| *l > 1 << 53),
        "the sample has labels above 2^53"
    );
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let q = after
            .as_ref()
            .map_or("limit=3".to_string(), |a| format!("limit=3&after={a}"));
        let v = api.json(&api.path(&format!("/labels?{q}"))).await;
        paged.extend(
            v["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().parse::<u64>().unwrap()),
        );
        match v["next_after"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, labels);
}

/// Each label's info gives its point count and bounds, equal to its points', which are
/// distinct.
pub async fn counts_and_bounds_match_the_points(api: &Api<'_>) {
    for label in api.labels().await {
        let info = api.label_info(label).await;
        assert_eq!(info["label"], label.to_string());
        let rows = api.label_rows(label, "").await;
        assert_eq!(
            info["point_count"].as_u64().unwrap(),
            rows.len() as u64,
            "label {label}"
        );
        let distinct: BTreeSet<&Vec<i64>> = rows.iter().collect();
        assert_eq!(
            distinct.len(),
            rows.len(),
            "label {label} has no duplicate points"
        );
        for d in 0..3 {
            let min = rows.iter().map(|r| r[d]).min().unwrap();
            let max = rows.iter().map(|r| r[d]).max().unwrap();
            assert_eq!(info["bbox"]["min"][d].as_i64().unwrap(), min);
            assert_eq!(info["bbox"]["max"][d].as_i64().unwrap(), max);
        }
    }
}
