//! Integrity at serve time: `pocaduck-edge serve` over edge-layout datasets whose bytes were
//! changed on disk (a data page, a footer, an index page) or rewritten by a new version while
//! it serves them answers the points of one whole version or a 503, never other points.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pocaduck_edge_core::plan::group_range;
use pocaduck_edge_core::read::parse_footer;
use pocaduck_edge_core::Manifest;

use crate::common::{self, bin, run, wait_for, ChildGuard};

fn manifest(dir: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Inverts 4 bytes of the file at `path` from offset `at` (the file keeps its size).
fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[at as usize..at as usize + 4] {
        *b = !*b;
    }
    std::fs::write(path, bytes).unwrap();
}

/// `pocaduck-edge serve` over `dirs`, its log in `log`.
fn serve(dirs: &[&Path], log: &Path) -> (ChildGuard, String) {
    let mut serve = common::command(bin(), None);
    serve.args(["serve", "--addr", "127.0.0.1:0"]);
    for d in dirs {
        serve.arg("--data").arg(d);
    }
    serve.stderr(std::fs::File::create(log).unwrap());
    common::spawn_listening(serve)
}

/// Every label of dataset `ds`, as the decimal strings the API lists.
fn labels(base: &str, ds: &str) -> Vec<String> {
    let url = format!("{base}/v1/datasets/{ds}/labels?limit=1000");
    let page: serde_json::Value = common::client().get(url).send().unwrap().json().unwrap();
    page["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// The status, error code (for an error) and body of a label's npy answer.
fn points(
    client: &reqwest::blocking::Client,
    base: &str,
    ds: &str,
    label: &str,
) -> (u16, String, Vec<u8>) {
    let url = format!("{base}/v1/datasets/{ds}/labels/{label}/points?format=npy");
    let r = client.get(url).send().unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().unwrap().to_vec();
    let code = match status {
        200 => String::new(),
        _ => serde_json::from_slice::<serde_json::Value>(&body).unwrap()["error"]["code"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    (status, code, body)
}

#[test]
fn changed_bytes_in_a_data_page_footer_or_index_page_give_503s_never_other_points() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    run(&["sample", good.to_str().unwrap(), "--voxel-nm", "256"]);
    let m = manifest(&good);
    let file = &m.files[0];
    let footer = file.footer.unwrap();
    let file_bytes = std::fs::read(good.join(&file.path)).unwrap();
    let meta = parse_footer(&file.path, &file_bytes[footer.offset as usize..]).unwrap();
    assert!(
        meta.num_row_groups() >= 3,
        "{} row groups",
        meta.num_row_groups()
    );

    // Inside the data page of the last column of the second row group.
    let page = dir.path().join("page");
    common::copy_dir(&good, &page);
    let z = meta.row_group(1).columns().last().unwrap().byte_range();
    flip(&page.join(&file.path), z.0 + z.1 / 2);
    // Inside the footer's metadata (not its length or magic).
    let in_footer = dir.path().join("footer");
    common::copy_dir(&good, &in_footer);
    flip(
        &in_footer.join(&file.path),
        footer.offset + footer.length / 2,
    );
    // Inside the first index page's entries.
    let index = dir.path().join("index");
    common::copy_dir(&good, &index);
    flip(&index.join("labels.idx"), 100);

    let log = dir.path().join("server.log");
    let (_server, base) = serve(&[&good, &page, &in_footer, &index], &log);
    let client = common::client();
    let ids = labels(&base, "good");
    assert!(ids.len() >= 10);

    // The changed row group's labels are refused; every other label is answered exactly.
    let g1 = group_range(meta.row_group(1));
    let mut refused = 0;
    for label in &ids {
        let (status, _, expected) = points(&client, &base, "good", label);
        assert_eq!(status, 200, "label {label}");
        match points(&client, &base, "page", label) {
            (200, _, body) => assert!(body == expected, "label {label}: other points"),
            (503, code, _) => {
                assert_eq!(code, "dataset_unavailable", "label {label}");
                refused += 1;
            }
            (status, _, _) => panic!("label {label}: {status}"),
        }
    }
    assert!(refused >= 1, "no label of row group {g1:?} was refused");
    let hash_lines = std::fs::read_to_string(&log)
        .unwrap()
        .matches(&format!(
            "row group 1 of {} does not match its recorded hash",
            file.path
        ))
        .count();
    assert!(
        hash_lines >= refused,
        "{hash_lines} log lines for {refused} refusals"
    );

    // The whole file, read through the files route, is checked against its ETag.
    let url = |ds: &str| format!("{base}/v1/datasets/{ds}/files/{}", file.path);
    let whole = client.get(url("page")).send().unwrap();
    assert_eq!(whole.status().as_u16(), 503);
    let whole = client.get(url("good")).send().unwrap();
    assert_eq!(whole.status().as_u16(), 200);
    assert!(whole.bytes().unwrap() == file_bytes);

    // A changed footer makes the dataset unavailable; a changed index page, its labels.
    let listing: serde_json::Value = client
        .get(format!("{base}/v1/datasets"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let status: HashMap<&str, &str> = listing["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(status["footer"], "unavailable", "{listing}");
    assert_eq!(status["good"], "ok", "{listing}");
    for label in &ids[..3] {
        for ds in ["footer", "index"] {
            let (status, code, _) = points(&client, &base, ds, label);
            assert_eq!(
                (status, code.as_str()),
                (503, "dataset_unavailable"),
                "{ds} {label}"
            );
        }
    }
}

#[test]
fn a_dataset_rewritten_while_served_answers_the_old_or_the_new_points_never_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new, live) = (
        dir.path().join("old"),
        dir.path().join("new"),
        dir.path().join("live"),
    );
    run(&["sample", old.to_str().unwrap(), "--voxel-nm", "256"]);
    run(&["sample", new.to_str().unwrap(), "--voxel-nm", "200"]);
    common::copy_dir(&old, &live);
    let log = dir.path().join("server.log");
    let (_server, base) = serve(&[&old, &new, &live], &log);
    let client = common::client();
    let ids = labels(&base, "live");
    assert_eq!(ids, labels(&base, "new"));
    let answers = |ds: &str| -> HashMap<String, Vec<u8>> {
        ids.iter()
            .map(|l| {
                let (status, _, body) = points(&client, &base, ds, l);
                assert_eq!(status, 200, "{ds} {l}");
                (l.clone(), body)
            })
            .collect()
    };
    let (before, after) = (answers("old"), answers("new"));
    assert!(
        ids.iter().all(|l| before[l] != after[l]),
        "the versions differ for every label"
    );
    assert_eq!(answers("live"), before);

    // A client reads every label over and over while the new version's files are copied over
    // the old ones in place, the manifest first (the worst order), each a pause apart.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, base, ids) = (stop.clone(), base.clone(), ids.clone());
        std::thread::spawn(move || {
            let client = common::client();
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(90);
            for label in ids.iter().cycle().take(20_000) {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                seen.push((label.clone(), points(&client, &base, "live", label)));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let m = manifest(&new);
    let mut order = vec!["manifest.json".to_string(), m.label_index.file.path.clone()];
    order.extend(m.files.iter().map(|f| f.path.clone()));
    for path in &order {
        std::fs::write(live.join(path), std::fs::read(new.join(path)).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    // Within a bounded time (a dataset that failed to load is tried again after 5 s), every
    // label answers the new version.
    wait_for(
        Duration::from_secs(30),
        "the new version not served",
        || {
            ids.iter()
                .all(|l| {
                    let (s, _, body) = points(&client, &base, "live", l);
                    s == 200 && body == after[l]
                })
                .then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    let (mut old_seen, mut new_seen, mut refused) = (0, 0, 0);
    for (label, (status, code, body)) in &seen {
        match status {
            200 if *body == before[label] => old_seen += 1,
            200 if *body == after[label] => new_seen += 1,
            200 => panic!("label {label}: points of neither version"),
            503 => {
                assert_eq!(code, "dataset_unavailable");
                refused += 1;
            }
            other => panic!("label {label}: {other} {code}"),
        }
    }
    assert!(
        old_seen > 0 && new_seen > 0,
        "{old_seen} old, {new_seen} new, {refused} refused"
    );
}
