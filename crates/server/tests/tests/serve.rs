//! `serve --threads N`: a thread per N, each accepting from the one socket and running its
//! connections whole; concurrent clients get the same answers as one, and SIGTERM stops
//! every thread.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{bin, client, run, wait_for};

/// A server started directly (so that the test can signal it), killed if still running
/// when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The names of a process's threads.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("lists the threads")
        .map(|task| {
            let comm = task.unwrap().path().join("comm");
            std::fs::read_to_string(comm).unwrap().trim().to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn threads_answer_concurrent_clients_alike_and_stop_together_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sample");
    run(&["sample", data.to_str().unwrap(), "--voxel-nm", "256"]);
    let mut child = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--threads", "3", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut server = Server(child);
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    // A thread names itself once it runs: wait for that, a bounded while.
    wait_for(
        Duration::from_secs(10),
        "no threads serve-1 and serve-2 beside the main one",
        || {
            let serving: Vec<String> = thread_names(server.0.id())
                .into_iter()
                .filter(|name| name.starts_with("serve-"))
                .collect();
            (serving == ["serve-1", "serve-2"]).then_some(())
        },
    );

    let labels: Vec<String> = client()
        .get(format!("{base}/v1/datasets/sample/labels"))
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap()["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert!(!labels.is_empty());
    let points = |label: &str| {
        let r = client()
            .get(format!(
                "{base}/v1/datasets/sample/labels/{label}/points?format=npy"
            ))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().unwrap()
    };
    let alone: Vec<_> = labels.iter().map(|l| points(l)).collect();
    // Four clients per label at once, each on a connection of its own.
    let together: Vec<Vec<_>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| labels.iter().map(|l| points(l)).collect::<Vec<_>>()))
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for answers in together {
        assert!(
            answers == alone,
            "a concurrent answer differs from the lone one"
        );
    }

    let term = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = wait_for(Duration::from_secs(10), "no exit after SIGTERM", || {
        server.0.try_wait().unwrap()
    });
    assert!(status.success(), "stopped with {status}");
}

#[test]
fn no_threads_is_refused() {
    let out = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--threads", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--threads"), "{stderr}");
}
