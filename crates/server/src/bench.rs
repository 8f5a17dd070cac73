//! `pocaduck-edge bench-client`: a Rust client that fetches labels from a running server
//! as Arrow, decodes them into `N × D` int64 arrays, and reports the times as JSON lines.
//! The benchmark script (`bench/run.py`) runs it beside PoCADuck's own `Query`.

use std::time::Instant;

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use pocaduck_edge_proxy::service::POINT_COUNT;

/// One label's measurement.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Measurement {
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
pub(crate) fn run(
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
            out.push(Measurement {
                label: label.clone(),
                points: last.0,
                bytes: last.1,
                seconds: median(times),
                server_ms: last.2,
            });
        }
        Ok(out)
    })
}

/// The median of timings (the upper one of an even count); `times` must not be empty.
pub(crate) fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
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

/// Decodes an Arrow points stream (either shape) into row-major int64 values as its bytes
/// arrive (each batch viewed in the received buffer where it lies whole in one), into an
/// array sized once when the answer gives its point count; returns them and the bytes
/// received.
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
            append_rows(&batch, &mut values, count)?;
        }
    }
    decoder.finish()?;
    Ok((values, received))
}

/// Appends a batch's points to `values` as `N × D` row-major int64: a `points` fixed-size
/// list copied as it is, or dim columns (int32 or int64, after any `label`) interleaved;
/// reserves for `count` points first.
fn append_rows(
    batch: &RecordBatch,
    values: &mut Vec<i64>,
    count: Option<usize>,
) -> anyhow::Result<()> {
    let schema = batch.schema();
    let columns: Vec<&ArrayRef> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| f.name() != "label")
        .map(|(_, c)| c)
        .collect();
    let list = match columns.as_slice() {
        [one] => one.as_fixed_size_list_opt(),
        _ => None,
    };
    let d = list.map_or(columns.len(), |l| l.value_length() as usize);
    if values.is_empty() {
        // A hint only: an absurd count must not abort the client.
        values
            .try_reserve(count.unwrap_or(0).saturating_mul(d))
            .ok();
    }
    let n = batch.num_rows();
    if let Some(points) = list {
        let ints = points
            .values()
            .as_primitive_opt::<Int64Type>()
            .context("int64 values")?;
        let offset = points.offset() * d;
        values.extend_from_slice(&ints.values()[offset..offset + n * d]);
        return Ok(());
    }
    let start = values.len();
    values.resize(start + n * d, 0);
    for (i, column) in columns.iter().enumerate() {
        let slots = values[start..].iter_mut().skip(i).step_by(d);
        if let Some(c) = column.as_primitive_opt::<Int32Type>() {
            slots.zip(c.values()).for_each(|(s, v)| *s = i64::from(*v));
        } else {
            let c = column
                .as_primitive_opt::<Int64Type>()
                .context("a dim column that is not int32 or int64")?;
            slots.zip(c.values()).for_each(|(s, v)| *s = *v);
        }
    }
    Ok(())
}
