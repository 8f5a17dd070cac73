//! `pocaduck-edge bench-vastdb`: the VastDB side of the benchmark. For each label it times
//! reading the raw reply bytes of one signed query for the label's points (the floor: no
//! de-framing, no Arrow), the raw replies of the paged requests the proxy sends for it (the
//! floor of the proxy, whose pages each cost VastDB a request), and the library's
//! `Query::get_points` (de-framed, re-assembled, checked, an `N × D` int64 array), and
//! reports medians as JSON lines, with the CPU time the whole machine spends on the proxy's
//! floor (the emulator's and this reader's together).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use pocaduck_edge_core::point_table::default_dim_names;
use pocaduck_edge_query::{HttpUpstream, Query, StorageConfig, SystemClock};
use pocaduck_edge_read::vast::{
    Layout, VastConfig, VastSource, DEFAULT_LIMIT_ROWS, DEFAULT_MAX_RETRIES,
};
use pocaduck_edge_read::VastClient;
use pocaduck_edge_read::{Timing, Upstream, UpstreamError, UpstreamResponse};
use pocaduck_edge_vastdb::query::{self, Condition, Filter};
use pocaduck_edge_vastdb::{Credentials, Endpoint, QueryCursor, QuerySettings, TablePath};

use crate::bench::median;

/// Where the table is.
pub(crate) struct Target {
    /// The VastDB endpoint.
    pub endpoint: String,
    /// The access key.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
    /// Bucket, schema and table.
    pub table: TablePath,
    /// The table layout.
    pub layout: Layout,
    /// Values per point.
    pub dims: usize,
}

/// One label's measurement.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Measurement {
    /// The label.
    pub label: String,
    /// Points `get_points` returned.
    pub points: usize,
    /// Bytes of the raw reply.
    pub raw_bytes: u64,
    /// Median seconds to read the raw reply.
    pub raw_seconds: f64,
    /// Requests the proxy sends for the label (one per page).
    pub paged_requests: usize,
    /// Bytes of their raw replies.
    pub paged_bytes: u64,
    /// Median seconds to send them one after another and read their raw replies.
    pub paged_seconds: f64,
    /// CPU seconds of the whole machine (every process, user and system) per reading of
    /// those replies, over `3 × repeat` readings; `None` where `/proc/stat` is not to be read.
    pub paged_machine_cpu_seconds: Option<f64>,
    /// Median seconds of `Query::get_points`.
    pub query_seconds: f64,
}

/// Times `repeat` runs of each (after one warm-up) per label.
pub(crate) fn run(
    target: &Target,
    labels: &[u64],
    repeat: usize,
) -> anyhow::Result<Vec<Measurement>> {
    let mut config = StorageConfig::vastdb(
        &target.endpoint,
        &target.access_key,
        &target.secret_key,
        target.table.bucket(),
        target.table.schema(),
    );
    config.vastdb_table = target.table.table().to_owned();
    config.vastdb_layout = target.layout;
    config.dims = target.dims;
    // No cache: every call reads the label from VastDB.
    let query = Query::with_cache_size(config, 0)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let upstream: Arc<dyn Upstream> = Arc::new(HttpUpstream::new(Duration::from_secs(60))?);
    let recorder = Arc::new(Recorder {
        inner: Arc::clone(&upstream),
        queries: Mutex::default(),
    });
    let client = Arc::new(VastClient::new(
        Endpoint::parse(&target.endpoint)?,
        Credentials::new(target.access_key.clone(), target.secret_key.clone()),
        upstream.clone(),
        Arc::new(SystemClock::new()),
        DEFAULT_MAX_RETRIES,
    ));
    let mut out = Vec::new();
    for &label in labels {
        let (mut raw_times, mut paged_times, mut query_times) =
            (Vec::new(), Vec::new(), Vec::new());
        let (mut raw_bytes, mut paged_bytes, mut points) = (0, 0, 0);
        let (pages, txid) =
            runtime.block_on(record_pages(recorder.clone(), &client, target, label))?;
        for i in 0..=repeat {
            let started = Instant::now();
            raw_bytes = runtime.block_on(raw_reply(&client, target, label))?;
            let raw = started.elapsed().as_secs_f64();
            let started = Instant::now();
            paged_bytes = runtime.block_on(replay(upstream.as_ref(), &pages))?;
            let paged = started.elapsed().as_secs_f64();
            let started = Instant::now();
            points = query.get_points(label)?.len();
            let got = started.elapsed().as_secs_f64();
            if i > 0 {
                raw_times.push(raw);
                paged_times.push(paged);
                query_times.push(got);
            }
        }
        let cpu_runs = 3 * repeat;
        let busy = machine_busy_seconds();
        for _ in 0..cpu_runs {
            runtime.block_on(replay(upstream.as_ref(), &pages))?;
        }
        let paged_machine_cpu_seconds = busy
            .zip(machine_busy_seconds())
            .map(|(before, after)| (after - before) / cpu_runs as f64);
        runtime.block_on(client.commit(txid, &mut Timing::default()))?;
        out.push(Measurement {
            label: label.to_string(),
            points,
            raw_bytes,
            raw_seconds: median(raw_times),
            paged_requests: pages.len(),
            paged_bytes,
            paged_seconds: median(paged_times),
            paged_machine_cpu_seconds,
            query_seconds: median(query_times),
        });
    }
    query.close();
    Ok(out)
}

