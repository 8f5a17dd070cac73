//! The VastDB backend under faults: the sample loaded into a real `vastdb-emulator`, served by
//! the real `pocaduck-edge serve`, with faults injected into the emulator's replies. Each fault
//! must end in the right answer or a clear error, within bounded time, and the credentials
//! must never show in a response or in the server's log.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pocaduck_edge_conformance::decode::{arrow_column_rows, arrow_rows};
use reqwest::blocking::Response;
use serde_json::Value;

use crate::common;
use crate::common::{client, wait_for, VastStack, ACCESS_KEY, SECRET_KEY};

/// Seconds the shared server waits for VastDB's next bytes (the stall test's bound).
const READ_TIMEOUT_SECS: u64 = 3;

fn stack() -> &'static VastStack {
    static STACK: OnceLock<VastStack> = OnceLock::new();
    STACK.get_or_init(|| {
        // Small replies, so the biggest label takes several queries.
        common::vast_stack(
            "columnar",
            &[
                "--vastdb-read-timeout",
                &READ_TIMEOUT_SECS.to_string(),
                "--vastdb-limit-rows",
                "16384",
            ],
        )
    })
}

/// Faults go to the next queries of the shared emulator, and tests count its queries: one
/// test at a time injects faults or queries it.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn api(path: &str) -> String {
    let s = stack();
    format!("{}/v1/datasets/{}{path}", s.base, s.dataset)
}

