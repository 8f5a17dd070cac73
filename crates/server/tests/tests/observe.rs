//! What an operator sees of `serve`, against the real binary on 127.0.0.1: one log line per
//! request (parsed from the server's stderr) with its id, route, dataset, status, bytes and
//! times, and never a token or a signature; `/healthz` and `/readyz`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::{bin, client, command, grid_dataset, spawn_listening, wait_for, ChildGuard};

/// A server over a grid dataset (and, when `broken`, a dataset whose manifest is not JSON),
/// its log in a file.
struct Logged {
    base: String,
    log: PathBuf,
    _server: ChildGuard,
    _dir: tempfile::TempDir,
}

fn start(broken: bool) -> Logged {
    let dir = tempfile::tempdir().unwrap();
    let grid = dir.path().join("grid");
    grid_dataset(&grid, &[(1, 100), (2, 300_000)]);
    let mut server = command(bin(), None);
    server
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(&grid);
    if broken {
        let broken = dir.path().join("broken");
        std::fs::create_dir(&broken).unwrap();
        std::fs::write(broken.join("manifest.json"), "not json").unwrap();
        server.arg("--data").arg(&broken);
    }
    let log = dir.path().join("server.log");
    server.stderr(std::fs::File::create(&log).unwrap());
    let (guard, base) = spawn_listening(server);
    Logged {
        base,
        log,
        _server: guard,
        _dir: dir,
    }
}

fn shared() -> &'static Logged {
    static SERVER: OnceLock<Logged> = OnceLock::new();
    SERVER.get_or_init(|| start(true))
}

/// The fields of the `served` line of request `id`, waited for a bounded while.
fn served_line(log: &Path, id: &str) -> HashMap<String, String> {
    let line = wait_for(
        Duration::from_secs(5),
        format_args!("no served line for {id}"),
        || {
            std::fs::read_to_string(log)
                .unwrap()
                .lines()
                .find(|l| l.contains(" served ") && l.contains(&format!("request_id=\"{id}\"")))
                .map(str::to_owned)
        },
    );
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// Asks `path`, reads the answer whole, and returns its status, id, body and log line.
fn logged(path: &str) -> (u16, Vec<u8>, HashMap<String, String>) {
    let s = shared();
    let r = client().get(format!("{}{path}", s.base)).send().unwrap();
    let status = r.status().as_u16();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = r.bytes().unwrap().to_vec();
    let line = served_line(&s.log, &id);
    assert_eq!(line["request_id"], id);
    (status, body, line)
}

#[test]
fn each_request_is_one_line_with_its_route_status_bytes_and_times() {
    // Streamed (Arrow), held whole (npy), a listing, and no route at all.
    let cases = [
        (
            "/v1/datasets/grid/labels/2/points",
            200,
            "label_points",
            "grid",
        ),
        (
            "/v1/datasets/grid/labels/1/points?format=npy",
            200,
            "label_points",
            "grid",
        ),
        ("/v1/datasets/grid/labels", 200, "labels", "grid"),
        ("/v1/datasets/grid/labels/3", 404, "label", "grid"),
        ("/nowhere", 404, "unknown", "-"),
    ];
    for (path, status, route, dataset) in cases {
        let (got, body, line) = logged(path);
        assert_eq!(got, status, "{path}");
        assert_eq!(line["status"], status.to_string(), "{path}");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["path"], path.split('?').next().unwrap());
        assert_eq!(line["route"], route, "{path}");
        assert_eq!(line["dataset"], dataset, "{path}");
        assert_eq!(line["bytes"], body.len().to_string(), "{path}");
        assert_eq!(line["complete"], "true", "{path}");
        let duration: f64 = line["duration_ms"].parse().unwrap();
        let upstream: f64 = line["upstream_ms"].parse().unwrap();
        assert!(
            duration >= 0.0 && upstream >= 0.0 && upstream <= duration + 1.0,
            "{line:?}"
        );
    }
}

#[test]
fn no_token_or_signature_reaches_the_log() {
    let s = shared();
    let r = client()
        .get(format!(
            "{}/v1/datasets/grid/labels?expires=1&sig=SECRET-SIG",
            s.base
        ))
        .header("authorization", "Bearer SECRET-TOKEN")
        .send()
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    drop(r.bytes());
    let line = served_line(&s.log, &id);
    assert_eq!(line["path"], "/v1/datasets/grid/labels");
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(!log.contains("SECRET"), "{log}");
}

#[test]
fn healthz_answers_and_readyz_names_the_datasets_that_do_not_load() {
    let s = shared();
    let health = client().get(format!("{}/healthz", s.base)).send().unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"status": "ok"})
    );
    let ready = client().get(format!("{}/readyz", s.base)).send().unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"status": "unready", "unready_count": 1, "unready": ["broken"]})
    );
    let whole = start(false);
    let ready = client()
        .get(format!("{}/readyz", whole.base))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"status": "ready"})
    );
}

/// The value of the sample `name{labels}` in an OpenMetrics text, 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_requests_bytes_durations_failures_and_connections() {
    let s = shared();
    let metrics = || {
        let r = client().get(format!("{}/metrics", s.base)).send().unwrap();
        assert_eq!(r.status(), 200);
        r.text().unwrap()
    };
    let requests = r#"pocaduck_edge_requests_total{route="label_points",status="200"}"#;
    let bytes = r#"pocaduck_edge_response_bytes_total{route="label_points"}"#;
    let durations = r#"pocaduck_edge_request_duration_seconds_count{route="label_points"}"#;
    let unavailable = r#"pocaduck_edge_upstream_failures_total{code="dataset_unavailable"}"#;
    let hits = r#"pocaduck_edge_index_page_lookups_total{result="hit"}"#;
    let misses = r#"pocaduck_edge_index_page_lookups_total{result="miss"}"#;
    let before = metrics();
    let answer = client()
        .get(format!(
            "{}/v1/datasets/grid/labels/1/points?format=npy",
            s.base
        ))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let length = answer.bytes().unwrap().len() as f64;
    // The label's index page is in the cache once read: asked again, it is a hit.
    let (status, _, line) = logged("/v1/datasets/grid/labels/1/points?format=npy");
    assert_eq!((status, &line["cache_hits"][..]), (200, "1"), "{line:?}");
    let broken = client()
        .get(format!("{}/v1/datasets/broken/labels", s.base))
        .send()
        .unwrap();
    assert_eq!(broken.status(), 503);
    // A connection held open is counted while it is.
    let held = std::net::TcpStream::connect(s.base.strip_prefix("http://").unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let after = metrics();
    // Other tests share the server: counts only grow, by at least this test's requests.
    assert!(
        sample(&after, requests) >= sample(&before, requests) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, bytes) >= sample(&before, bytes) + length,
        "{after}"
    );
    assert!(
        sample(&after, durations) >= sample(&before, durations) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, unavailable) >= sample(&before, unavailable) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, hits) >= sample(&before, hits) + 1.0,
        "{after}"
    );
    assert!(sample(&after, misses) >= 1.0, "{after}");
    assert!(
        sample(&after, "pocaduck_edge_open_connections") >= 2.0,
        "{after}"
    );
    drop(held);
}
