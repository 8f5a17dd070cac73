//! The Query library (`pocaduck-edge-query`) against the real thing: the sample built by the
//! `pocaduck-edge` binary, read locally, through a running `pocaduck-edge serve` used as a
//! static HTTP host, and from a real `vastdb-emulator` in both table layouts. Every label's
//! labels, counts and points must equal the HTTP API's answers and each other's.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;

use pocaduck_edge_query::{Error, Layout, Points, Query, ReadError, StorageConfig, StorageType};
use serde_json::Value;

use crate::common;
use crate::common::{bin, client, ChildGuard, ACCESS_KEY, SECRET_KEY};

/// The sample at 256 nm and a server over it (dataset `sample`).
struct Sample {
    path: PathBuf,
    base: String,
    _server: ChildGuard,
    _dir: tempfile::TempDir,
}

fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample");
        common::run(&["sample", path.to_str().unwrap(), "--voxel-nm", "256"]);
        let mut serve = common::command(bin(), Some(dir.path()));
        serve
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--data",
                path.to_str().unwrap(),
            ])
            .stderr(Stdio::null());
        let (server, base) = common::spawn_listening(serve);
        Sample {
            path,
            base,
            _server: server,
            _dir: dir,
        }
    })
}

fn local_query() -> Query {
    Query::new(StorageConfig::new(sample().path.to_str().unwrap())).unwrap()
}

fn api(path: &str) -> String {
    format!("{}/v1/datasets/sample{path}", sample().base)
}

fn get_json(url: &str) -> Value {
    let r = client().get(url).send().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().unwrap()
}

/// Every label through the API's pages.
fn api_labels() -> Vec<u64> {
    let mut labels = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => api(&format!("/labels?limit=4&after={a}")),
            None => api("/labels?limit=4"),
        };
        let page = get_json(&url);
        labels.extend(
            page["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().parse::<u64>().unwrap()),
        );
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return labels,
        }
    }
}