fn labels() -> Vec<u64> {
    let body: Value = client().get(api("/labels")).send().unwrap().json().unwrap();
    body["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().parse().unwrap())
        .collect()
}

/// The label with the most points (several replies' worth at the emulator's page size),
/// found once.
fn big_label() -> u64 {
    static BIG: OnceLock<u64> = OnceLock::new();
    *BIG.get_or_init(find_big_label)
}

fn find_big_label() -> u64 {
    let mut best = (0, 0);
    for label in labels() {
        let info: Value = client()
            .get(api(&format!("/labels/{label}")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let count = info["point_count"].as_u64().unwrap();
        if count > best.1 {
            best = (label, count);
        }
    }
    best.0
}

fn inject(kind: &str, count: u32) {
    let r = client()
        .post(format!(
            "{}/_emulator/fault?kind={kind}&count={count}",
            stack().emulator
        ))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "fault {kind} refused");
}

fn emulator_stats() -> Value {
    emulator_stats_of(&stack().emulator)
}

/// The counters of the emulator at `emulator` (its base URL).
fn emulator_stats_of(emulator: &str) -> Value {
    client()
        .get(format!("{emulator}/_emulator/stats"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn queries() -> u64 {
    emulator_stats()["queries"].as_u64().unwrap()
}

fn points(label: u64, format: &str) -> Response {
    client()
        .get(api(&format!("/labels/{label}/points?format={format}")))
        .send()
        .unwrap()
}

/// The label's points with no fault, and how many queries that took.
fn baseline(label: u64) -> (Vec<(u64, Vec<i64>)>, u64) {
    let before = queries();
    let r = points(label, "arrow");
    assert_eq!(r.status(), 200);
    let rows = arrow_rows(&r.bytes().unwrap());
    assert!(!rows.is_empty());
    (rows, queries() - before)
}

#[test]
fn slowdown_is_retried_with_backoff_then_answers() {
    let _one = exclusive();
    let label = big_label();
    let (expected, per_label) = baseline(label);
    inject("slowdown", 2);
    let before = queries();
    let r = points(label, "arrow");
    assert_eq!(r.status(), 200);
    assert_eq!(arrow_rows(&r.bytes().unwrap()), expected);
    assert_eq!(
        queries() - before,
        per_label + 2,
        "two refusals, then the reads"
    );
}

#[test]
fn slowdown_past_the_retries_is_502_with_the_upstream_code() {
    let _one = exclusive();
    let label = big_label();
    baseline(label);
    inject("slowdown", 20);
    let (code, message) = common::logged_error(points(label, "npy"), 502, &stack().server_log);
    assert_eq!(code, "upstream_error");
    assert!(message.contains("SlowDown"), "{message}");
    // The refusals the retries left over must not reach the next test.
    drain_faults();
}

/// Sends queries until the emulator has no pending fault left (bounded).
fn drain_faults() {
    let label = labels()[0];
    for _ in 0..30 {
        if emulator_stats()["pending_faults"] == 0 {
            return;
        }
        let _ = points(label, "npy");
    }
    panic!("faults still pending after 30 requests");
}

#[test]
fn a_failed_stream_is_502_carrying_the_upstream_code() {
    let _one = exclusive();
    let label = big_label();
    baseline(label);
    inject("failed", 1);
    let (code, message) = common::logged_error(points(label, "npy"), 502, &stack().server_log);
    assert_eq!(code, "upstream_error");
    assert!(message.to_lowercase().contains("fail"), "{message}");
    // The fault is spent: the next request answers.
    assert_eq!(points(label, "npy").status(), 200);
}

#[test]
fn a_failed_stream_after_the_first_batch_aborts_the_arrow_body() {
    let _one = exclusive();
    let label = big_label();
    let (expected, per_label) = baseline(label);
    assert!(per_label >= 2, "the big label needs several replies");
    inject("failed", 1);
    let r = points(label, "arrow");
    match r.status().as_u16() {
        // The failure came before the first batch: a clear error.
        502 => {}
        // It came later: the body must not pass for a complete stream.
        200 => {
            if let Ok(bytes) = r.bytes() {
                let complete = arrow_ipc::reader::StreamReader::try_new(&bytes[..], None)
                    .map(|reader| reader.collect::<Result<Vec<_>, _>>().is_ok())
                    .unwrap_or(false);
                assert!(
                    !complete || arrow_rows(&bytes) != expected,
                    "a failed reply was passed off as the whole label"
                );
            }
        }
        other => panic!("unexpected status {other}"),
    }
}

#[test]
fn truncated_and_reset_replies_are_resent() {
    let _one = exclusive();
    let label = big_label();
    let (expected, per_label) = baseline(label);
    for kind in ["truncate", "reset"] {
        inject(kind, 1);
        let before = queries();
        let r = points(label, "arrow");
        assert_eq!(r.status(), 200, "{kind}");
        assert_eq!(arrow_rows(&r.bytes().unwrap()), expected, "{kind}");
        assert_eq!(
            queries() - before,
            per_label + 1,
            "{kind}: one re-sent query"
        );
    }
}

/// A client of the shared emulator, as the server signs.
fn vast_client() -> pocaduck_edge_read::VastClient {
    use pocaduck_edge_query::{HttpUpstream, SystemClock};
    use pocaduck_edge_vastdb::{Credentials, Endpoint};
    use std::sync::Arc;

    pocaduck_edge_read::VastClient::new(
        Endpoint::parse(&stack().emulator).unwrap(),
        Credentials::new(ACCESS_KEY, SECRET_KEY),
        Arc::new(HttpUpstream::new(Duration::from_secs(10)).unwrap()),
        Arc::new(SystemClock::new()),
        pocaduck_edge_read::vast::DEFAULT_MAX_RETRIES,
    )
}

#[test]
fn the_next_page_is_asked_for_before_a_page_is_handed_out() {
    use pocaduck_edge_read::Timing;
    use pocaduck_edge_vastdb::query::{Condition, Filter};
    use pocaduck_edge_vastdb::{QuerySettings, TablePath};
    use std::sync::Arc;

    let _one = exclusive();
    let label = big_label();
    let (expected, pages) = baseline(label);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Arc::new(vast_client());
    let table = TablePath::new("pocaduck", "tests", "columnar").unwrap();
    let mut timing = Timing::default();
    let mut run = runtime
        .block_on(async {
            let txid = client.begin(&mut timing).await?;
            let schema = client.columns(txid, &table, &mut timing).await?;
            let filter = Filter::all().and("label", Condition::eq(label));
            // The server's page size, so the label takes as many pages as its answers do.
            let settings = QuerySettings {
                num_sub_splits: 1,
                limit_rows: 16384,
                ..QuerySettings::default()
            };
            client
                .query(txid, &table, &schema, &["x", "y", "z"], &filter, settings)
                .map(|run| run.committing())
        })
        .unwrap();
    assert!(pages >= 3, "the label takes several pages");
    let before = queries();
    let points = |round: Vec<arrow_array::RecordBatch>| -> usize {
        round.iter().map(|b| b.num_rows()).sum()
    };
    let first = runtime.block_on(run.next_round(&mut timing)).unwrap();
    let mut got = points(first.expect("a first round"));
    assert_eq!(
        queries() - before,
        2,
        "the second page is asked for before the first is handed out"
    );
    while let Some(round) = runtime.block_on(run.next_round(&mut timing)).unwrap() {
        got += points(round);
    }
    assert_eq!(got, expected.len());
    assert_eq!(queries() - before, pages, "no page asked for twice");
}

#[test]
fn a_pocaduck_row_that_is_not_whole_points_is_502_naming_the_label() {
    use arrow_array::builder::{Int64Builder, ListBuilder};
    use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use pocaduck_edge_read::Timing;
    use pocaduck_edge_vastdb::request;
    use pocaduck_edge_vastdb::TablePath;
    use std::sync::Arc;

    let _one = exclusive();
    // A PoCADuck-layout table beside the shared one: a whole point, then a row of 4 values.
    let item = Field::new("item", DataType::Int64, true);
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::UInt64, false),
        Field::new("block_id", DataType::Utf8, false),
        Field::new("points", DataType::List(Arc::new(item.clone())), false),
    ]));
    let mut points = ListBuilder::new(Int64Builder::new()).with_field(item);
    points.values().append_slice(&[1, 2, 3]);
    points.append(true);
    points.values().append_slice(&[4, 5, 6, 7]);
    points.append(true);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![5, 5])),
        Arc::new(StringArray::from(vec!["0_0_0", "1_0_0"])),
        Arc::new(points.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let vast = vast_client();
    let table = TablePath::new("pocaduck", "tests", "pocaduck").unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut timing = Timing::default();
            let txid = vast.begin(&mut timing).await?;
            let create = request::create_table(txid, &table, &schema).unwrap();
            vast.call(create, &mut timing).await?;
            vast.insert(txid, &table, &batch, &mut timing).await?;
            vast.commit(txid, &mut timing).await
        })
        .unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = common::serve_table(&stack().emulator, "pocaduck", SECRET_KEY, &[], None);
    server.stderr(log.reopen().unwrap());
    let (_server, base) = common::spawn_listening(server);
    let r = client()
        .get(format!(
            "{base}/v1/datasets/pocaduck/labels/5/points?format=npy"
        ))
        .send()
        .unwrap();
    let (code, message) = common::logged_error(r, 502, log.path());
    assert_eq!(code, "upstream_error");
    assert!(
        message.contains("the rows of label 5")
            && message.contains("a row holds 4 values, not a multiple of 3 dims"),
        "{message}"
    );
}

