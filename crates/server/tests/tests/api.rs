//! The read API's conformance suite, over real HTTP.
//!
//! Every test takes its base URL from `POCADUCK_EDGE_BASE_URL` and its dataset from
//! `POCADUCK_EDGE_DATASET`, so the same suite can run against any host (native server,
//! Worker, VastDB backend). Without them, it builds a small sample with the real binary and
//! starts `pocaduck-edge serve` on a loopback port, next to deliberately broken datasets
//! for the tests that need them (those tests only run against the local server). With
//! `POCADUCK_EDGE_VASTDB_LAYOUT=columnar|pocaduck` it loads that sample into a
//! `vastdb-emulator` and runs the suite against the VastDB backend.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array};
use reqwest::StatusCode;
use serde_json::Value;

struct Server {
    base: String,
    dataset: String,
    local: Option<LocalServer>,
    _vast: Option<common::VastStack>,
}

struct LocalServer {
    /// Where the server's log goes.
    log: PathBuf,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

use crate::common;
use crate::common::{arrow_column_rows, arrow_rows, bin, client, run, ChildGuard};

fn copy_dir(from: &Path, to: &Path) {
    for entry in walk(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Starts the local server once for the whole suite.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(base) = std::env::var("POCADUCK_EDGE_BASE_URL") {
            let dataset = std::env::var("POCADUCK_EDGE_DATASET")
                .expect("POCADUCK_EDGE_DATASET goes with POCADUCK_EDGE_BASE_URL");
            return Server {
                base,
                dataset,
                local: None,
                _vast: None,
            };
        }
        if let Ok(layout) = std::env::var("POCADUCK_EDGE_VASTDB_LAYOUT") {
            let stack = common::vast_stack(&layout, &[]);
            return Server {
                base: stack.base.clone(),
                dataset: stack.dataset.clone(),
                local: None,
                _vast: Some(stack),
            };
        }
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("sample");
        run(&["sample", good.to_str().unwrap(), "--voxel-nm", "256"]);
        // The same points with coarse levels on its labels of more than 4 × 1000 points.
        let coarse = dir.path().join("coarse");
        run(&[
            "sample",
            coarse.to_str().unwrap(),
            "--voxel-nm",
            "256",
            "--coarse-points",
            &COARSE_POINTS.to_string(),
        ]);
        // Broken copies: a corrupt manifest, a missing points file, a truncated points file.
        let bad_manifest = dir.path().join("bad-manifest");
        copy_dir(&good, &bad_manifest);
        std::fs::write(
            bad_manifest.join("manifest.json"),
            b"{\"format\": \"pocaduck-edge\", \"ver",
        )
        .unwrap();
        let missing = dir.path().join("missing-parquet");
        copy_dir(&good, &missing);
        std::fs::remove_file(missing.join("points/part-00000.parquet")).unwrap();
        let truncated = dir.path().join("truncated-parquet");
        copy_dir(&good, &truncated);
        let f = truncated.join("points/part-00000.parquet");
        let len = std::fs::metadata(&f).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .set_len(len / 2)
            .unwrap();

        let mut args: Vec<String> = vec![
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--max-labels".into(),
            "5".into(),
            "--max-points".into(),
            "50000".into(),
            "--cors-origin".into(),
            "https://viewer.example".into(),
        ];
        for d in [&good, &coarse, &bad_manifest, &missing, &truncated] {
            args.push("--data".into());
            args.push(d.to_str().unwrap().into());
        }
        let log = dir.path().join("server.log");
        let mut serve = common::command(bin(), Some(dir.path()));
        serve
            .args(&args)
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, base) = common::spawn_listening(serve);
        Server {
            base,
            dataset: "sample".into(),
            local: Some(LocalServer {
                log,
                _child: child,
                _dir: dir,
            }),
            _vast: None,
        }
    })
}

/// `--coarse-points` of the local server's `coarse` dataset.
const COARSE_POINTS: u64 = 1000;

fn url(path: &str) -> String {
    format!("{}/v1/datasets/{}{}", server().base, server().dataset, path)
}

fn get_json(u: &str) -> Value {
    let r = client().get(u).send().unwrap();
    assert_eq!(r.status(), 200, "{u}");
    r.json().unwrap()
}

fn all_labels() -> Vec<u64> {
    let v = get_json(&url("/labels?limit=10000"));
    v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().parse().unwrap())
        .collect()
}

