//! `serve --www DIR`: the site at `/`, the read API still under `/v1`, over real HTTP.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::common;
use crate::common::{bin, client, run, ChildGuard};
use serde_json::Value;

const INDEX: &str =
    "<!doctype html><title>viewer</title><script type=module src=viewer.js></script>\n";
const SCRIPT: &str = "export const viewer = 1;\n";
/// The first bytes of a WebAssembly module (magic and version).
const WASM: &[u8] = b"\0asm\x01\0\0\0";

struct Site {
    /// A server with `--www`.
    www: String,
    /// The same data without `--www`.
    plain: String,
    _servers: [ChildGuard; 2],
    _dir: tempfile::TempDir,
}

/// Builds a small sample and a small site, and serves them with and without `--www`.
fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("hemibrain-da1");
        run(&["sample", data.to_str().unwrap(), "--voxel-nm", "256"]);
        let www = dir.path().join("www");
        std::fs::create_dir_all(www.join("pocaduck-edge")).unwrap();
        std::fs::create_dir_all(www.join("docs")).unwrap();
        std::fs::write(www.join("index.html"), INDEX).unwrap();
        std::fs::write(www.join("viewer.js"), SCRIPT).unwrap();
        std::fs::write(www.join("pocaduck-edge/pocaduck_edge_wasm_bg.wasm"), WASM).unwrap();
        std::fs::write(www.join("docs/index.html"), "docs").unwrap();
        let start = |extra: &[&str]| {
            let mut serve = common::command(bin(), None);
            serve
                .args(["serve", "--addr", "127.0.0.1:0", "--data"])
                .arg(&data)
                .args(extra)
                .stderr(Stdio::null());
            common::spawn_listening(serve)
        };
        let (with, www_url) = start(&["--www", www.to_str().unwrap()]);
        let (without, plain_url) = start(&[]);
        Site {
            www: www_url,
            plain: plain_url,
            _servers: [with, without],
            _dir: dir,
        }
    })
}

fn get(url: &str) -> reqwest::blocking::Response {
    client().get(url).send().unwrap()
}

fn content_type(r: &reqwest::blocking::Response) -> String {
    r.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn the_site_is_served_at_the_root() {
    let r = get(&format!("{}/", site().www));
    assert_eq!(r.status(), 200);
    assert!(content_type(&r).starts_with("text/html"), "{r:?}");
    assert_eq!(r.text().unwrap(), INDEX);

    let r = get(&format!("{}/viewer.js", site().www));
    assert_eq!(r.status(), 200);
    assert!(content_type(&r).contains("javascript"), "{r:?}");
    assert_eq!(r.text().unwrap(), SCRIPT);

    let r = get(&format!("{}/docs/", site().www));
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "docs");
}

#[test]
fn wasm_is_served_as_application_wasm() {
    let r = get(&format!(
        "{}/pocaduck-edge/pocaduck_edge_wasm_bg.wasm",
        site().www
    ));
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/wasm");
    assert_eq!(&r.bytes().unwrap()[..], WASM);
}

#[test]
fn missing_files_and_escapes_are_404() {
    for path in [
        "/nope.js",
        "/pocaduck-edge/",
        "/../www/index.html",
        "/%2e%2e/www/index.html",
    ] {
        let r = get(&format!("{}{path}", site().www));
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[test]
fn the_api_still_answers_under_v1() {
    let base = &site().www;
    let list: Value = get(&format!("{base}/v1/datasets")).json().unwrap();
    assert_eq!(list["datasets"][0]["name"], "hemibrain-da1");
    let labels: Value = get(&format!("{base}/v1/datasets/hemibrain-da1/labels"))
        .json()
        .unwrap();
    let labels = labels["labels"].as_array().unwrap();
    assert!(labels.iter().any(|l| l == "18446744073709551615"));
    let info: Value = get(&format!(
        "{base}/v1/datasets/hemibrain-da1/labels/722817260"
    ))
    .json()
    .unwrap();
    assert!(info["point_count"].as_u64().unwrap() > 0);

    // Ranges of the layout's files (serverless reads) pass through untouched.
    let r = client()
        .get(format!(
            "{base}/v1/datasets/hemibrain-da1/files/manifest.json"
        ))
        .header("Range", "bytes=0-9")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().len(), 10);

    // Under /v1 the API answers, even where the site has nothing: JSON errors, not the site.
    for path in ["/v1", "/v1/", "/v1/nope", "/v1/datasets/nope"] {
        let r = get(&format!("{base}{path}"));
        assert_eq!(r.status(), 404, "{path}");
        assert!(content_type(&r).starts_with("application/json"), "{path}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }

    // CORS preflights still reach the API.
    let r = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/v1/datasets/hemibrain-da1/points"),
        )
        .header("Origin", "https://viewer.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
    assert!(r.headers().contains_key("access-control-allow-origin"));
}

#[test]
fn without_www_the_root_is_the_apis_404() {
    let base = &site().plain;
    let r = get(&format!("{base}/"));
    assert_eq!(r.status(), 404);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let list: Value = get(&format!("{base}/v1/datasets")).json().unwrap();
    assert_eq!(list["datasets"][0]["name"], "hemibrain-da1");
}

#[test]
fn www_without_an_index_is_refused() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(Path::new("does-not-matter"))
        .arg("--www")
        .arg(empty.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("index.html"), "{stderr}");
}
