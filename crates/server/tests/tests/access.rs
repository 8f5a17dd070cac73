//! `serve --access`: datasets readable by anyone, by a bearer token whose hash the
//! configuration lists, or by a signed URL; CORS per dataset; bad configurations refused at
//! start naming the setting; credentials never in the log. Signatures and hashes are checked
//! against vectors computed with Python's standard library and openssl, not by this code.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use pocaduck_edge_query::{Query, StorageConfig, BEARER_TOKEN};
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, ORIGIN, WWW_AUTHENTICATE};
use serde_json::{json, Value};

use crate::common::{self, ChildGuard};

/// The token of `secret`: `printf %s secret-token-0123456789 | openssl dgst -sha256`.
const TOKEN: &str = "secret-token-0123456789";
const TOKEN_HASH: &str = "sha256:64dedf2646a3cb615cc57769d5d812169bf61a67fedb268d785690a17226012f";
/// The token of the datasets the configuration does not name (its default).
const OTHER_TOKEN: &str = "other-token-0123456789";
const OTHER_HASH: &str = "sha256:b7aeb17ffd1d7d375a5dc155ae0512dc888e526e27e231cec474bf1c6953c07f";
/// `secret`'s signing key `k1`: bytes 0, 1, …, 31.
const SECRET_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// Signed by docs/security.md's Python `sign_url` with that key, valid until 2100.
const PYTHON_SIGNED: &str = "/v1/datasets/secret/labels?limit=1&expires=4102444800&kid=k1&sig=LhV2vZHt4kB8l_LFip77NQpRKDMIKF3yt90uusiLr5U";
/// The same, expired in 1970.
const PYTHON_EXPIRED: &str = "/v1/datasets/secret/labels?limit=1&expires=1&kid=k1&sig=GRfGSB3BOV-ArlyFiDyki6EtXvWUsigGDdLphtmVkvU";
/// The origin `secret` allows.
const VIEWER: &str = "https://viewer.lab.org";

struct Server {
    base: String,
    log: PathBuf,
    _guard: ChildGuard,
    _dir: tempfile::TempDir,
}

/// Datasets `open` (public), `secret` (a token, a key, one origin), `other` (the default:
/// another token) and `broken` (the default; a corrupt manifest), served under the
/// configuration.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = |name: &str| dir.path().join(name);
        for name in ["open", "secret", "other", "broken"] {
            common::grid_dataset(&data(name), &[(7, 100), (1 << 60, 50)]);
        }
        std::fs::write(data("broken").join("manifest.json"), b"{not json").unwrap();
        let config = dir.path().join("access.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"datasets": {{
                    "open": {{"access": "public"}},
                    "secret": {{"tokens": ["{TOKEN_HASH}"],
                                "signing_keys": [{{"id": "k1", "secret_hex": "{SECRET_HEX}"}}],
                                "cors": ["{VIEWER}"]}}}},
                  "default": {{"tokens": ["{OTHER_HASH}"]}}}}"#
            ),
        )
        .unwrap();
        let log = dir.path().join("server.log");
        let mut serve = common::command(common::bin(), None);
        serve
            .args(["serve", "--addr", "127.0.0.1:0", "--access"])
            .arg(&config)
            .env("RUST_LOG", "debug")
            .stderr(std::fs::File::create(&log).unwrap());
        for name in ["open", "secret", "other", "broken"] {
            serve.arg("--data").arg(data(name));
        }
        let (guard, base) = common::spawn_listening(serve);
        Server {
            base,
            log,
            _guard: guard,
            _dir: dir,
        }
    })
}

fn get(path: &str) -> RequestBuilder {
    common::client().get(format!("{}{path}", server().base))
}

