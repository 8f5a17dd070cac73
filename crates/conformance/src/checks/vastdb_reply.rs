//! VastDB pass-through: a VastDB table's reply pages, VastDB's bytes unchanged, carry a
//! label's points, which a client de-frames itself; anything but a table's page is refused.

use std::sync::Arc;

use arrow_ipc::reader::StreamReader;
use base64::Engine;
use pocaduck_edge_core::point_table::{columnar_cloud, described, pocaduck_cloud, Layout};
use pocaduck_edge_vastdb::deframe::Limits;
use pocaduck_edge_vastdb::{Event, Progress, QuerySettings, ReplyDecoder};

use crate::api::{assert_error, header, text};
use crate::Api;

/// Pages a client asks for before it gives up on a label.
const MAX_PAGES: usize = 10_000;

/// Every label's reply pages, de-framed and followed from page to page by their rounds,
/// carry the label's points, in the same order as the API's own answer.
pub async fn reply_pages_carry_each_labels_points(api: &Api<'_>) {
    if !api.is_vastdb().await {
        return;
    }
    for label in api.labels().await {
        let (rows, pages) = reply_rows(api, label).await;
        assert!(pages >= 1);
        assert_eq!(rows, api.label_rows(label, "").await, "label {label}");
    }
}

/// An edge-layout dataset has no reply (404); of a table, an unknown label is a 404, and
/// a resume point that is not one row id per sub-split, or after the end, a 400.
pub async fn reply_pages_refuse_what_is_not_a_page(api: &Api<'_>) {
    let label = api.labels().await[0];
    let reply = |query: String| {
        let path = api.path(&format!("/labels/{label}/vastdb-reply?{query}"));
        async move { api.get(&path).await }
    };
    if !api.is_vastdb().await {
        assert_error(&reply(String::new()).await, 404);
        return;
    }
    let missing = api.path(&format!("/labels/{}/vastdb-reply", label ^ 1));
    assert_eq!(assert_error(&api.get(&missing).await, 404), "not_found");
    let end = (1u64 << 48) - 1;
    for bad in [
        "resume=x".to_owned(),
        "resume=1,2".to_owned(),
        format!("resume={}", end + 1),
        format!("resume={end}"),
        "format=npy".to_owned(),
    ] {
        assert_error(&reply(bad.clone()).await, 400);
    }
}

/// `label`'s points from its reply pages as rows, and the number of pages.
async fn reply_rows(api: &Api<'_>, label: u64) -> (Vec<Vec<i64>>, usize) {
    let mut progress: Option<Progress> = None;
    let mut batches = Vec::new();
    let mut pages = 0;
    let (mut layout, mut dims) = (Layout::Columnar, 0);
    while !progress.as_ref().is_some_and(Progress::is_done) {
        assert!(
            pages < MAX_PAGES,
            "label {label}: no end after {pages} pages"
        );
        let query = progress
            .as_ref()
            .map_or(String::new(), |p| format!("?resume={}", p.resume_text()));
        let path = api.path(&format!("/labels/{label}/vastdb-reply{query}"));
        let r = api.get(&path).await;
        assert_eq!(r.status(), 200, "label {label}: {}", text(&r));
        assert_eq!(header(&r, "content-type"), "application/x-vastdb-reply");
        let schema_ipc = base64::engine::general_purpose::STANDARD
            .decode(header(&r, "pocaduck-reply-schema"))
            .expect("the schema header is base64");
        let schema = StreamReader::try_new(schema_ipc.as_slice(), None)
            .expect("the schema header is an Arrow IPC stream")
            .schema();
        (layout, dims) = described(&schema).expect("the schema names its layout");
        let sub_splits: u32 = header(&r, "pocaduck-reply-sub-splits").parse().unwrap();
        let settings = QuerySettings {
            num_sub_splits: sub_splits,
            ..QuerySettings::default()
        };
        let p = progress.get_or_insert_with(|| Progress::new(&settings));
        p.begin_reply();
        let mut decoder =
            ReplyDecoder::new(Arc::clone(&schema), sub_splits, Limits::default()).unwrap();
        let mut events = Vec::new();
        // Fed in small pieces, cut anywhere, as bytes arrive.
        for piece in r.body().chunks(4093) {
            decoder
                .push(piece, &mut events)
                .expect("the reply de-frames");
        }
        decoder.finish().expect("the reply is whole");
        for event in events {
            p.observe(&event).unwrap();
            if let Event::Batch { batch, .. } = event {
                batches.push(batch);
            }
        }
        p.end_reply().expect("each page moves the query on");
        pages += 1;
    }
    let cloud = match layout {
        Layout::Columnar => columnar_cloud(&batches, dims).unwrap().0,
        Layout::Pocaduck => pocaduck_cloud(&batches, dims).unwrap(),
    };
    (cloud.rows().map(<[i64]>::to_vec).collect(), pages)
}
