//! The read API's conformance suite (`pocaduck-edge-conformance`) over real HTTP.
//!
//! Every test takes its base URL from `POCADUCK_EDGE_BASE_URL` and its dataset from
//! `POCADUCK_EDGE_DATASET`, so the same suite can run against any host (native server,
//! Worker, VastDB backend). Without them, it builds a small sample with the real binary and
//! starts `pocaduck-edge serve` on a loopback port, next to deliberately broken datasets
//! for the tests that need them (those tests only run against the local server). With
//! `POCADUCK_EDGE_VASTDB_LAYOUT=columnar|pocaduck` it loads that sample into a
//! `vastdb-emulator` and runs the suite against the VastDB backend.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;

use pocaduck_edge_conformance::checks::host::BROKEN_DATASETS;
use pocaduck_edge_conformance::checks::{
    answers, errors, files, host, listing, points, vastdb_reply,
};
use pocaduck_edge_conformance::decode::arrow_rows;
use pocaduck_edge_conformance::{Api, HttpTarget};
use pocaduck_edge_proxy::Limits;

use crate::common;
use crate::common::{bin, run, ChildGuard};

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
        let [bad_manifest, missing, truncated] =
            BROKEN_DATASETS.map(|(name, _)| dir.path().join(name));
        common::copy_dir(&good, &bad_manifest);
        std::fs::write(
            bad_manifest.join("manifest.json"),
            b"{\"format\": \"pocaduck-edge\", \"ver",
        )
        .unwrap();
        common::copy_dir(&good, &missing);
        std::fs::remove_file(missing.join("points/part-00000.parquet")).unwrap();
        common::copy_dir(&good, &truncated);
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
            LIMITS.max_labels.to_string(),
            "--max-points".into(),
            LIMITS.max_points.to_string(),
            "--cors-origin".into(),
            ORIGIN.into(),
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

/// The local server's limits (`--max-labels`, `--max-points`; the others are the defaults).
const LIMITS: Limits = Limits {
    max_labels: 5,
    max_points: 50_000,
    ..Limits::DEFAULT
};

/// The origin the local server allows (`--cors-origin`).
const ORIGIN: &str = "https://viewer.example";

/// A client of the server, for one test (each test has a runtime of its own).
fn target() -> HttpTarget {
    HttpTarget::new(&server().base)
}

/// One test per check that holds for any host.
macro_rules! any_host {
    ($($module:ident::$check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let target = target();
            $module::$check(&Api::new(&target, &server().dataset)).await;
        }
    )*};
}

pocaduck_edge_conformance::any_host_checks!(any_host);

#[tokio::test]
async fn the_columns_shape_carries_the_same_points_as_rows() {
    // The sample and the columnar table store every coordinate as int32, and so answer;
    // PoCADuck's layout stores lists of int64; another host's dataset is not known here.
    let stored = match std::env::var("POCADUCK_EDGE_VASTDB_LAYOUT").as_deref() {
        Ok("pocaduck") => Some(arrow_schema::DataType::Int64),
        _ if server().local.is_some() || server()._vast.is_some() => {
            Some(arrow_schema::DataType::Int32)
        }
        _ => None,
    };
    let target = target();
    let api = Api::new(&target, &server().dataset);
    points::the_columns_shape_carries_the_same_points_as_rows(&api, stored).await;
}

/// One test per check of what the local server was configured with: skipped against
/// another host or a VastDB table.
macro_rules! local_server {
    ($($check:ident($api:ident, $local:ident) => $call:expr;)*) => {$(
        #[tokio::test]
        async fn $check() {
            let Some($local) = &server().local else { return };
            let target = target();
            let $api = Api::new(&target, &server().dataset);
            $call.await;
        }
    )*};
}

local_server! {
    cors_allows_the_configured_origin_without_preflight(api, _local) =>
        host::cors_allows_the_configured_origin_without_preflight(&api, ORIGIN);
    limits_answer_413_naming_the_limit(api, _local) =>
        host::limits_answer_413_naming_the_limit(&api, &LIMITS, ORIGIN);
    parquet_answers_copy_the_labels_own_row_groups_as_stored(api, _local) =>
        files::parquet_answers_copy_the_labels_own_row_groups_as_stored(&api);
    broken_datasets_answer_503_while_the_others_serve(api, local) =>
        host::broken_datasets_answer_503_while_the_others_serve(&api, &local.log);
    levels_of_detail_of_big_labels_read_their_coarse_level(api, _local) =>
        host::levels_of_detail_of_big_labels_read_their_coarse_level(
            &api.dataset_named("coarse"),
            COARSE_POINTS,
        );
}

#[tokio::test]
async fn object_store_urls_serve_the_same_points() {
    let Some(_) = &server().local else { return };
    let target = target();
    let api = Api::new(&target, &server().dataset);
    // The local sample again, through an object-store URL (file://) instead of a directory.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sample");
    let manifest = api.json(&api.path("/files/manifest.json")).await;
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
        let r = api.get(&api.path(&format!("/files/{path}"))).await;
        assert_eq!(r.status(), 200, "{path}");
        std::fs::create_dir_all(copy.join(&path).parent().unwrap()).unwrap();
        std::fs::write(copy.join(&path), r.body()).unwrap();
    }
    let location = format!("file://{}", copy.display());
    let mut serve = common::command(bin(), None);
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--data", &location])
        .stderr(Stdio::null());
    let (_guard, other) = common::spawn_listening(serve);
    let other = HttpTarget::new(&other);
    let label = *api.labels().await.last().unwrap();
    let theirs = Api::new(&other, "sample").points(label, "").await;
    assert_eq!(theirs.status(), 200);
    assert_eq!(
        arrow_rows(theirs.body()),
        arrow_rows(api.points(label, "").await.body())
    );
}
