//! The PoCADuck input: which layout it has, and its Parquet files.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure};

/// Which PoCADuck layout was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceLayout {
    /// `worker_*/data/*.parquet`: `label, block_id, data`.
    Raw,
    /// `optimized/**/*.parquet`: `label, data`.
    Optimized,
}

/// The layout and its Parquet files, sorted by path.
pub(super) fn find_files(source: &Path) -> anyhow::Result<(SourceLayout, Vec<PathBuf>)> {
    ensure!(source.is_dir(), "{} is not a directory", source.display());
    let mut optimized = Vec::new();
    let opt_dir = source.join("optimized");
    if opt_dir.is_dir() {
        walk_parquet(&opt_dir, &mut optimized)?;
    }
    if !optimized.is_empty() {
        optimized.sort();
        return Ok((SourceLayout::Optimized, optimized));
    }
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(source)? {
        let dir = entry?.path();
        let is_worker = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("worker_"));
        if is_worker && dir.join("data").is_dir() {
            for f in std::fs::read_dir(dir.join("data"))? {
                let f = f?.path();
                if f.extension().is_some_and(|e| e == "parquet") {
                    raw.push(f);
                }
            }
        }
    }
    if raw.is_empty() {
        bail!(
            "{} holds no PoCADuck data: neither optimized/**/*.parquet nor worker_*/data/*.parquet",
            source.display()
        );
    }
    raw.sort();
    Ok((SourceLayout::Raw, raw))
}

fn walk_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk_parquet(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}
