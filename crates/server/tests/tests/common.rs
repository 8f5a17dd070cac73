//! Processes the HTTP tests start: the `pocaduck-edge` binary, `vastdb-emulator`, and a
//! server over a VastDB table loaded from a freshly built sample. Every process binds to
//! 127.0.0.1 and ends with the test process, even when its guard lives in a static that is
//! never dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A process from [`command`]: ended and reaped when dropped.
pub(crate) struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Closing the watcher's stdin makes it stop the program and remove its directory.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// A command running `program` under a `sh` watcher that stops it (SIGTERM, then SIGKILL
/// after 5 s) once the watcher's stdin (a pipe this process holds) closes, which happens when the guard drops or when the test
/// process exits. With `remove_on_exit`, the watcher then deletes that directory too.
pub(crate) fn command(program: impl AsRef<OsStr>, remove_on_exit: Option<&Path>) -> Command {
    let mut watcher = Command::new("sh");
    watcher
        .arg("-c")
        .arg(
            r#""$@" & child=$!; cat >/dev/null; kill "$child" 2>/dev/null; (sleep 5; kill -9 "$child") >/dev/null 2>&1 & wait "$child" 2>/dev/null; if [ -n "$REMOVE_ON_EXIT" ]; then rm -rf "$REMOVE_ON_EXIT"; fi"#,
        )
        .arg("sh")
        .arg(program)
        .env("REMOVE_ON_EXIT", remove_on_exit.map(Path::as_os_str).unwrap_or_default())
        .stdin(Stdio::piped());
    watcher
}

/// The `pocaduck-edge` binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pocaduck-edge")
}

/// The `vastdb-emulator` binary: `$VASTDB_EMULATOR_BIN`, else the one built next to
/// `pocaduck-edge` (`cargo build -p vastdb-emulator`).
pub(crate) fn emulator_bin() -> PathBuf {
    if let Ok(path) = std::env::var("VASTDB_EMULATOR_BIN") {
        return PathBuf::from(path);
    }
    let sibling = Path::new(bin()).with_file_name("vastdb-emulator");
    assert!(
        sibling.exists(),
        "{} is missing: run `cargo build -p vastdb-emulator` first (the test command does)",
        sibling.display()
    );
    sibling
}

/// Runs `pocaduck-edge args…` to completion and checks it succeeded.
pub(crate) fn run(args: &[&str]) {
    let status = Command::new(bin())
        .args(args)
        .env("VASTDB_ACCESS_KEY", ACCESS_KEY)
        .env("VASTDB_SECRET_KEY", SECRET_KEY)
        .status()
        .expect("runs the binary");
    assert!(status.success(), "pocaduck-edge {args:?} failed");
}

/// Starts a [`command`] whose program prints `listening on URL` first; returns its guard and
/// the URL.
pub(crate) fn spawn_listening(mut command: Command) -> (ChildGuard, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts the process");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (ChildGuard(child), url)
}

/// The emulator's keys in tests.
pub(crate) const ACCESS_KEY: &str = "AKIAEXAMPLE";
/// The emulator's secret in tests.
pub(crate) const SECRET_KEY: &str = "SECRETEXAMPLE-never-shown";

/// A `pocaduck-edge serve` [`command`] over the table `layout` (loaded by [`vast_stack`] in
/// that layout) of the emulator at `emulator`, signing with `secret`, with `extra` arguments.
pub(crate) fn serve_table(
    emulator: &str,
    layout: &str,
    secret: &str,
    extra: &[&str],
    remove_on_exit: Option<&Path>,
) -> Command {
    let mut server = command(bin(), remove_on_exit);
    server
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--vastdb-endpoint",
            emulator,
            "--vastdb-bucket",
            "pocaduck",
            "--vastdb-schema",
            "tests",
            "--vastdb-table",
            layout,
            "--vastdb-layout",
            layout,
        ])
        .args(extra)
        .env("VASTDB_ACCESS_KEY", ACCESS_KEY)
        .env("VASTDB_SECRET_KEY", secret);
    server
}

/// An emulator with the sample loaded in `layout`, and a server over that table.
pub(crate) struct VastStack {
    /// The emulator's base URL.
    pub emulator: String,
    /// The server's base URL.
    pub base: String,
    /// The dataset name the server gives the table.
    pub dataset: String,
    /// Where the server's log goes.
    pub server_log: PathBuf,
    /// The server process.
    pub server: ChildGuard,
    _emulator: ChildGuard,
    _dir: tempfile::TempDir,
}

