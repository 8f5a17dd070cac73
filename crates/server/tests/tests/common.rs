//! Processes the HTTP tests start: the `pocaduck-edge` binary, `vastdb-emulator`, and a
//! server over a VastDB table loaded from a freshly built sample. Every process binds to
//! 127.0.0.1 and ends with the test process, even when its guard lives in a static that is
//! never dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A process from [`command`]: ended and reaped when dropped.
pub struct ChildGuard(pub Child);

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
pub fn command(program: impl AsRef<OsStr>, remove_on_exit: Option<&Path>) -> Command {
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
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pocaduck-edge")
}

/// The `vastdb-emulator` binary: `$VASTDB_EMULATOR_BIN`, else the one built next to
/// `pocaduck-edge` (`cargo build -p vastdb-emulator`).
pub fn emulator_bin() -> PathBuf {
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
pub fn run(args: &[&str]) {
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
pub fn spawn_listening(mut command: Command) -> (ChildGuard, String) {
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
pub const ACCESS_KEY: &str = "AKIAEXAMPLE";
/// The emulator's secret in tests.
pub const SECRET_KEY: &str = "SECRETEXAMPLE-never-shown";

/// A `pocaduck-edge serve` [`command`] over the table `layout` (loaded by [`vast_stack`] in
/// that layout) of the emulator at `emulator`, signing with `secret`, with `extra` arguments.
pub fn serve_table(
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
pub struct VastStack {
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
pub fn vast_stack(layout: &str, extra: &[&str]) -> VastStack {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    run(&["sample", sample.to_str().unwrap(), "--voxel-nm", "256"]);
    vast_stack_of(dir, &sample, layout, extra)
}

/// Loads the edge-layout dataset `source` into a fresh emulator (its files in `dir`, which
/// the stack keeps until it drops) in `layout` and serves the table with `extra` arguments.
pub fn vast_stack_of(
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
/// inside: no upstream URL, key, bucket, schema, table or file path.
pub fn logged_error(r: reqwest::blocking::Response, status: u16, log: &Path) -> (String, String) {
    assert_eq!(r.status().as_u16(), status);
    let id = match r.headers().get("x-request-id") {
        Some(id) => id.to_str().unwrap().to_owned(),
        None => panic!(
            "no request id in {:?}: {}",
            r.headers().clone(),
            r.text().unwrap()
        ),
    };
    let text = r.text().unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["request_id"], id.as_str(), "{text}");
    for internal in [
        "127.0.0.1",
        "http://",
        "pocaduck/tests",
        "/tmp",
        "?data",
        SECRET_KEY,
        ACCESS_KEY,
    ] {
        assert!(!text.contains(internal), "{internal:?} in {text}");
    }
    let code = body["error"]["code"].as_str().unwrap().to_owned();
    let log = std::fs::read_to_string(log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no log line names request {id}:\n{log}"));
    (code, line.to_owned())
}

/// Writes an edge-layout dataset of `labels` (label, points) into the directory `path`, each
/// point a distinct row of a grid.
pub fn grid_dataset(path: &Path, labels: &[(u64, usize)]) {
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
pub fn program_pid(guard: &ChildGuard) -> u32 {
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
pub fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reads status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("status has VmHWM");
    kib * 1024
}

/// A blocking HTTP client with a bounded wait.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Decodes an Arrow IPC points stream (`label`, `points`) into (label, row) pairs.
pub fn arrow_rows(bytes: &[u8]) -> Vec<(u64, Vec<i64>)> {
    use arrow_array::{Array, FixedSizeListArray, Int64Array, UInt64Array};
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    assert_eq!(reader.schema().field(0).name(), "label");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let labels = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        let points = batch
            .column(1)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let d = points.value_length() as usize;
        let values = points
            .values()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        for i in 0..batch.num_rows() {
            out.push((
                labels.value(i),
                values.values()[i * d..(i + 1) * d].to_vec(),
            ));
        }
    }
    out
}

/// Decodes an Arrow IPC points stream of `shape=columns` into its schema and (label, row)
/// pairs: the label from the `label` column, or from the schema metadata of a one-label
/// answer; each dim column int32 or int64.
pub fn arrow_column_rows(bytes: &[u8]) -> (arrow_schema::SchemaRef, Vec<(u64, Vec<i64>)>) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
    use arrow_array::Array;
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    let schema = reader.schema();
    let one: Option<u64> = schema
        .metadata()
        .get("pocaduck_edge:label")
        .map(|l| l.parse().unwrap());
    let labelled = schema.index_of("label").is_ok();
    assert!(
        labelled != one.is_some(),
        "a label column or a label in the metadata"
    );
    let first_dim = usize::from(labelled);
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let dims: Vec<Vec<i64>> = batch.columns()[first_dim..]
            .iter()
            .map(|c| {
                assert_eq!(c.null_count(), 0);
                match c.data_type() {
                    arrow_schema::DataType::Int32 => c
                        .as_primitive::<Int32Type>()
                        .values()
                        .iter()
                        .map(|v| *v as i64)
                        .collect(),
                    arrow_schema::DataType::Int64 => {
                        c.as_primitive::<Int64Type>().values().to_vec()
                    }
                    other => panic!("a dim column of type {other}"),
                }
            })
            .collect();
        for i in 0..batch.num_rows() {
            let label = match one {
                Some(l) => l,
                None => batch.column(0).as_primitive::<UInt64Type>().value(i),
            };
            out.push((label, dims.iter().map(|d| d[i]).collect()));
        }
    }
    (schema, out)
}
