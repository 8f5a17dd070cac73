//! The raw-file route of the edge layout: ranges, ETags and conditional requests, nothing
//! outside the dataset; and Parquet answers built of the stored row groups.

use bytes::Bytes;
use http::Method;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;

use crate::api::{header, text};
use crate::decode::{arrow_rows, parquet_rows, row_group_bytes};
use crate::{assert_error, Api};

/// `…/files/{path}` serves the dataset's files: single ranges (206, `Content-Range`), the
/// ETag the manifest names (304 on `If-None-Match`), `HEAD`, 416 past the end, 400 on a bad
/// `Range`; and no path outside the dataset, however written (dot segments, encoded
/// slashes), is served. A VastDB table has no files: 404.
pub async fn files_serve_ranges_etags_and_nothing_outside_the_dataset(api: &Api<'_>) {
    if api.is_vastdb().await {
        // A VastDB table has no files: the route answers 404.
        let r = api.get(&api.path("/files/manifest.json")).await;
        assert_eq!(assert_error(&r, 404), "not_found");
        return;
    }
    let manifest = api.json(&api.path("/files/manifest.json")).await;
    let file = manifest["files"][0]["path"].as_str().unwrap().to_string();
    let size = manifest["files"][0]["size"].as_u64().unwrap();
    let etag = manifest["files"][0]["etag"].as_str().unwrap().to_string();
    let path = api.path(&format!("/files/{file}"));

    let r = api.get_with(&path, &[("range", "bytes=0-3")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), format!("bytes 0-3/{size}"));
    assert_eq!(header(&r, "etag"), format!("\"{etag}\""));
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert_eq!(&r.body()[..], b"PAR1");

    let tail = format!("bytes={}-", size - 4);
    let r = api.get_with(&path, &[("range", &tail)]).await;
    assert_eq!(&r.body()[..], b"PAR1");
    let whole = api.get(&path).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.body().len() as u64, size);

    let r = api.request(Method::HEAD, &path, &[], Bytes::new()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), size.to_string());

    let quoted = format!("\"{etag}\"");
    let r = api.get_with(&path, &[("if-none-match", &quoted)]).await;
    assert_eq!(r.status(), 304);
    assert!(r.body().is_empty());

    let past = format!("bytes={size}-");
    let r = api.get_with(&path, &[("range", &past)]).await;
    assert_eq!(header(&r, "content-range"), format!("bytes */{size}"));
    assert_error(&r, 416);
    for bad in ["bytes=abc", "bytes=0-1,4-5", "lines=1-2", "bytes=9-3"] {
        let r = api.get_with(&path, &[("range", bad)]).await;
        assert_error(&r, 400);
    }

    for rest in [
        "/files/../manifest.json",
        "/files/points/../manifest.json",
        "/files/%2e%2e/%2e%2e/Cargo.toml",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
        "/files/points%2F..%2Fmanifest.json",
        "/files/nothing.parquet",
    ] {
        // Sent as written: no client may tidy the path first.
        let path = api.path(rest);
        let r = api.get(&path).await;
        let answer = format!("{:?} {}", r.headers(), text(&r));
        // A host may resolve dot segments as a URL parser does (the Workers runtime does,
        // before the Worker sees the request): then it answers what the resolved path
        // answers, which must lie among the dataset's files.
        let resolved = without_dot_segments(&path);
        if r.status() != 404 && resolved != path {
            assert!(
                resolved.starts_with(&api.path("/files/")),
                "{path}: {answer}"
            );
            let direct = api.get(&resolved).await;
            assert_eq!(
                (r.status(), r.body()),
                (direct.status(), direct.body()),
                "{path}"
            );
            continue;
        }
        assert_eq!(r.status(), 404, "{path}: {answer}");
        assert!(
            !answer.contains("PAR1") && !answer.contains("root:"),
            "{path}"
        );
    }
}

/// `path` with its dot segments resolved as the WHATWG URL parser resolves them (`.`, `..`
/// and their percent-encoded forms; `%2F` is not a separator).
fn without_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match segment.to_ascii_lowercase().as_str() {
            "." | "%2e" => {
                if last {
                    out.push("");
                }
            }
            ".." | ".%2e" | "%2e." | "%2e%2e" => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            _ => out.push(segment),
        }
    }
    format!("/{}", out.join("/"))
}

/// A Parquet answer of a label that fills row groups of its own copies those row groups as
/// stored (their bytes and statistics), and holds exactly the label's points in the stored
/// order. Needs an edge-layout dataset whose biggest label fills a row group.
pub async fn parquet_answers_copy_the_labels_own_row_groups_as_stored(api: &Api<'_>) {
    let (big, n) = api.biggest_label().await;
    // Row groups holding only this label, as their label statistics say: the stored ones have
    // statistics, answers encoded afresh have none, copies keep the stored ones.
    let only_big = |g: &RowGroupMetaData| match g.column(0).statistics() {
        Some(Statistics::Int64(s)) => {
            s.min_opt().map(|v| *v as u64) == Some(big)
                && s.max_opt().map(|v| *v as u64) == Some(big)
        }
        _ => false,
    };
    let manifest = api.json(&api.path("/files/manifest.json")).await;
    let mut own: Vec<Bytes> = Vec::new();
    for file in manifest["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        let stored = api.get(&api.path(&format!("/files/{path}"))).await;
        assert_eq!(stored.status(), 200, "{path}");
        own.extend(
            row_group_bytes(stored.body())
                .into_iter()
                .filter(|(g, _)| only_big(g))
                .map(|(_, b)| b),
        );
    }
    assert!(
        !own.is_empty(),
        "label {big} ({n} points) fills no row group of its own"
    );
    let answer = api.points(big, "format=parquet").await.into_body();
    let copied = row_group_bytes(&answer)
        .into_iter()
        .filter(|(g, b)| only_big(g) && own.contains(b))
        .count();
    assert_eq!(
        copied,
        own.len(),
        "every row group of the label's own is copied as stored"
    );
    // And the answer holds exactly the label's points, in the stored order.
    let rows = parquet_rows(answer);
    let expected: Vec<Vec<i64>> = arrow_rows(api.points(big, "").await.body())
        .into_iter()
        .map(|(l, p)| [vec![l as i64], p].concat())
        .collect();
    assert_eq!(rows.len() as u64, n);
    assert_eq!(rows, expected);
}

#[cfg(test)]
mod tests {
    use super::without_dot_segments;

    #[test]
    fn dot_segments_resolve_as_a_url_parser_resolves_them() {
        for (path, resolved) in [
            ("/d/files/../manifest.json", "/d/manifest.json"),
            ("/d/files/points/../manifest.json", "/d/files/manifest.json"),
            ("/d/files/%2e%2e/%2E%2e/Cargo.toml", "/Cargo.toml"),
            ("/d/files/./a/.", "/d/files/a/"),
            ("/d/files//etc/passwd", "/d/files//etc/passwd"),
            (
                "/d/files/points%2F..%2Fmanifest.json",
                "/d/files/points%2F..%2Fmanifest.json",
            ),
            ("/../../x", "/x"),
        ] {
            assert_eq!(without_dot_segments(path), resolved, "{path}");
        }
    }
}