#[test]
fn a_stalled_reply_is_504_within_the_read_timeout() {
    let _one = exclusive();
    let label = big_label();
    baseline(label);
    inject("stall", 1);
    let started = Instant::now();
    let (code, message) = common::logged_error(points(label, "npy"), 504, &stack().server_log);
    let waited = started.elapsed();
    assert_eq!(code, "upstream_timeout");
    assert!(message.contains("VastDB"), "{message}");
    assert!(
        waited >= Duration::from_secs(READ_TIMEOUT_SECS - 1)
            && waited < Duration::from_secs(READ_TIMEOUT_SECS + 10),
        "answered after {waited:?}"
    );
    assert_eq!(points(label, "npy").status(), 200);
}

#[test]
fn wrong_credentials_are_502_naming_the_upstream_error_and_never_shown() {
    let _one = exclusive();
    let s = stack();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut serve = common::serve_table(&s.emulator, &s.dataset, "not-the-secret-key", &[], None);
    serve.stderr(log.reopen().unwrap());
    let (_server, base) = common::spawn_listening(serve);
    let r = client()
        .get(format!("{base}/v1/datasets/{}/labels", s.dataset))
        .send()
        .unwrap();
    let (code, message) = common::logged_error(r, 502, log.path());
    assert_eq!(code, "upstream_error");
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains("not-the-secret-key"), "{message}");
    // The dataset list reports the table as unavailable, with the reason.
    let list: Value = client()
        .get(format!("{base}/v1/datasets"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let text = list.to_string();
    assert!(text.contains("unavailable"), "{text}");
    assert!(!text.contains("not-the-secret-key"), "{text}");
}

/// Writes `dir/big`: a dataset of `labels` (label, points), each point a distinct row of a
/// grid.
fn big_dataset(dir: &Path, labels: &[(u64, usize)]) -> PathBuf {
    let path = dir.join("big");
    common::grid_dataset(&path, labels);
    path
}

#[test]
fn a_large_label_streams_with_bounded_memory() {
    // A server that asks for at most 16384 rows per reply: a label of four million points
    // (128 MB as label and rows) must not cost its size in memory. The label is big against
    // what the allocator and the runtime take on their first requests, which varies from run
    // to run by up to about 10 MB (huge pages and per-thread heaps); the server asking for
    // the whole label in one reply fails this test.
    const LABEL: u64 = (1 << 60) + 7;
    const POINTS: usize = 1 << 22;
    // Streamed first, through the same path, to warm up caches, allocator arenas and the
    // connection: its peak is the baseline. Nothing reads the big label before it is
    // measured (its label info streams it too).
    const WARM_UP: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let source = big_dataset(dir.path(), &[(WARM_UP, 1 << 16), (LABEL, POINTS)]);
    let s = common::vast_stack_of(dir, &source, "columnar", &["--vastdb-limit-rows", "16384"]);
    let pid = common::program_pid(&s.server);
    let label = |label: u64| format!("{}/v1/datasets/{}/labels/{label}", s.base, s.dataset);
    for _ in 0..2 {
        let r = client().get(label(WARM_UP) + "/points").send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(arrow_rows(&r.bytes().unwrap()).len(), 1 << 16);
    }
    let before = common::peak_rss_bytes(pid);
    let r = client().get(label(LABEL) + "/points").send().unwrap();
    assert_eq!(r.status(), 200);
    let rows = arrow_rows(&r.bytes().unwrap());
    let grown = common::peak_rss_bytes(pid).saturating_sub(before);
    assert_eq!(rows.len(), POINTS);
    assert!(rows.iter().all(|(l, _)| *l == LABEL));
    let info: Value = client().get(label(LABEL)).send().unwrap().json().unwrap();
    assert_eq!(info["point_count"], POINTS);
    let label_bytes = POINTS as u64 * 8 * 4;
    eprintln!("peak RSS grew by {grown} bytes serving {POINTS} points ({label_bytes} bytes)");
    assert!(
        grown < label_bytes / 4,
        "serving {POINTS} points ({label_bytes} bytes) raised the peak RSS by {grown} bytes"
    );
}

#[test]
fn credentials_never_appear_in_the_log_or_in_answers() {
    let _one = exclusive();
    let s = stack();
    let label = labels()[0];
    let mut seen = String::new();
    for path in [
        String::new(),
        "/labels".to_string(),
        format!("/labels/{label}"),
        format!("/labels/{label}/points?format=json"),
        "/labels/99/points".to_string(),
    ] {
        let r = client().get(api(&path)).send().unwrap();
        for (_, value) in r.headers() {
            seen.push_str(value.to_str().unwrap_or(""));
        }
        seen.push_str(&r.text().unwrap());
    }
    assert!(!seen.contains(SECRET_KEY) && !seen.contains(ACCESS_KEY));
    let log = std::fs::read_to_string(&s.server_log).unwrap();
    assert!(
        log.contains("DEBUG"),
        "the server logs at debug level in this test"
    );
    assert!(!log.contains(SECRET_KEY), "the secret is in the log");
    assert!(!log.contains(ACCESS_KEY), "the access key is in the log");
    assert!(!log.contains("Signature="), "a signature is in the log");
}

#[test]
fn the_demo_serves_the_sample_from_both_backends_alike() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    common::run(&["sample", sample.to_str().unwrap(), "--voxel-nm", "256"]);
    let mut serve = common::command(common::bin(), None);
    serve
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--vastdb-emulator",
            "--data",
        ])
        .arg(&sample)
        .env("VASTDB_EMULATOR_BIN", common::emulator_bin())
        .stderr(std::process::Stdio::null());
    let (server, base) = common::spawn_listening(serve);
    let list: Value = client()
        .get(format!("{base}/v1/datasets"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let backends: Vec<(String, String)> = list["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "ok", "{d}");
            (
                d["name"].as_str().unwrap().to_string(),
                d["backend"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        backends,
        [
            ("sample".to_string(), "edge".to_string()),
            ("sample-vastdb".to_string(), "vastdb".to_string())
        ]
    );
    let get = |path: String| client().get(format!("{base}{path}")).send().unwrap();
    let labels: Value = get("/v1/datasets/sample/labels".into()).json().unwrap();
    let vast_labels: Value = get("/v1/datasets/sample-vastdb/labels".into())
        .json()
        .unwrap();
    assert_eq!(labels["labels"], vast_labels["labels"]);
    for label in labels["labels"].as_array().unwrap() {
        let label = label.as_str().unwrap();
        let info: Value = get(format!("/v1/datasets/sample/labels/{label}"))
            .json()
            .unwrap();
        let vast_info: Value = get(format!("/v1/datasets/sample-vastdb/labels/{label}"))
            .json()
            .unwrap();
        assert_eq!(info, vast_info, "label {label}");
        let npy = get(format!(
            "/v1/datasets/sample/labels/{label}/points?format=npy"
        ));
        let vast_npy = get(format!(
            "/v1/datasets/sample-vastdb/labels/{label}/points?format=npy"
        ));
        assert_eq!(
            npy.bytes().unwrap(),
            vast_npy.bytes().unwrap(),
            "label {label}"
        );
    }
    // Stopping the server stops its emulator.
    let server_pid = common::program_pid(&server);
    let emulator_pid =
        std::fs::read_to_string(format!("/proc/{server_pid}/task/{server_pid}/children"))
            .unwrap()
            .trim()
            .to_string();
    assert!(!emulator_pid.is_empty(), "the server runs an emulator");
    drop(server);
    wait_for(
        Duration::from_secs(10),
        "the emulator outlived the server",
        || (!std::path::Path::new(&format!("/proc/{emulator_pid}")).exists()).then_some(()),
    );
}

#[test]
fn bad_vastdb_options_stop_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--vastdb-limit-rows", "0"],
            "--vastdb-limit-rows must be at least 1",
        ),
        (
            &["--vastdb-read-timeout", "0"],
            "--vastdb-read-timeout must be at least 1",
        ),
        (&["--dims", "0"], "--dims must be at least 1"),
        (&["--vastdb-table", "bad/name"], "bad/name"),
    ];
    for (extra, expected) in cases {
        let output = std::process::Command::new(common::bin())
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--vastdb-endpoint",
                "http://127.0.0.1:9",
                "--vastdb-bucket",
                "pocaduck",
                "--vastdb-schema",
                "tests",
            ])
            .args(extra)
            .env("VASTDB_ACCESS_KEY", ACCESS_KEY)
            .env("VASTDB_SECRET_KEY", SECRET_KEY)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?} was accepted");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{extra:?} started listening");
    }
    // The demo loads a local edge dataset, and nothing else.
    let output = std::process::Command::new(common::bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--vastdb-emulator",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("must be a local edge-layout dataset"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn requests_that_find_no_label_list_wait_for_one_reading_of_it() {
    let _one = exclusive();
    // Queries of `requests` concurrent listings by a server that has not read the labels.
    let cold = |requests: usize| {
        let (_server, base) = common::spawn_listening(common::serve_table(
            &stack().emulator,
            "columnar",
            SECRET_KEY,
            &[],
            None,
        ));
        let before = queries();
        let listings: Vec<_> = (0..requests)
            .map(|_| {
                let url = format!("{base}/v1/datasets/columnar/labels");
                std::thread::spawn(move || client().get(url).send().unwrap().status())
            })
            .collect();
        for listing in listings {
            assert_eq!(listing.join().unwrap(), 200);
        }
        queries() - before
    };
    let one = cold(1);
    assert!(one >= 1);
    assert_eq!(cold(8), one, "eight listings read the label list once");
}

