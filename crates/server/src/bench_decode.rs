//! `pocaduck-edge bench-decode`: the npm client's Parquet decode (core's `decode_parquet`,
//! then each label's bounds) built natively, timed on an answer saved to a file. The decode
//! benchmark reads it beside the same code built to WebAssembly: what this machine's CPU
//! allows that decoder at best.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use pocaduck_edge_core::answer::decode_parquet;

use crate::bench::median;

/// The timings of one answer.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Measurement {
    /// Points in the answer.
    pub points: usize,
    /// Timed runs (after one warm-up).
    pub runs: usize,
    /// Median seconds of a decode.
    pub median_seconds: f64,
    /// Least seconds of a decode.
    pub min_seconds: f64,
}

/// Decodes the Parquet answer at `path` `repeat` times after a warm-up.
pub(crate) fn run(path: &Path, repeat: usize) -> anyhow::Result<Measurement> {
    let bytes = Bytes::from(std::fs::read(path).with_context(|| path.display().to_string())?);
    let mut times = Vec::with_capacity(repeat);
    let mut points = 0;
    for i in 0..=repeat {
        let started = Instant::now();
        let labelled = decode_parquet(bytes.clone())?;
        let bounds = labelled
            .runs
            .iter()
            .filter_map(|run| labelled.bbox(run.rows.clone()))
            .count();
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(bounds == labelled.runs.len(), "a label with no points");
        points = labelled.runs.last().map_or(0, |run| run.rows.end);
        if i > 0 {
            times.push(seconds);
        }
    }
    Ok(Measurement {
        points,
        runs: times.len(),
        min_seconds: times.iter().copied().fold(f64::INFINITY, f64::min),
        median_seconds: median(times),
    })
}

#[cfg(test)]
mod tests {
    use pocaduck_edge_core::cloud::PointCloud;
    use pocaduck_edge_proxy::formats;

    use super::*;

    /// Two labels' Parquet answer, written by the server's encoder, decodes to all their
    /// points; a missing file and a cut one are errors that say what went wrong.
    #[test]
    fn decodes_an_answer_and_refuses_bad_files() {
        let dims = ["x", "y", "z"].map(String::from);
        let cloud = |n: i64| PointCloud::new(3, (0..3 * n).map(|v| v * 7 - 50).collect()).unwrap();
        let answer = formats::parquet(&dims, &[(1 << 60, cloud(5)), (3, cloud(1000))]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answer.parquet");
        std::fs::write(&path, &answer).unwrap();
        let m = run(&path, 2).unwrap();
        assert_eq!((m.points, m.runs), (1005, 2));
        assert!(m.min_seconds <= m.median_seconds);

        let missing = dir.path().join("missing.parquet");
        let e = run(&missing, 1).unwrap_err();
        assert!(format!("{e:#}").contains("missing.parquet"), "{e:#}");
        std::fs::write(&path, &answer[..answer.len() / 2]).unwrap();
        let e = run(&path, 1).unwrap_err();
        assert!(format!("{e:#}").contains("Parquet"), "{e:#}");
    }
}
