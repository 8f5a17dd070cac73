//! New dataset directories that appear whole or not at all.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context};

/// Runs `write` on a sibling directory of `out` and renames it to `out` when `write`
/// succeeds; on failure removes it, so no half-written dataset is ever left behind. Refuses
/// an `out` that exists and is not an empty directory, leaving its content untouched.
pub(crate) fn write_aside<T>(
    out: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if out.exists() {
        ensure!(
            out.is_dir() && out.read_dir()?.next().is_none(),
            "{} already exists and is not empty",
            out.display()
        );
    }
    let partial = partial_dir(out);
    let result = write(&partial).and_then(|value| {
        if out.exists() {
            std::fs::remove_dir(out)?;
        }
        std::fs::rename(&partial, out)
            .with_context(|| format!("moving the dataset into {}", out.display()))?;
        Ok(value)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

fn partial_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    out.with_file_name(name)
}