/// Sends the query for `label`'s points with the whole label in one reply and counts the
/// reply's bytes without decoding them.
async fn raw_reply(client: &Arc<VastClient>, target: &Target, label: u64) -> anyhow::Result<u64> {
    let mut timing = Timing::default();
    let txid = client.begin(&mut timing).await?;
    let schema = client.columns(txid, &target.table, &mut timing).await?;
    let dims = default_dim_names(target.dims);
    let columns: Vec<&str> = match target.layout {
        Layout::Columnar => dims.iter().map(String::as_str).collect(),
        Layout::Pocaduck => vec!["points"],
    };
    let filter = Filter::all().and("label", Condition::eq(label));
    let encoded = query::encode(&schema, &columns, &filter)?;
    let settings = QuerySettings {
        num_sub_splits: 1,
        limit_rows: 1 << 40,
        ..QuerySettings::default()
    };
    let mut cursor = QueryCursor::new(target.table.clone(), encoded.body, settings);
    let request = cursor
        .next_request(txid)
        .expect("a new cursor has a request");
    let mut body = client.send(&request, &mut timing).await?.into_body();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        bytes += chunk.map_err(|e| anyhow::anyhow!("{e:?}"))?.len() as u64;
    }
    client.commit(txid, &mut timing).await?;
    Ok(bytes)
}

/// CPU seconds the machine has spent busy (user, nice, system, irq and softirq, over every
/// core) since boot, from Linux's `/proc/stat` (in its fixed 1/100 s ticks).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, ..] = ticks[..] else {
        return None;
    };
    Some((user + nice + system + irq + softirq) as f64 / 100.0)
}

/// A query request as it went out, signed.
struct SentQuery {
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl SentQuery {
    /// The request, to send again.
    fn request(&self) -> http::Request<Bytes> {
        let mut request = http::Request::new(self.body.clone());
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// An upstream that keeps each query (`?data`) request it forwards.
struct Recorder {
    inner: Arc<dyn Upstream>,
    queries: Mutex<Vec<SentQuery>>,
}

#[async_trait::async_trait]
impl Upstream for Recorder {
    async fn send(&self, request: http::Request<Bytes>) -> Result<UpstreamResponse, UpstreamError> {
        if request.uri().query() == Some("data") {
            self.queries.lock().expect("recorder lock").push(SentQuery {
                uri: request.uri().clone(),
                headers: request.headers().clone(),
                body: request.body().clone(),
            });
        }
        self.inner.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        self.inner.sleep(ms).await
    }
}

/// Reads `label`'s points through the proxy's own VastDB source, over a recording upstream,
/// and returns the query requests it sent, moved into a new transaction (left open, so that
/// they can be sent again; the transaction id is not among the signed headers) and that
/// transaction.
async fn record_pages(
    recorder: Arc<Recorder>,
    client: &VastClient,
    target: &Target,
    label: u64,
) -> anyhow::Result<(Vec<SentQuery>, u64)> {
    let config = VastConfig {
        endpoint: Endpoint::parse(&target.endpoint)?,
        credentials: Credentials::new(target.access_key.clone(), target.secret_key.clone()),
        table: target.table.clone(),
        layout: target.layout,
        dims: target.dims,
        max_retries: DEFAULT_MAX_RETRIES,
        limit_rows: DEFAULT_LIMIT_ROWS,
    };
    let source = Arc::new(VastSource::new(
        "bench",
        config,
        recorder.clone(),
        Arc::new(SystemClock::new()),
    ));
    let mut timing = Timing::default();
    let mut points = source.points(label, &mut timing).await?;
    while points.next(&mut timing).await?.is_some() {}
    let txid = client.begin(&mut timing).await?;
    let mut pages = std::mem::take(&mut *recorder.queries.lock().expect("recorder lock"));
    for page in &mut pages {
        if let Some(value) = page.headers.get_mut("tabular-txid") {
            *value = http::HeaderValue::from(txid);
        }
    }
    Ok((pages, txid))
}

/// Sends the recorded requests one after another and counts their replies' bytes.
async fn replay(upstream: &dyn Upstream, pages: &[SentQuery]) -> anyhow::Result<u64> {
    let mut bytes = 0u64;
    for page in pages {
        let response = upstream.send(page.request()).await?;
        anyhow::ensure!(
            response.status() == http::StatusCode::OK,
            "a page answered {}",
            response.status()
        );
        let mut body = response.into_body();
        while let Some(chunk) = body.next().await {
            bytes += chunk.map_err(|e| anyhow::anyhow!("{e}"))?.len() as u64;
        }
    }
    Ok(bytes)
}
