//! `pocaduck-edge bench-client`: a Rust client that fetches labels from a running server
//! as Arrow, decodes them into `N × D` int64 arrays, and reports the times as JSON lines.
//! The benchmark script (`bench/run.py`) runs it beside PoCADuck's own `Query`.

use std::time::Instant;

use anyhow::Context;
use arrow_array::{Array, FixedSizeListArray, Int64Array};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use pocaduck_edge_proxy::service::POINT_COUNT;

/// One label's measurement.
#[derive(Debug, serde::Serialize)]
pub struct Measurement {
    /// The label.
    pub label: String,
    /// Points returned (`None` when drained undecoded).
    pub points: Option<usize>,
    /// Bytes on the wire (the body).
    pub bytes: usize,
    /// Median wall time of a fetch + decode (or of a fetch alone, drained), in seconds.
    pub seconds: f64,
    /// The server's own time (sum of its `Server-Timing` durations), in ms, of the last run.
    pub server_ms: f64,
}

/// Fetches `labels` `repeat` times each (after one warm-up) and returns the medians; with
/// `drain`, the answers are read to their end and counted, not decoded.
pub fn run(
    base: &str,
    dataset: &str,
    labels: &[String],
    query: &str,
    repeat: usize,
    drain: bool,
) -> anyhow::Result<Vec<Measurement>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    runtime.block_on(async {
        let mut out = Vec::new();
        for label in labels {
            let url = format!("{base}/v1/datasets/{dataset}/labels/{label}/points?{query}");
            let mut times = Vec::with_capacity(repeat);
            let mut last = (None, 0, 0.0);
            for i in 0..=repeat {
                let started = Instant::now();
                let response = client
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()
                    .with_context(|| url.clone())?;
                let server_ms = server_time(response.headers());
                let (points, bytes) = if drain {
                    (None, drain_body(response).await?)
                } else {
                    let (values, bytes) = decode_arrow(response).await?;
                    (Some(values.len() / 3), bytes)
                };
                if i > 0 {
                    times.push(started.elapsed().as_secs_f64());
                }
                last = (points, bytes, server_ms);
            }
            times.sort_by(f64::total_cmp);
            out.push(Measurement {
                label: label.clone(),
                points: last.0,
                bytes: last.1,
                seconds: times[times.len() / 2],
                server_ms: last.2,
            });
        }
        Ok(out)
    })
}

/// The sum of the `dur=` values of a `Server-Timing` header.
fn server_time(headers: &reqwest::header::HeaderMap) -> f64 {
    let Some(v) = headers.get("server-timing").and_then(|v| v.to_str().ok()) else {
        return 0.0;
    };
    v.split(',')
        .filter_map(|part| {
            part.split(';')
                .find_map(|p| p.trim().strip_prefix("dur=")?.parse::<f64>().ok())
        })
        .sum()
}

/// Reads an answer to its end; returns its bytes.
async fn drain_body(mut response: reqwest::Response) -> anyhow::Result<usize> {
    let mut received = 0;
    while let Some(chunk) = response.chunk().await? {
        received += chunk.len();
    }
    Ok(received)
}

/// Decodes an Arrow points stream into row-major int64 values as its bytes arrive (each
/// batch viewed in the received buffer where it lies whole in one), into an array sized
/// once when the answer gives its point count; returns them and the bytes received.
async fn decode_arrow(mut response: reqwest::Response) -> anyhow::Result<(Vec<i64>, usize)> {
    let mut decoder = StreamDecoder::new();
    let count = response
        .headers()
        .get(POINT_COUNT)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let mut values = Vec::new();
    let mut received = 0;
    while let Some(chunk) = response.chunk().await? {
        received += chunk.len();
        let mut buffer = Buffer::from(chunk);
        while !buffer.is_empty() {
            let Some(batch) = decoder.decode(&mut buffer)? else {
                continue;
            };
            let points = batch
                .column(1)
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .context("points column")?;
            let ints = points
                .values()
                .as_any()
                .downcast_ref::<Int64Array>()
                .context("int64 values")?;
            let d = points.value_length() as usize;
            if values.is_empty() {
                // A hint only: an absurd count must not abort the client.
                values
                    .try_reserve(count.unwrap_or(0).saturating_mul(d))
                    .ok();
            }
            let offset = points.offset() * d;
            values.extend_from_slice(&ints.values()[offset..offset + points.len() * d]);
        }
    }
    decoder.finish()?;
    Ok((values, received))
}