/// Decodes an .npy of int64 into rows.
fn npy_rows(bytes: &[u8]) -> Vec<Vec<i64>> {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<i8'"), "{header}");
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let dims: usize = shape.split(',').nth(1).unwrap().trim().parse().unwrap();
    let values: Vec<i64> = bytes[10 + header_len..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    values.chunks(dims).map(|r| r.to_vec()).collect()
}

fn points(label: u64, query: &str) -> reqwest::blocking::Response {
    client()
        .get(url(&format!("/labels/{label}/points?{query}")))
        .send()
        .unwrap()
}

fn npy_points(label: u64, query: &str) -> Vec<Vec<i64>> {
    let r = points(label, &format!("format=npy&{query}"));
    assert_eq!(r.status(), 200);
    npy_rows(&r.bytes().unwrap())
}

/// A label's points through the streamed Arrow format (no size limit).
fn label_rows(label: u64, query: &str) -> Vec<Vec<i64>> {
    let r = points(label, query);
    assert_eq!(r.status(), 200);
    let rows = arrow_rows(&r.bytes().unwrap());
    assert!(rows.iter().all(|(l, _)| *l == label));
    rows.into_iter().map(|(_, p)| p).collect()
}

fn assert_error(r: reqwest::blocking::Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status);
    let v: Value = r.json().unwrap();
    let code = v["error"]["code"].as_str().expect("error.code").to_string();
    assert!(!v["error"]["message"]
        .as_str()
        .expect("error.message")
        .is_empty());
    code
}