/// The status and, for an error, its code and message.
fn outcome(response: Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let error = &body["error"];
    (
        status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn listed(request: RequestBuilder) -> Vec<String> {
    let listing: Value = request.send().unwrap().json().unwrap();
    listing["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn anonymous_callers_read_public_datasets_alone() {
    assert_eq!(
        get("/v1/datasets/open/labels").send().unwrap().status(),
        200
    );
    let file = get("/v1/datasets/open/files/manifest.json").send().unwrap();
    assert_eq!(file.headers()["cache-control"], "public, max-age=3600");
    assert_eq!(listed(get("/v1/datasets")), ["open"]);
    for path in [
        "/v1/datasets/secret",
        "/v1/datasets/secret/labels",
        "/v1/datasets/secret/labels/7/points?format=npy",
        "/v1/datasets/secret/labels/not-a-label",
        "/v1/datasets/secret/files/manifest.json",
        "/v1/datasets/other/labels",
    ] {
        let response = get(path).send().unwrap();
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"pocaduck-edge\"",
            "{path}"
        );
        let (status, code, message) = outcome(response);
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{path}");
        assert!(message.contains("needs a credential"), "{path}: {message}");
    }
    let post = common::client()
        .post(format!("{}/v1/datasets/secret/points", server().base))
        .body(r#"{"labels": ["7"]}"#)
        .send()
        .unwrap();
    assert_eq!(post.status(), 401);
}

#[test]
fn a_dataset_not_served_answers_as_one_not_readable() {
    for (authorization, status) in [(None, 401), (Some("Bearer wrong-token"), 403)] {
        let answer = |name: &str| {
            let mut request = get(&format!("/v1/datasets/{name}/labels"));
            if let Some(a) = authorization {
                request = request.header(AUTHORIZATION, a);
            }
            let response = request.header(ORIGIN, VIEWER).send().unwrap();
            let mut headers = response.headers().clone();
            headers.remove("x-request-id");
            headers.remove("date");
            headers.remove("content-length");
            let (status, code, message) = outcome(response);
            (status, code, message.replace(name, "NAME"), headers)
        };
        let (hidden, missing) = (answer("secret"), answer("no-such-dataset"));
        assert_eq!(hidden.0, status);
        assert_eq!(hidden, missing);
    }
}

#[test]
fn readiness_names_only_the_datasets_the_caller_may_read() {
    let ready = |request: RequestBuilder| {
        let r = request.send().unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    // `broken` is private: an anonymous caller learns that one dataset is down, not which.
    let anonymous = ready(get("/readyz"));
    assert_eq!(
        anonymous,
        (
            503,
            json!({"status": "unready", "unready_count": 1, "unready": []})
        )
    );
    let granted = ready(get("/readyz").bearer_auth(OTHER_TOKEN));
    assert_eq!(
        granted,
        (
            503,
            json!({"status": "unready", "unready_count": 1, "unready": ["broken"]})
        )
    );
    assert_eq!(ready(get("/readyz").bearer_auth(TOKEN)), anonymous);
}

#[test]
fn a_token_reads_the_datasets_that_list_its_hash() {
    let with = |request: RequestBuilder, token: &str| request.bearer_auth(token);
    assert_eq!(listed(with(get("/v1/datasets"), TOKEN)), ["open", "secret"]);
    assert_eq!(
        listed(with(get("/v1/datasets"), OTHER_TOKEN)),
        ["open", "other", "broken"]
    );
    let labels: Value = with(get("/v1/datasets/secret/labels"), TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        labels["labels"],
        serde_json::json!(["7", "1152921504606846976"])
    );
    let points = with(get("/v1/datasets/secret/labels/7/points?format=npy"), TOKEN)
        .send()
        .unwrap();
    assert_eq!(points.status(), 200);
    let range = with(get("/v1/datasets/secret/files/manifest.json"), TOKEN)
        .header("Range", "bytes=0-9")
        .send()
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(
        range.headers()["cache-control"],
        "private, max-age=3600",
        "no shared cache keeps it"
    );
    assert_eq!(range.bytes().unwrap().len(), 10);
    let many = common::client()
        .post(format!(
            "{}/v1/datasets/secret/points?format=json",
            server().base
        ))
        .bearer_auth(TOKEN)
        .body(r#"{"labels": ["7"]}"#)
        .send()
        .unwrap();
    assert_eq!(many.status(), 200);
    // Each token its own datasets; a wrong one, or another scheme, is 403.
    for (request, why) in [
        (
            with(get("/v1/datasets/other/labels"), TOKEN),
            "does not grant",
        ),
        (
            with(get("/v1/datasets/secret/labels"), OTHER_TOKEN),
            "does not grant",
        ),
        (
            with(get("/v1/datasets/secret/labels"), "secret-token-012345678"),
            "does not grant",
        ),
        (
            get("/v1/datasets/secret/labels").basic_auth("u", Some(TOKEN)),
            "not `Bearer <token>`",
        ),
    ] {
        let (status, code, message) = outcome(request.send().unwrap());
        assert_eq!((status, code.as_str()), (403, "forbidden"));
        assert!(message.contains(why), "{message}");
        assert!(!message.contains("token-0123"), "{message}");
    }
}

#[test]
fn the_cli_hashes_a_token_as_openssl_does() {
    let mut child = Command::new(common::bin())
        .args(["access", "hash-token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{TOKEN}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), TOKEN_HASH);
    let short = Command::new(common::bin())
        .args(["access", "hash-token"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!short.status.success());
}

/// `pocaduck-edge access sign-url` of `url` with `secret`'s key.
fn sign_url(url: &str, extra: &[&str]) -> String {
    let out = Command::new(common::bin())
        .args(["access", "sign-url", url, "--key-id", "k1"])
        .args(extra)
        .env("POCADUCK_EDGE_SIGNING_SECRET", SECRET_HEX)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_url_signed_in_python_reads_its_path_until_it_expires() {
    let response = get(PYTHON_SIGNED).send().unwrap();
    assert_eq!(response.status(), 200);
    let labels: Value = response.json().unwrap();
    assert_eq!(
        labels["labels"],
        serde_json::json!(["7"]),
        "limit=1 is applied"
    );
    for (path, why) in [
        (
            PYTHON_SIGNED.replace("limit=1", "limit=2"),
            "not valid for this path",
        ),
        (
            PYTHON_SIGNED.replace("/labels?", "/labels/?"),
            "not valid for this path",
        ),
        (
            PYTHON_SIGNED.replace("secret/labels", "other/labels"),
            "not valid for this path",
        ),
        (PYTHON_EXPIRED.to_owned(), "expired at 1 "),
        (
            PYTHON_SIGNED.replace("kid=k1", "kid=k2"),
            "not valid for this path",
        ),
        (
            PYTHON_SIGNED.replace("&kid=k1", ""),
            "carries expires, kid and sig",
        ),
    ] {
        let (status, code, message) = outcome(get(&path).send().unwrap());
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{path}");
        assert!(message.contains(why), "{path}: {message}");
    }
}

#[test]
fn a_signed_prefix_reads_a_whole_dataset_and_nothing_else() {
    let base = &server().base;
    let signed = sign_url(
        &format!("{base}/v1/datasets/secret/"),
        &["--prefix", "/v1/datasets/secret/", "--expires-in", "600"],
    );
    let auth = signed.split_once('?').unwrap().1.to_owned();
    assert!(auth.contains("prefix=") && auth.contains("sig="), "{auth}");
    let client = common::client();
    for path in [
        "/v1/datasets/secret",
        "/v1/datasets/secret/labels?limit=1",
        "/v1/datasets/secret/labels/7",
        "/v1/datasets/secret/labels/7/points?format=npy",
        "/v1/datasets/secret/files/manifest.json",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let response = client
            .get(format!("{base}{path}{sep}{auth}"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let post = client
        .post(format!(
            "{base}/v1/datasets/secret/points?format=json&{auth}"
        ))
        .body(r#"{"labels": ["7"]}"#)
        .send()
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(
        listed(client.get(format!("{base}/v1/datasets?{auth}"))),
        ["open"]
    );
    let elsewhere = outcome(
        client
            .get(format!("{base}/v1/datasets/other/labels?{auth}"))
            .send()
            .unwrap(),
    );
    assert_eq!(elsewhere.0, 403);
    assert!(
        elsewhere.2.contains("does not cover this path"),
        "{}",
        elsewhere.2
    );
    // The CLI's exact-path URL grants its path and options alone.
    let exact = sign_url(&format!("{base}/v1/datasets/secret/labels/7"), &[]);
    assert_eq!(client.get(&exact).send().unwrap().status(), 200);
    let moved = exact.replace("/labels/7?", "/labels/1152921504606846976?");
    assert_eq!(client.get(&moved).send().unwrap().status(), 403);
}

#[test]
fn cors_is_each_datasets_own() {
    let origin_of = |request: RequestBuilder, origin: &str| {
        let response = request.header(ORIGIN, origin).send().unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let secret = || get("/v1/datasets/secret/labels").bearer_auth(TOKEN);
    assert_eq!(origin_of(secret(), VIEWER).as_deref(), Some(VIEWER));
    assert_eq!(origin_of(secret(), "https://evil.example"), None);
    let other = || get("/v1/datasets/other/labels").bearer_auth(OTHER_TOKEN);
    assert_eq!(
        origin_of(other(), VIEWER),
        None,
        "not public: no origin unless listed"
    );
    assert_eq!(
        origin_of(get("/v1/datasets/open/labels"), "https://any.example").as_deref(),
        Some("*")
    );
    // A preflight carries no credential: answered for any dataset.
    let preflight = common::client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/datasets/secret/labels", server().base),
        )
        .header(ORIGIN, VIEWER)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight
        .headers()
        .contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("Authorization"), "{allowed}");
}

#[test]
fn credentials_never_reach_the_log() {
    let base = &server().base;
    let signed = sign_url(
        &format!("{base}/v1/datasets/broken/"),
        &["--prefix", "/v1/datasets/broken/"],
    );
    let sig = signed.rsplit_once("sig=").unwrap().1.to_owned();
    // The broken dataset's key is not `k1`: the signed URL is refused, the token is not.
    let response = common::client()
        .get(format!(
            "{base}/v1/datasets/broken/labels?limit=1&{}",
            signed.split_once('?').unwrap().1
        ))
        .bearer_auth(OTHER_TOKEN)
        .send()
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(outcome(response).0, 503);
    let log = wait_for_line(&server().log, &id);
    assert!(log.contains("/v1/datasets/broken/labels"), "{log}");
    let whole = std::fs::read_to_string(&server().log).unwrap();
    for secret in [OTHER_TOKEN, TOKEN, sig.as_str(), SECRET_HEX] {
        assert!(!whole.contains(secret), "{secret} in the log");
    }
}

/// The log's line naming `id`, once written (within 10 s).
fn wait_for_line(log: &Path, id: &str) -> String {
    for _ in 0..100 {
        let text = std::fs::read_to_string(log).unwrap();
        if let Some(line) = text.lines().find(|l| l.contains(id)) {
            return line.to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no log line for request {id}");
}

#[test]
fn the_query_library_reads_a_guarded_dataset_with_a_token_or_a_signed_url() {
    let files = format!("{}/v1/datasets/secret/files/", server().base);
    let local_dir = server()._dir.path().join("secret");
    let local = Query::new(StorageConfig::new(local_dir.to_str().unwrap())).unwrap();
    let labels = local.get_labels().unwrap();
    assert_eq!(labels.len(), 2);
    let mut with_token = StorageConfig::new(&files);
    with_token
        .extra_config
        .insert(BEARER_TOKEN.into(), TOKEN.into());
    assert!(!format!("{with_token:?}").contains(TOKEN));
    let signed = sign_url(&files, &["--prefix", "/v1/datasets/secret/"]);
    let sig = signed.rsplit_once("sig=").unwrap().1;
    let with_url = StorageConfig::new(&signed);
    let shown = format!("{with_url:?}");
    assert!(
        !shown.contains(sig) && shown.contains("sig=REDACTED"),
        "{shown}"
    );
    for config in [with_token, with_url] {
        let query = Query::new(config).unwrap();
        assert_eq!(query.get_labels().unwrap(), labels);
        for &label in &labels {
            assert_eq!(
                query.get_points(label).unwrap(),
                local.get_points(label).unwrap()
            );
        }
    }
    for refused in [
        StorageConfig::new(&files),
        StorageConfig::new(signed.replace("/secret/", "/other/")),
    ] {
        let error = Query::new(refused).unwrap_err().to_string();
        assert!(error.contains("401") || error.contains("403"), "{error}");
        assert!(!error.contains(sig), "{error}");
    }
}

/// `serve --access` with `config` (and `extra` arguments) over datasets `a` and `b`: its
/// error output, after checking that it failed.
fn refused(config: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        common::grid_dataset(&dir.path().join(name), &[(1, 10)]);
    }
    let file = dir.path().join("access.json");
    std::fs::write(&file, config).unwrap();
    let out = Command::new(common::bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--access"])
        .arg(&file)
        .arg("--data")
        .arg(dir.path().join("a"))
        .arg("--data")
        .arg(dir.path().join("b"))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "served with {config}");
    assert!(
        out.stdout.is_empty(),
        "it listened: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_bad_configuration_stops_the_server_naming_the_setting() {
    let cases = [
        (
            r#"{"default": {"access": "public"}, "dataset": {}}"#,
            "unknown field `dataset`",
        ),
        (
            r#"{"datasets": {"a": {"tokens": ["my-plain-token-0123"]}}, "default": {"access": "public"}}"#,
            "datasets.a.tokens[0]",
        ),
        (
            r#"{"datasets": {"a": {"tokens": ["sha256:12"]}}, "default": {"access": "public"}}"#,
            "datasets.a.tokens[0]",
        ),
        (
            r#"{"datasets": {"a": {"signing_keys": [{"id": "k", "secret_hex": "xy"}]}}, "default": {"access": "public"}}"#,
            "datasets.a.signing_keys[0]",
        ),
        (
            r#"{"datasets": {"c": {"access": "public"}}, "default": {"access": "public"}}"#,
            "datasets.c: no dataset of that name is served",
        ),
        (
            r#"{"datasets": {"a": {"access": "public"}}}"#,
            "dataset b is served but not named",
        ),
        (
            r#"{"datasets": {"a": {"access": "public", "cors": ["https://x.org/"]}}, "default": {"access": "public"}}"#,
            "datasets.a.cors[0]",
        ),
    ];
    for (config, why) in cases {
        let stderr = refused(config, &[]);
        assert!(
            stderr.contains("--access") && stderr.contains(why),
            "{config}: {stderr}"
        );
        assert!(!stderr.contains("my-plain-token"), "{stderr}");
    }
    let both = refused(
        r#"{"default": {"access": "public"}}"#,
        &["--cors-origin", VIEWER],
    );
    assert!(both.contains("--cors-origin"), "{both}");
}