/// An .npy of int64 as points.
fn npy_points(bytes: &[u8]) -> Points {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<i8'"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap();
    let mut dims = shape.split(')').next().unwrap().split(',');
    let n: usize = dims.next().unwrap().trim().parse().unwrap();
    let d: usize = dims.next().unwrap().trim().parse().unwrap();
    let data: Vec<i64> = bytes[10 + header_len..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(data.len(), n * d);
    Points { dims: d, data }
}

/// Labels, counts and points of two queries are equal, label by label.
fn assert_same_answers(ours: &Query, reference: &Query, what: &str) {
    let labels = reference.get_labels().unwrap();
    assert_eq!(ours.get_labels().unwrap(), labels, "{what}: labels");
    assert_eq!(ours.dims(), reference.dims());
    for &label in &labels {
        // Counted before the points are read (and cached), so the count is the backend's.
        let count = ours.get_point_count(label).unwrap();
        let expected = reference.get_points(label).unwrap();
        assert_eq!(count, expected.len() as u64, "{what}: count of {label}");
        let (got, timing) = ours.get_points_timed(label).unwrap();
        assert_eq!(got.shape(), expected.shape(), "{what}: label {label}");
        assert!(got == expected, "{what}: label {label} has other points");
        assert_eq!(timing.points_returned, expected.len() as u64);
        assert_eq!(
            ours.get_blocks_for_label(label).unwrap(),
            reference.get_blocks_for_label(label).unwrap(),
            "{what}: blocks of {label}"
        );
    }
}

#[test]
fn local_query_equals_the_http_api() {
    let query = local_query();
    assert_eq!(query.storage_type(), StorageType::Local);
    let labels = query.get_labels().unwrap();
    assert_eq!(labels, api_labels());
    assert_eq!(labels.len(), 15);
    assert!(labels.windows(2).all(|w| w[0] < w[1]), "ascending");
    assert!(labels.contains(&((1 << 53) + 1)), "labels above 2^53 exact");
    assert!(labels.contains(&u64::MAX));
    for &label in &labels {
        let info = get_json(&api(&format!("/labels/{label}")));
        let count = query.get_point_count(label).unwrap();
        assert_eq!(count, info["point_count"].as_u64().unwrap(), "{label}");
        let r = client()
            .get(api(&format!("/labels/{label}/points?format=npy&order=xyz")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let expected = npy_points(&r.bytes().unwrap());
        let got = query.get_points(label).unwrap();
        assert_eq!(got.shape(), (count as usize, 3), "{label}");
        assert!(
            got == expected,
            "label {label}: other points than the API's"
        );
        let (timed, timing) = query.get_points_timed(label).unwrap();
        assert!(timed == expected);
        assert!(timing.cache_hit, "the second read of {label} is cached");
        assert_eq!(timing.backend, "edge");
        let blocks: Vec<String> = info["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["block_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(query.get_blocks_for_label(label).unwrap(), blocks);
    }
}

#[test]
fn unknown_labels_are_empty_where_the_api_says_404() {
    let query = local_query();
    for label in [0, 1 << 53, (1 << 53) + 50, u64::MAX - 5] {
        let r = client()
            .get(api(&format!("/labels/{label}/points?format=npy")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 404, "{label}");
        assert_eq!(query.get_points(label).unwrap().shape(), (0, 3));
        assert_eq!(query.get_point_count(label).unwrap(), 0);
        assert!(query.get_blocks_for_label(label).unwrap().is_empty());
    }
}

#[test]
fn http_storage_reads_the_sample_from_a_static_host() {
    // The server's raw-file route is a static host with range reads, like any bucket.
    let config = StorageConfig::new(api("/files/"));
    assert_eq!(config.storage_type().unwrap(), StorageType::Http);
    let query = Query::new(config).unwrap();
    assert_eq!(query.storage_type(), StorageType::Http);
    assert_same_answers(&query, &local_query(), "http");
    let label = query.get_labels().unwrap()[0];
    let (_, timing) = query.get_points_with(label, false).unwrap();
    assert!(!timing.cache_hit);
    assert!(
        timing.requests >= 1 && timing.bytes_fetched > 0,
        "{timing:?}"
    );
    // A host without a dataset there: the dataset is unavailable, the missing file named.
    match Query::new(StorageConfig::new(api("/nothing/"))) {
        Err(Error::Read(ReadError::Unavailable { detail, .. })) => {
            assert!(detail.contains("manifest.json"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

fn vast_config(stack: &common::VastStack, layout: Layout) -> StorageConfig {
    StorageConfig {
        vastdb_table: stack.dataset.clone(),
        vastdb_layout: layout,
        ..StorageConfig::vastdb(&stack.emulator, ACCESS_KEY, SECRET_KEY, "pocaduck", "tests")
    }
}

fn vastdb_equals_local(layout: Layout, name: &str) {
    let stack = common::vast_stack(name, &[]);
    let query = Query::new(vast_config(&stack, layout)).unwrap();
    assert_eq!(query.storage_type(), StorageType::Vastdb);
    assert_same_answers(&query, &local_query(), name);
    let label = query.get_labels().unwrap()[2];
    let (points, first) = query.get_points_with(label, false).unwrap();
    assert_eq!(first.backend, "vastdb");
    assert!(!first.cache_hit && first.requests >= 1 && first.bytes_fetched > 0);
    assert_eq!(first.points_returned, points.len() as u64);
    let (_, second) = query.get_points_timed(label).unwrap();
    let (_, third) = query.get_points_timed(label).unwrap();
    assert!(!second.cache_hit && third.cache_hit);
    assert_eq!(third.requests, 0);
    // Unknown labels are empty here too.
    assert_eq!(query.get_points(12345).unwrap().shape(), (0, 3));
    assert_eq!(query.get_point_count(12345).unwrap(), 0);
    assert!(query.get_blocks_for_label(12345).unwrap().is_empty());
    query.close();

    // A wrong secret is a clear error that does not show the secret.
    let wrong = StorageConfig {
        vastdb_secret_key: Some("wrong-secret-never-shown".into()),
        ..vast_config(&stack, layout)
    };
    let err = Query::new(wrong).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, Error::Read(_)), "{shown}");
    assert!(!shown.contains("wrong-secret-never-shown"), "{shown}");
    // So is a table in another layout than the config says.
    let other = match layout {
        Layout::Columnar => Layout::Pocaduck,
        Layout::Pocaduck => Layout::Columnar,
    };
    match Query::new(vast_config(&stack, other)) {
        Err(Error::Read(e)) => {
            assert!(matches!(e, ReadError::Unavailable { .. }), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vastdb_columnar_equals_local() {
    vastdb_equals_local(Layout::Columnar, "columnar");
}

#[test]
fn vastdb_pocaduck_layout_equals_local() {
    vastdb_equals_local(Layout::Pocaduck, "pocaduck");
}
