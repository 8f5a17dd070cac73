//! `serve --vastdb-emulator`: the demo's VastDB side. Starts `vastdb-emulator` on a loopback
//! port with fresh keys and a scratch directory, loads an edge-layout dataset into it, and
//! hands back the options that serve the table, so both backends answer side by side.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use pocaduck_edge::serve::VastOptions;
use pocaduck_edge_vastdb::{Credentials, TablePath};

use crate::vastdb_load::{self, LoadOptions};

/// The emulator's bucket, schema and table in the demo.
const BUCKET: &str = "pocaduck";
const SCHEMA: &str = "demo";

/// A running emulator: stopped, and its directory removed, when dropped.
pub(crate) struct Emulator {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$VASTDB_EMULATOR_BIN`, else `vastdb-emulator` beside this binary.
fn emulator_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("VASTDB_EMULATOR_BIN") {
        return Ok(PathBuf::from(path));
    }
    let sibling = std::env::current_exe()?.with_file_name("vastdb-emulator");
    if !sibling.exists() {
        bail!(
            "--vastdb-emulator needs the vastdb-emulator binary beside pocaduck-edge \
             (cargo build --release -p vastdb-emulator; `npm start` builds it) or in $VASTDB_EMULATOR_BIN"
        );
    }
    Ok(sibling)
}

/// A random key of 32 hex digits, fresh for each run.
fn random_key() -> String {
    let half = || RandomState::new().build_hasher().finish();
    format!("{:016x}{:016x}", half(), half())
}

/// Starts the emulator, loads `dataset` into table `name` in `layout`, and returns the
/// running emulator with `options` filled in to serve that table as `{name}-vastdb`.
pub(crate) fn start(dataset: &Path, options: &mut VastOptions) -> anyhow::Result<Emulator> {
    let dir = tempfile::tempdir()?;
    let (access, secret) = (random_key(), random_key());
    let binary = emulator_binary()?;
    let mut child = Command::new(&binary)
        .args(["--listen", "127.0.0.1:0", "--bucket", BUCKET, "--data"])
        .arg(dir.path())
        // Keys through the environment: they stay out of the process list.
        .env("VASTDB_EMULATOR_ACCESS_KEY", &access)
        .env("VASTDB_EMULATOR_SECRET_KEY", &secret)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
    let emulator = Emulator { child, _dir: dir };
    let Some(endpoint) = line.trim().strip_prefix("listening on ") else {
        bail!("vastdb-emulator did not start (it said {line:?})");
    };
    let name = dataset
        .file_name()
        .map_or("sample".into(), |n| n.to_string_lossy().into_owned());
    let credentials = Credentials::new(access.clone(), secret.clone());
    eprintln!("loading {name} into the VastDB emulator at {endpoint}");
    vastdb_load::load(
        dataset,
        &LoadOptions {
            endpoint: endpoint.to_owned(),
            credentials,
            table: TablePath::new(BUCKET, SCHEMA, &name)?,
            layout: options.layout,
            transaction_bytes: 64 << 20,
            progress: true,
        },
    )?;
    options.endpoint = Some(endpoint.to_owned());
    options.access_key = Some(access);
    options.secret_key = Some(secret);
    options.bucket = Some(BUCKET.into());
    options.schema = Some(SCHEMA.into());
    options.table = name.clone();
    options.name = Some(format!("{name}-vastdb"));
    Ok(emulator)
}