#[test]
fn lists_the_dataset() {
    let v = get_json(&format!("{}/v1/datasets", server().base));
    let ds = v["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == server().dataset.as_str())
        .expect("listed");
    assert_eq!(ds["status"], "ok");
    let summary = get_json(&url(""));
    assert_eq!(summary["dims"].as_array().unwrap().len(), 3);
    assert_eq!(
        summary["label_count"].as_u64().unwrap(),
        all_labels().len() as u64
    );
}

#[test]
fn labels_page_in_ascending_order_and_include_big_ids() {
    let labels = all_labels();
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
        let v = get_json(&url(&format!("/labels?{q}")));
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

#[test]
fn counts_and_bounds_match_the_points() {
    for label in all_labels() {
        let info = get_json(&url(&format!("/labels/{label}")));
        assert_eq!(info["label"], label.to_string());
        let rows = label_rows(label, "");
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

#[test]
fn every_format_carries_the_same_points() {
    let labels = all_labels();
    let label = *labels.last().unwrap();
    let npy: BTreeSet<Vec<i64>> = npy_points(label, "").into_iter().collect();

    let arrow = points(label, "");
    assert_eq!(
        arrow.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    let rows = arrow_rows(&arrow.bytes().unwrap());
    assert!(rows.iter().all(|(l, _)| *l == label));
    assert_eq!(
        rows.into_iter().map(|(_, r)| r).collect::<BTreeSet<_>>(),
        npy
    );

    let json: Value = points(label, "format=json").json().unwrap();
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

    let parquet = parquet_rows(points(label, "format=parquet").bytes().unwrap());
    assert!(parquet.iter().all(|row| row[0] as u64 == label));
    let parquet: BTreeSet<Vec<i64>> = parquet.into_iter().map(|row| row[1..].to_vec()).collect();
    assert_eq!(parquet, npy);
}

/// The dim columns of a Parquet answer (after the label) as i64.
fn arrow_cast_i64(batch: arrow_array::RecordBatch) -> Vec<Vec<i64>> {
    (1..batch.num_columns())
        .map(|c| {
            let col = batch.column(c);
            if let Some(a) = col.as_any().downcast_ref::<arrow_array::Int32Array>() {
                a.values().iter().map(|v| *v as i64).collect()
            } else {
                col.as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            }
        })
        .collect()
}

#[test]
fn points_come_in_pocaducks_xyz_order() {
    for label in all_labels() {
        let stored = label_rows(label, "");
        assert!(
            stored.windows(2).all(|w| w[0] < w[1]),
            "label {label}: strictly ascending rows"
        );
        assert_eq!(label_rows(label, "order=xyz"), stored);
    }
}

/// A `bbox` option from a label's lowest corner to the middle of its bounds, and that middle.
fn lower_half_bbox(label: u64) -> (String, Vec<i64>) {
    let info = get_json(&url(&format!("/labels/{label}")));
    let (min, max) = (&info["bbox"]["min"], &info["bbox"]["max"]);
    let mid: Vec<i64> = (0..3)
        .map(|d| (min[d].as_i64().unwrap() + max[d].as_i64().unwrap()) / 2)
        .collect();
    let q = format!(
        "bbox={},{},{},{},{},{}",
        min[0], min[1], min[2], mid[0], mid[1], mid[2]
    );
    (q, mid)
}

#[test]
fn limit_and_bbox_select_subsets() {
    let label = all_labels()[0];
    let all: BTreeSet<Vec<i64>> = label_rows(label, "").into_iter().collect();
    let some = npy_points(label, "limit=50");
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
    let arrow_some = arrow_rows(&points(label, "limit=50").bytes().unwrap());
    assert_eq!(
        arrow_some.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
        some
    );
    assert_eq!(
        label_rows(label, &format!("limit={}", all.len() + 10)).len(),
        all.len()
    );
    assert_eq!(label_rows(label, "limit=0").len(), 0);

    let (q, mid) = lower_half_bbox(label);
    let inside = label_rows(label, &q);
    let expected: Vec<&Vec<i64>> = all
        .iter()
        .filter(|p| (0..3).all(|d| p[d] <= mid[d]))
        .collect();
    assert_eq!(inside.len(), expected.len());
    assert!(!inside.is_empty() && inside.len() < all.len());
    let arrow_inside = arrow_rows(&points(label, &q).bytes().unwrap());
    assert_eq!(arrow_inside.len(), inside.len());
}

#[test]
fn the_columns_shape_carries_the_same_points_as_rows() {
    let labels = all_labels();
    let dims: Vec<String> = get_json(&url(""))["dims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    for &label in &labels {
        let r = points(label, "shape=columns");
        assert_eq!(r.status(), 200);
        let (schema, rows) = arrow_column_rows(&r.bytes().unwrap());
        // One label: no label column, the label in the metadata, a column per dim.
        assert_eq!(schema.metadata()["pocaduck_edge:label"], label.to_string());
        let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, dims.iter().collect::<Vec<_>>());
        // The sample and the columnar table store every coordinate as int32, and so answer;
        // PoCADuck's layout stores lists of int64.
        let stored = match std::env::var("POCADUCK_EDGE_VASTDB_LAYOUT").as_deref() {
            Ok("pocaduck") => Some(arrow_schema::DataType::Int64),
            _ if server().local.is_some() || server()._vast.is_some() => {
                Some(arrow_schema::DataType::Int32)
            }
            _ => None,
        };
        if let Some(stored) = stored {
            assert!(schema.fields().iter().all(|f| f.data_type() == &stored));
        }
        let rows: Vec<Vec<i64>> = rows.into_iter().map(|(_, p)| p).collect();
        assert_eq!(rows, label_rows(label, ""), "label {label}");
        // The edge layout knows a label's bounds from its index: an answer of every point
        // gives them (D minima, then D maxima); VastDB's streamed answers do not.
        let hint = schema.metadata().get("pocaduck_edge:bbox");
        if server()._vast.is_none() || hint.is_some() {
            assert_eq!(hint, Some(&bounds_text(&rows)), "label {label}");
        }
    }
    // A level of detail and a box select the same points in either shape, and name no
    // bounds: those of the label are not theirs.
    let label = labels[0];
    for q in ["limit=50".to_owned(), lower_half_bbox(label).0] {
        let (schema, rows) = arrow_column_rows(
            &points(label, &format!("shape=columns&{q}"))
                .bytes()
                .unwrap(),
        );
        assert!(!schema.metadata().contains_key("pocaduck_edge:bbox"), "{q}");
        let rows: Vec<Vec<i64>> = rows.into_iter().map(|(_, p)| p).collect();
        assert_eq!(rows, label_rows(label, &q), "{q}");
    }
    // Several labels: a label column first.
    let chosen = [labels[0], *labels.last().unwrap()];
    let body = serde_json::json!({"labels": chosen.iter().map(u64::to_string).collect::<Vec<_>>()});
    let r = client()
        .post(url("/points?shape=columns"))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (schema, rows) = arrow_column_rows(&r.bytes().unwrap());
    assert_eq!(schema.field(0).name(), "label");
    let r = client().post(url("/points")).json(&body).send().unwrap();
    assert_eq!(rows, arrow_rows(&r.bytes().unwrap()));
}

/// The schema metadata of an Arrow answer.
fn arrow_metadata(bytes: &[u8]) -> std::collections::HashMap<String, String> {
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    reader.schema().metadata().clone()
}

#[test]
fn rows_answers_of_one_whole_label_name_its_bounds() {
    let labels = all_labels();
    for &label in &labels {
        let bytes = points(label, "").bytes().unwrap();
        let rows: Vec<Vec<i64>> = arrow_rows(&bytes).into_iter().map(|(_, p)| p).collect();
        // As in the columns shape: the edge layout knows the bounds from its index.
        let hint = arrow_metadata(&bytes).get("pocaduck_edge:bbox").cloned();
        if server()._vast.is_none() || hint.is_some() {
            assert_eq!(hint, Some(bounds_text(&rows)), "label {label}");
        }
    }
    // A level of detail, a box and several labels name none.
    let label = labels[0];
    for q in ["limit=50".to_owned(), lower_half_bbox(label).0] {
        let bytes = points(label, &q).bytes().unwrap();
        assert!(
            !arrow_metadata(&bytes).contains_key("pocaduck_edge:bbox"),
            "{q}"
        );
    }
    let chosen = [labels[0], *labels.last().unwrap()];
    let body = serde_json::json!({"labels": chosen.iter().map(u64::to_string).collect::<Vec<_>>()});
    let r = client().post(url("/points")).json(&body).send().unwrap();
    assert_eq!(r.status(), 200);
    let metadata = arrow_metadata(&r.bytes().unwrap());
    assert!(!metadata.contains_key("pocaduck_edge:bbox"));
}

/// The bounds of points as an answer names them (`pocaduck_edge:bbox`): the D minima, then
/// the D maxima, comma-separated.
fn bounds_text(points: &[Vec<i64>]) -> String {
    let dims = points[0].len();
    let axis = |d: usize| points.iter().map(move |p| p[d]);
    let bounds: Vec<String> = (0..dims)
        .map(|d| axis(d).min().unwrap())
        .chain((0..dims).map(|d| axis(d).max().unwrap()))
        .map(|v| v.to_string())
        .collect();
    bounds.join(",")
}

/// What a Parquet answer's key-value metadata says for `key`.
fn parquet_metadata(bytes: &bytes::Bytes, key: &str) -> Option<String> {
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(bytes)
        .unwrap();
    let kv = meta.file_metadata().key_value_metadata()?;
    kv.iter().find(|kv| kv.key == key)?.value.clone()
}

/// A one-label Parquet answer's points (its rows without the label) and the bounds it names.
fn parquet_points_and_bounds(bytes: bytes::Bytes) -> (Vec<Vec<i64>>, Option<String>) {
    let bounds = parquet_metadata(&bytes, "pocaduck_edge:bbox");
    let points = parquet_rows(bytes)
        .into_iter()
        .map(|r| r[1..].to_vec())
        .collect();
    (points, bounds)
}

#[test]
fn parquet_answers_of_one_label_name_their_bounds() {
    // Every point of a label: its bounds, from the index on the edge layout.
    for label in all_labels() {
        let (rows, hint) =
            parquet_points_and_bounds(points(label, "format=parquet").bytes().unwrap());
        assert_eq!(rows, label_rows(label, ""), "label {label}");
        if server()._vast.is_none() || hint.is_some() {
            assert_eq!(hint, Some(bounds_text(&rows)), "label {label}");
        }
    }
    // A selection: the bounds of what it holds when the server knows them (an answer it
    // buffers), never the label's; the edge layout's streamed answers name none.
    let label = all_labels()[0];
    for q in ["limit=50".to_owned(), lower_half_bbox(label).0] {
        let (rows, hint) = parquet_points_and_bounds(
            points(label, &format!("format=parquet&{q}"))
                .bytes()
                .unwrap(),
        );
        assert_eq!(rows, label_rows(label, &q), "{q}");
        if server()._vast.is_none() {
            assert_eq!(hint, None, "{q}");
        } else if let Some(hint) = hint {
            assert_eq!(hint, bounds_text(&rows), "{q}");
        }
    }
    // Several labels: none.
    let chosen: Vec<String> = all_labels()[..2].iter().map(u64::to_string).collect();
    let r = client()
        .post(url("/points?format=parquet"))
        .json(&serde_json::json!({ "labels": chosen }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        parquet_metadata(&r.bytes().unwrap(), "pocaduck_edge:bbox"),
        None
    );
}

/// The answer's `Pocaduck-Point-Count`, if any.
fn point_count(r: &reqwest::blocking::Response) -> Option<u64> {
    r.headers()
        .get("pocaduck-point-count")
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

#[test]
fn answers_give_their_point_count_before_the_points_when_known() {
    let labels = all_labels();
    let edge = get_json(&url(""))["backend"] == "edge";
    let label = *labels.last().unwrap();
    let info = get_json(&url(&format!("/labels/{label}")));
    let total = info["point_count"].as_u64().unwrap();
    for query in [
        "",
        "format=parquet",
        "format=npy",
        "format=json",
        "limit=50",
    ] {
        let r = points(label, query);
        let count = point_count(&r);
        let body = r.bytes().unwrap();
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
    assert_eq!(point_count(&points(label, &bbox)), None);
    // Several labels: the sum.
    let chosen = [labels[labels.len() - 2], *labels.last().unwrap()];
    let body = serde_json::json!({"labels": chosen.iter().map(u64::to_string).collect::<Vec<_>>()});
    let r = client().post(url("/points")).json(&body).send().unwrap();
    let count = point_count(&r);
    let rows = arrow_rows(&r.bytes().unwrap()).len() as u64;
    if edge {
        assert_eq!(count, Some(rows));
    }
}

#[test]
fn many_labels_in_one_post() {
    let labels = all_labels();
    let chosen = [labels[labels.len() - 2], *labels.last().unwrap()];
    let body = serde_json::json!({"labels": chosen.iter().map(u64::to_string).collect::<Vec<_>>()});
    let r = client().post(url("/points")).json(&body).send().unwrap();
    assert_eq!(r.status(), 200);
    let rows = arrow_rows(&r.bytes().unwrap());
    for label in chosen {
        let got: BTreeSet<Vec<i64>> = rows
            .iter()
            .filter(|(l, _)| *l == label)
            .map(|(_, p)| p.clone())
            .collect();
        let expected: BTreeSet<Vec<i64>> = label_rows(label, "").into_iter().collect();
        assert_eq!(got, expected, "label {label}");
    }
    let json: Value = client()
        .post(url("/points?format=json&order=xyz"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(json["labels"].as_array().unwrap().len(), 2);
    assert_eq!(json["labels"][1]["label"], chosen[1].to_string());
}

#[test]
fn bad_labels_are_400() {
    for bad in ["abc", "-1", "18446744073709551616", "1.5", "%20"] {
        let r = client().get(url(&format!("/labels/{bad}"))).send().unwrap();
        assert_eq!(assert_error(r, 400), "bad_label", "{bad}");
        let r = client()
            .get(url(&format!("/labels/{bad}/points")))
            .send()
            .unwrap();
        assert_eq!(assert_error(r, 400), "bad_label", "{bad}");
    }
    let r = client()
        .post(url("/points"))
        .json(&serde_json::json!({"labels": [9007199254740993u64]}))
        .send()
        .unwrap();
    assert_eq!(
        assert_error(r, 400),
        "bad_label",
        "a JSON number above 2^53"
    );
    let r = client()
        .post(url("/points"))
        .json(&serde_json::json!({"labels": ["-5"]}))
        .send()
        .unwrap();
    assert_error(r, 400);
}

#[test]
fn unknown_things_are_404() {
    let r = client().get(url("/labels/12345")).send().unwrap();
    assert_eq!(assert_error(r, 404), "not_found");
    let r = points(12345, "");
    assert_error(r, 404);
    let r = client()
        .get(format!(
            "{}/v1/datasets/no-such-dataset/labels",
            server().base
        ))
        .send()
        .unwrap();
    assert_error(r, 404);
    let r = client()
        .get(format!("{}/v2/anything", server().base))
        .send()
        .unwrap();
    assert_error(r, 404);
    let r = client()
        .post(url("/points"))
        .json(&serde_json::json!({"labels": ["12345"]}))
        .send()
        .unwrap();
    assert_error(r, 404);
}

#[test]
fn bad_options_are_400() {
    let label = all_labels()[0];
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
        assert_error(points(label, q), 400);
    }
    assert_error(client().get(url("/labels?limit=0")).send().unwrap(), 400);
    let r = client()
        .post(url("/points?format=npy"))
        .json(&serde_json::json!({"labels": [label.to_string()]}))
        .send()
        .unwrap();
    assert_error(r, 400);
    let r = client()
        .post(url("/points"))
        .body("not json")
        .send()
        .unwrap();
    assert_error(r, 400);
    let r = client().delete(url("/labels")).send().unwrap();
    assert_error(r, 405);
}

/// Sends a request exactly as written (no URL normalisation) and returns status and body.
fn raw_get(path: &str) -> (u16, String) {
    let host = server().base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    (status, response)
}

#[test]
fn files_serve_ranges_etags_and_nothing_outside_the_dataset() {
    if get_json(&url(""))["backend"] == "vastdb" {
        // A VastDB table has no files: the route answers 404.
        let r = client().get(url("/files/manifest.json")).send().unwrap();
        assert_eq!(assert_error(r, 404), "not_found");
        return;
    }
    let manifest = get_json(&url("/files/manifest.json"));
    let file = manifest["files"][0]["path"].as_str().unwrap().to_string();
    let size = manifest["files"][0]["size"].as_u64().unwrap();
    let etag = manifest["files"][0]["etag"].as_str().unwrap().to_string();

    let r = client()
        .get(url(&format!("/files/{file}")))
        .header("Range", "bytes=0-3")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 0-3/{size}"));
    assert_eq!(r.headers()["etag"], format!("\"{etag}\""));
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(&r.bytes().unwrap()[..], b"PAR1");

    let r = client()
        .get(url(&format!("/files/{file}")))
        .header("Range", format!("bytes={}-", size - 4))
        .send()
        .unwrap();
    assert_eq!(&r.bytes().unwrap()[..], b"PAR1");
    let whole = client().get(url(&format!("/files/{file}"))).send().unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().unwrap().len() as u64, size);

    let r = client()
        .head(url(&format!("/files/{file}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], size.to_string());

    let r = client()
        .get(url(&format!("/files/{file}")))
        .header("If-None-Match", format!("\"{etag}\""))
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().unwrap().is_empty());

    let r = client()
        .get(url(&format!("/files/{file}")))
        .header("Range", format!("bytes={size}-"))
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-range"], format!("bytes */{size}"));
    assert_error(r, 416);
    for bad in ["bytes=abc", "bytes=0-1,4-5", "lines=1-2", "bytes=9-3"] {
        let r = client()
            .get(url(&format!("/files/{file}")))
            .header("Range", bad)
            .send()
            .unwrap();
        assert_error(r, 400);
    }

    let ds = &server().dataset;
    for path in [
        format!("/v1/datasets/{ds}/files/../manifest.json"),
        format!("/v1/datasets/{ds}/files/points/../manifest.json"),
        format!("/v1/datasets/{ds}/files/%2e%2e/%2e%2e/Cargo.toml"),
        format!("/v1/datasets/{ds}/files//etc/passwd"),
        format!("/v1/datasets/{ds}/files/%2Fetc%2Fpasswd"),
        format!("/v1/datasets/{ds}/files/points%2F..%2Fmanifest.json"),
        format!("/v1/datasets/{ds}/files/nothing.parquet"),
    ] {
        let (status, response) = raw_get(&path);
        assert_eq!(status, 404, "{path}: {response}");
        assert!(
            !response.contains("PAR1") && !response.contains("root:"),
            "{path}"
        );
    }
}

#[test]
fn cors_allows_the_configured_origin_without_preflight() {
    let Some(_) = &server().local else { return };
    let label = all_labels()[0];
    let r = client()
        .get(url(&format!("/labels/{label}/points")))
        .header("Origin", "https://viewer.example")
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://viewer.example"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    for h in [
        "Content-Range",
        "Content-Length",
        "ETag",
        "Accept-Ranges",
        "Server-Timing",
        "Pocaduck-Point-Count",
        "X-Request-Id",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
    assert!(r.headers()["server-timing"]
        .to_str()
        .unwrap()
        .contains("fetch;dur="));
    let r = client()
        .get(url("/labels"))
        .header("Origin", "https://elsewhere.example")
        .send()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = client()
        .request(reqwest::Method::OPTIONS, url("/points"))
        .header("Origin", "https://viewer.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
}

#[test]
fn limits_answer_413_naming_the_limit() {
    let Some(_) = &server().local else { return };
    let labels: Vec<String> = all_labels().iter().take(6).map(u64::to_string).collect();
    assert_eq!(labels.len(), 6, "the sample has at least 6 labels");
    let r = client()
        .post(url("/points"))
        .json(&serde_json::json!({"labels": labels}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("5 labels"),
        "{v}"
    );
    // The biggest label is above the 50000-point limit for whole answers, but streams as Arrow
    // (and a level of detail under the limit is fine in any format).
    let (big, n) = biggest_label();
    let r = points(big, "format=npy");
    assert_eq!(r.status(), 413);
    let text = r.text().unwrap();
    assert!(text.contains("50000 points"), "{text}");
    assert_eq!(npy_points(big, "limit=50000").len(), 50000);
    let r = points(big, "");
    assert_eq!(r.status(), 200);
    assert_eq!(arrow_rows(&r.bytes().unwrap()).len() as u64, n);
    let r = points(big, "format=parquet");
    assert_eq!(r.status(), 200);
    assert_eq!(parquet_rows(r.bytes().unwrap()).len() as u64, n);
    // A body over the limit (1 MiB) is refused as any other error: JSON, a request id, CORS.
    let r = client()
        .post(url("/points"))
        .header("origin", "https://viewer.example")
        .header("content-type", "application/json")
        .body(vec![b' '; (1 << 20) + 1])
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://viewer.example"
    );
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"]["code"], "too_large");
    assert_eq!(v["error"]["request_id"], id.as_str());
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1048576 bytes"),
        "{v}"
    );
}

/// The label with the most points, and its count.
fn biggest_label() -> (u64, u64) {
    all_labels()
        .into_iter()
        .map(|l| {
            let n = get_json(&url(&format!("/labels/{l}")))["point_count"]
                .as_u64()
                .unwrap();
            (l, n)
        })
        .max_by_key(|(_, n)| *n)
        .unwrap()
}

/// The rows of a Parquet answer, in order: the label and the dims as i64.
fn parquet_rows(bytes: bytes::Bytes) -> Vec<Vec<i64>> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let labels = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::UInt64Array>()
            .unwrap()
            .clone();
        let dims = arrow_cast_i64(batch);
        for i in 0..labels.len() {
            let mut row = vec![labels.value(i) as i64];
            row.extend(dims.iter().map(|c| c[i]));
            rows.push(row);
        }
    }
    rows
}

/// The column-chunk bytes of each row group of a Parquet file.
fn row_group_bytes(
    file: &bytes::Bytes,
) -> Vec<(parquet::file::metadata::RowGroupMetaData, bytes::Bytes)> {
    use parquet::file::reader::FileReader;
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(file.clone()).unwrap();
    reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| {
            let (start, end) = g.columns().iter().fold((u64::MAX, 0), |(s, e), c| {
                let (o, l) = c.byte_range();
                (s.min(o), e.max(o + l))
            });
            (g.clone(), file.slice(start as usize..end as usize))
        })
        .collect()
}

#[test]
fn parquet_answers_copy_the_labels_own_row_groups_as_stored() {
    let Some(_) = &server().local else { return };
    let (big, n) = biggest_label();
    let stored = client()
        .get(url("/files/points/part-00000.parquet"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    // Row groups holding only this label, as their label statistics say: the stored ones have
    // statistics, answers encoded afresh have none, copies keep the stored ones.
    let only_big = |g: &parquet::file::metadata::RowGroupMetaData| match g.column(0).statistics() {
        Some(parquet::file::statistics::Statistics::Int64(s)) => {
            s.min_opt().map(|v| *v as u64) == Some(big)
                && s.max_opt().map(|v| *v as u64) == Some(big)
        }
        _ => false,
    };
    let own: Vec<bytes::Bytes> = row_group_bytes(&stored)
        .into_iter()
        .filter(|(g, _)| only_big(g))
        .map(|(_, b)| b)
        .collect();
    assert!(
        !own.is_empty(),
        "label {big} ({n} points) fills no row group of its own"
    );
    let answer = points(big, "format=parquet").bytes().unwrap();
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
    let expected: Vec<Vec<i64>> = arrow_rows(&points(big, "").bytes().unwrap())
        .into_iter()
        .map(|(l, p)| [vec![l as i64], p].concat())
        .collect();
    assert_eq!(rows.len() as u64, n);
    assert_eq!(rows, expected);
}

#[test]
fn broken_datasets_answer_503_while_the_others_serve() {
    let Some(local) = &server().local else { return };
    let base = &server().base;
    for (name, why) in [
        ("bad-manifest", "manifest"),
        ("missing-parquet", "part-00000.parquet"),
        ("truncated-parquet", "part-00000.parquet"),
    ] {
        let started = Instant::now();
        let r = client()
            .get(format!("{base}/v1/datasets/{name}/labels"))
            .send()
            .unwrap();
        // The answer names the dataset only; the log, under its request id, the reason.
        let (code, logged) = common::logged_error(r, 503, &local.log);
        assert_eq!(code, "dataset_unavailable");
        assert!(
            logged.contains(why) && logged.contains(name),
            "{name}: {logged}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let listing = get_json(&format!("{base}/v1/datasets"));
    let statuses: Vec<(String, String)> = listing["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("sample".into(), "ok".into())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("bad-manifest".into(), "unavailable".into())),
        "{statuses:?}"
    );
    assert_eq!(client().get(url("/labels")).send().unwrap().status(), 200);
}

#[test]
fn object_store_urls_serve_the_same_points() {
    let Some(_) = &server().local else { return };
    // The local sample again, through an object-store URL (file://) instead of a directory.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sample");
    let manifest = get_json(&url("/files/manifest.json"));
    for path in std::iter::once("manifest.json".to_string())
        .chain(
            manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap().to_string()),
        )
        .chain(std::iter::once(
            manifest["label_index"]["file"]["path"]
                .as_str()
                .unwrap()
                .to_string(),
        ))
    {
        let bytes = client()
            .get(url(&format!("/files/{path}")))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        std::fs::create_dir_all(copy.join(&path).parent().unwrap()).unwrap();
        std::fs::write(copy.join(&path), bytes).unwrap();
    }
    let location = format!("file://{}", copy.display());
    let mut serve = common::command(bin(), None);
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--data", &location])
        .stderr(Stdio::null());
    let (_guard, other) = common::spawn_listening(serve);
    let label = *all_labels().last().unwrap();
    let theirs = client()
        .get(format!("{other}/v1/datasets/sample/labels/{label}/points"))
        .send()
        .unwrap();
    assert_eq!(theirs.status(), 200);
    assert_eq!(
        arrow_rows(&theirs.bytes().unwrap()),
        arrow_rows(&points(label, "").bytes().unwrap())
    );
}

/// The rows at ranks ⌊j · len / n⌋ for j < n: a level of detail of `rows`.
fn spread<T: Clone>(rows: &[T], n: usize) -> Vec<T> {
    (0..n.min(rows.len()))
        .map(|j| rows[j * rows.len() / n.min(rows.len())].clone())
        .collect()
}

#[test]
fn levels_of_detail_of_big_labels_read_their_coarse_level() {
    let Some(_) = &server().local else { return };
    let base = &server().base;
    let api = |path: &str| format!("{base}/v1/datasets/coarse{path}");
    let rows = |label: u64, query: &str| -> Vec<Vec<i64>> {
        let r = client()
            .get(api(&format!("/labels/{label}/points?{query}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        arrow_rows(&r.bytes().unwrap())
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    };
    let manifest = get_json(&api("/files/manifest.json"));
    assert_eq!(manifest["version"], 2);
    assert!(!manifest["coarse"].as_array().unwrap().is_empty());
    let labels = all_labels();
    let mut with_level = 0;
    for &label in &labels {
        let all = rows(label, "");
        let n = all.len() as u64;
        // Without a level (labels of at most 4 × COARSE_POINTS), the label's own ranks.
        let Some(stride) = (n > 4 * COARSE_POINTS).then(|| {
            let mut s = 4;
            while n.div_ceil(2 * s) > COARSE_POINTS {
                s *= 2;
            }
            s
        }) else {
            assert_eq!(rows(label, "limit=77"), spread(&all, 77), "label {label}");
            continue;
        };
        with_level += 1;
        let level: Vec<Vec<i64>> = all.iter().step_by(stride as usize).cloned().collect();
        let m = level.len();
        assert!(m as u64 > COARSE_POINTS && m as u64 <= 2 * COARSE_POINTS);
        for limit in [1, 77, m / 2, m] {
            let got = rows(label, &format!("limit={limit}"));
            assert_eq!(got, spread(&level, limit), "label {label}, limit {limit}");
        }
        // Above the level's size, the label's own ranks.
        assert_eq!(
            rows(label, &format!("limit={}", m + 1)),
            spread(&all, m + 1)
        );
        // Other formats and the many-labels route pick the same points.
        let npy = client()
            .get(api(&format!("/labels/{label}/points?format=npy&limit=77")))
            .send()
            .unwrap();
        assert_eq!(npy_rows(&npy.bytes().unwrap()), spread(&level, 77));
        let post = client()
            .post(api("/points?limit=77"))
            .json(&serde_json::json!({"labels": [label.to_string()]}))
            .send()
            .unwrap();
        let posted: Vec<Vec<i64>> = arrow_rows(&post.bytes().unwrap())
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(posted, spread(&level, 77));
    }
    assert!(with_level >= 2, "{with_level} labels with a coarse level");
    assert!(with_level < labels.len(), "and some without");
}