#[test]
fn every_read_closes_its_transactions() {
    let _one = exclusive();
    let label = big_label();
    let open = || emulator_stats()["open_transactions"].as_u64().unwrap();
    let before = open();
    let answer = points(label, "arrow");
    assert_eq!(answer.status(), 200);
    assert!(!answer.bytes().unwrap().is_empty());
    assert_eq!(open(), before, "a streamed answer commits its query");
    let page = client()
        .get(api(&format!("/labels/{label}/vastdb-reply")))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(!page.bytes().unwrap().is_empty());
    assert_eq!(open(), before, "a pass-through page rolls its query back");
}

#[test]
fn a_client_gone_mid_answer_leaves_no_transaction_open() {
    use std::io::{Read, Write};
    // A label whose Arrow answer (24 MB) outgrows the sockets' buffers, read in many
    // queries of one transaction: the client reads the head and a little, then goes.
    const LABEL: u64 = 9;
    let dir = tempfile::tempdir().unwrap();
    let source = big_dataset(dir.path(), &[(LABEL, 1 << 20)]);
    let s = common::vast_stack_of(dir, &source, "columnar", &["--vastdb-limit-rows", "16384"]);
    let open = || -> u64 {
        let stats: Value = client()
            .get(format!("{}/_emulator/stats", s.emulator))
            .send()
            .unwrap()
            .json()
            .unwrap();
        stats["open_transactions"].as_u64().unwrap()
    };
    // The label list first, so that only the answer's transaction is left to see.
    let listed = client()
        .get(format!("{}/v1/datasets/{}/labels", s.base, s.dataset))
        .send()
        .unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(open(), 0);
    let addr = s.base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /v1/datasets/{}/labels/{LABEL}/points HTTP/1.1\r\nHost: a\r\n\r\n",
        s.dataset
    )
    .unwrap();
    let mut some = vec![0u8; 64 << 10];
    let n = stream.read(&mut some).unwrap();
    assert!(
        some[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &some[..n.min(200)]
    );
    // The answer waits on the client, its transaction open.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(open(), 1, "the answer in progress holds its transaction");
    drop(stream);
    wait_for(
        Duration::from_secs(10),
        "a transaction still open after its client went",
        || (open() == 0).then_some(()),
    );
}