/// Builds the sample at 256 nm, loads it into a fresh emulator in `layout` (`columnar` or
/// `pocaduck`) and serves the table with `extra` server arguments.
pub(crate) fn vast_stack(layout: &str, extra: &[&str]) -> VastStack {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    run(&["sample", sample.to_str().unwrap(), "--voxel-nm", "256"]);
    vast_stack_of(dir, &sample, layout, extra)
}

/// Loads the edge-layout dataset `source` into a fresh emulator (its files in `dir`, which
/// the stack keeps until it drops) in `layout` and serves the table with `extra` arguments.
pub(crate) fn vast_stack_of(
    dir: tempfile::TempDir,
    source: &Path,
    layout: &str,
    extra: &[&str],
) -> VastStack {
    let mut emulator = command(emulator_bin(), None);
    emulator.args([
        "--listen",
        "127.0.0.1:0",
        "--data",
        dir.path().join("emulator").to_str().unwrap(),
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
        "--bucket",
        "pocaduck",
    ]);
    let (emulator_guard, emulator_url) = spawn_listening(emulator);
    run(&[
        "vastdb",
        "load",
        source.to_str().unwrap(),
        "--endpoint",
        &emulator_url,
        "--bucket",
        "pocaduck",
        "--schema",
        "tests",
        "--table",
        layout,
        "--layout",
        layout,
    ]);
    let server_log = dir.path().join("server.log");
    let mut server = serve_table(&emulator_url, layout, SECRET_KEY, extra, Some(dir.path()));
    server
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&server_log).unwrap());
    let (server_guard, base) = spawn_listening(server);
    VastStack {
        emulator: emulator_url,
        base,
        dataset: layout.to_string(),
        server_log,
        server: server_guard,
        _emulator: emulator_guard,
        _dir: dir,
    }
}

/// The code of a JSON error response with `status`, and the line the server logged for it
/// under the request id the answer names. The answer itself tells a client nothing of the
/// inside: no upstream URL, key, bucket, schema, table or file path
/// ([`pocaduck_edge_conformance::assert_logged_error`]).
pub(crate) fn logged_error(
    r: reqwest::blocking::Response,
    status: u16,
    log: &Path,
) -> (String, String) {
    let mut answer = http::Response::builder().status(r.status());
    *answer.headers_mut().unwrap() = r.headers().clone();
    let answer = answer.body(r.bytes().unwrap()).unwrap();
    let hidden = ["pocaduck/tests", SECRET_KEY, ACCESS_KEY];
    pocaduck_edge_conformance::assert_logged_error(&answer, status, &log.to_path_buf(), &hidden)
}

/// Writes an edge-layout dataset of `labels` (label, points) into the directory `path`, each
/// point a distinct row of a grid.
pub(crate) fn grid_dataset(path: &Path, labels: &[(u64, usize)]) {
    use pocaduck_edge_core::cloud::PointCloud;
    use pocaduck_edge_core::write::{DatasetWriter, FileSink, WriterOptions};
    struct DirSink(PathBuf);
    impl FileSink for DirSink {
        fn create(&mut self, path: &str) -> std::io::Result<Box<dyn std::io::Write + Send>> {
            let path = self.0.join(path);
            std::fs::create_dir_all(path.parent().expect("files are inside the dataset"))?;
            Ok(Box::new(std::fs::File::create(path)?))
        }
    }
    let dims = ["x", "y", "z"].map(String::from).to_vec();
    let mut writer =
        DatasetWriter::new(DirSink(path.to_owned()), dims, WriterOptions::default()).unwrap();
    for &(label, n) in labels {
        let values = (0..n as i64)
            .flat_map(|i| [i >> 14, (i >> 7) & 127, i & 127])
            .collect();
        let points = PointCloud::new(3, values).unwrap();
        writer.push_label(label, points, &[]).unwrap();
    }
    writer.finish().unwrap();
}

/// The pid of the program a [`command`] watcher runs.
pub(crate) fn program_pid(guard: &ChildGuard) -> u32 {
    let watcher = guard.0.id();
    let children = std::fs::read_to_string(format!("/proc/{watcher}/task/{watcher}/children"))
        .expect("reads the watcher's children");
    children
        .split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .expect("the watcher runs one program")
}

/// The peak resident set size of a process so far (`VmHWM`), in bytes.
pub(crate) fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reads status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("status has VmHWM");
    kib * 1024
}

/// A blocking HTTP client with a bounded wait.
pub(crate) fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Copies the files below `from` to the same paths below `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    for entry in files_below(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, target).unwrap();
    }
}

/// Every file below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Polls `ready` every 20 ms until it gives a value, and fails naming `what` once `bound`
/// has passed without one.
pub(crate) fn wait_for<T>(
    bound: std::time::Duration,
    what: impl std::fmt::Display,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + bound;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {bound:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