#[test]
fn a_stale_label_list_is_served_while_it_is_read_again_in_the_background() {
    let _one = exclusive();
    let (_server, base) = common::spawn_listening(common::serve_table(
        &stack().emulator,
        "columnar",
        SECRET_KEY,
        &["--vastdb-labels-ttl", "1", "--vastdb-read-timeout", "2"],
        None,
    ));
    let url = format!("{base}/v1/datasets/columnar/labels");
    let listing = || {
        let t0 = Instant::now();
        let r = client().get(&url).send().unwrap();
        assert_eq!(r.status(), 200);
        (r.json::<Value>().unwrap(), t0.elapsed())
    };
    let (listed, _) = listing();
    std::thread::sleep(Duration::from_millis(1200));
    // The next reading of the list stalls: the request that finds the list stale is still
    // answered from it at once, while the reading waits in the background.
    let before = queries();
    inject("stall", 1);
    let (again, took) = listing();
    assert_eq!(again, listed);
    assert!(
        took < Duration::from_secs(1),
        "a stale listing took {took:?}"
    );
    wait_for(
        Duration::from_secs(2),
        "the list was not read again",
        || (queries() != before).then_some(()),
    );
    // While it stalls, and once it has failed (the read timeout), the list is served.
    for _ in 0..2 {
        let (again, took) = listing();
        assert_eq!(again, listed);
        assert!(
            took < Duration::from_secs(1),
            "a stale listing took {took:?}"
        );
        std::thread::sleep(Duration::from_millis(1500));
    }
    drain_faults();
}

#[test]
fn many_labels_held_whole_take_a_query_per_thousand_labels() {
    // Two thousand small labels, above 2^53, asked in an order of their own.
    const LABELS: u64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let stored: Vec<(u64, usize)> = (0..LABELS).map(|i| ((1 << 60) + i * 7, 10)).collect();
    let source = big_dataset(dir.path(), &stored);
    let s = common::vast_stack_of(dir, &source, "columnar", &[]);
    let queries = || emulator_stats_of(&s.emulator)["queries"].as_u64().unwrap();
    let api = |path: &str| format!("{}/v1/datasets/{}{path}", s.base, s.dataset);
    // The label list first: then only the points are read.
    assert_eq!(client().get(api("/labels")).send().unwrap().status(), 200);
    let asked: Vec<String> = stored.iter().rev().map(|(l, _)| l.to_string()).collect();
    let before = queries();
    let r = client()
        .post(api("/points?format=json"))
        .body(serde_json::json!({ "labels": asked }).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().unwrap();
    let used = queries() - before;
    assert!(used <= 2, "{LABELS} labels took {used} queries");
    let items = answer["labels"].as_array().unwrap();
    let got: Vec<&str> = items.iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert_eq!(got, asked, "the labels in the order asked");
    assert!(items.iter().all(|i| i["count"] == 10));
    // Each label's points as its own answer gives them.
    for (i, label) in [
        (0, &asked[0]),
        (LABELS as usize - 1, &asked[LABELS as usize - 1]),
    ] {
        let alone: Value = client()
            .get(api(&format!("/labels/{label}/points?format=json")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(items[i], alone, "label {label}");
    }
}

/// A streamed `POST …/points` answer: its rows.
fn posted_rows(url: &str, labels: &[String], options: &str) -> Vec<(u64, Vec<i64>)> {
    let r = client()
        .post(format!("{url}{options}"))
        .body(serde_json::json!({ "labels": labels }).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().unwrap();
    if options.contains("shape=columns") {
        arrow_column_rows(&bytes).1
    } else {
        arrow_rows(&bytes)
    }
}

#[test]
fn many_labels_streamed_take_a_query_per_thousand_labels() {
    // Two thousand small labels, above 2^53, asked in an order of their own, one of them
    // twice.
    const LABELS: u64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let stored: Vec<(u64, usize)> = (0..LABELS)
        .map(|i| ((1 << 60) + i * 7, 1 + (i % 5) as usize))
        .collect();
    let source = big_dataset(dir.path(), &stored);
    let s = common::vast_stack_of(dir, &source, "columnar", &[]);
    let queries = || emulator_stats_of(&s.emulator)["queries"].as_u64().unwrap();
    let api = |path: &str| format!("{}/v1/datasets/{}{path}", s.base, s.dataset);
    assert_eq!(client().get(api("/labels")).send().unwrap().status(), 200);
    let mut asked: Vec<String> = stored.iter().rev().map(|(l, _)| l.to_string()).collect();
    asked.push(asked[3].clone());
    let expected: Vec<(u64, Vec<i64>)> = {
        // Each label's own answer, in the order asked.
        let some = [&asked[0], &asked[3], &asked[LABELS as usize - 1]];
        let alone = |label: &str| {
            let r = client()
                .get(api(&format!("/labels/{label}/points")))
                .send()
                .unwrap();
            let l: u64 = label.parse().unwrap();
            arrow_rows(&r.bytes().unwrap())
                .into_iter()
                .map(move |(_, p)| (l, p))
                .collect::<Vec<_>>()
        };
        some.iter().flat_map(|l| alone(l)).collect()
    };
    for options in ["?format=arrow", "?format=arrow&shape=columns", "?limit=1"] {
        let before = queries();
        let rows = posted_rows(&api("/points"), &asked, options);
        let used = queries() - before;
        // 2001 labels asked: three batches.
        assert!(used <= 3, "{LABELS} labels took {used} queries ({options})");
        let count = |label: &String| {
            let l: u64 = label.parse().unwrap();
            stored.iter().find(|(s, _)| *s == l).unwrap().1
        };
        let per_label: usize = if options == "?limit=1" {
            asked.len()
        } else {
            asked.iter().map(count).sum()
        };
        assert_eq!(rows.len(), per_label, "{options}");
        // Labels in the order asked, each one's rows together, as its own answer has them.
        let mut runs: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
        runs.dedup();
        let asked_labels: Vec<u64> = asked.iter().map(|l| l.parse().unwrap()).collect();
        assert_eq!(runs, asked_labels, "{options}");
        if options != "?limit=1" {
            let first = count(&asked[0]);
            assert_eq!(rows[..first], expected[..first], "{options}");
        }
    }
}

#[test]
fn a_streamed_batch_too_big_is_read_one_label_at_a_time() {
    let _one = exclusive();
    // The big label alone holds more points than a batch may: the batch's query is given
    // up, and each label read by a query of its own, with the same answer.
    let labels = labels();
    let big = big_label();
    let small: Vec<u64> = labels
        .iter()
        .copied()
        .filter(|l| *l != big)
        .take(2)
        .collect();
    let asked: Vec<String> = [small[0], big, small[1]]
        .iter()
        .map(u64::to_string)
        .collect();
    let mut expected = Vec::new();
    for label in [small[0], big, small[1]] {
        expected.extend(baseline(label).0);
    }
    let before = queries();
    let rows = posted_rows(&api("/points"), &asked, "?format=arrow");
    let used = queries() - before;
    assert!(
        used > 3,
        "{used} queries: the batch was not read one label at a time"
    );
    assert_eq!(rows, expected);
}
