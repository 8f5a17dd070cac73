//! `pocaduck-edge serve`: the proxy service on axum, over local or object-store datasets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use pocaduck_edge_proxy::cors::CorsPolicy;
use pocaduck_edge_proxy::{
    Access, AccessConfig, ApiError, Limits, RangeStore, RequestLog, RequestRecord, Service,
    ServiceConfig,
};
use pocaduck_edge_read::vast::{
    TableSetting, TableSettings, VastSource, DEFAULT_DIMS, DEFAULT_LABELS_TTL_SECS, DEFAULT_LAYOUT,
    DEFAULT_LIMIT_ROWS, DEFAULT_READ_TIMEOUT_SECS, DEFAULT_TABLE,
};

use pocaduck_edge_query::store::{open_for_serving, SystemClock};
use pocaduck_edge_query::upstream::HttpUpstream;

use crate::connections::{self, ConnectionLimits};
use crate::metrics::{self, Metrics};

/// What to serve and where.
pub struct ServeOptions {
    /// Dataset locations (directories or URLs).
    pub data: Vec<String>,
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Origins allowed by CORS (`*` for any), when there is no access configuration.
    pub cors_origins: Vec<String>,
    /// The access configuration's file (docs/security.md); without one every dataset is
    /// public.
    pub access: Option<PathBuf>,
    /// Request limits.
    pub limits: Limits,
    /// A VastDB table to serve too.
    pub vastdb: Option<VastOptions>,
    /// A static site (the viewer) served at `/`, beside the API under `/v1`.
    pub www: Option<PathBuf>,
    /// Threads serving connections, each with a runtime of its own.
    pub threads: usize,
    /// Where `GET /metrics` is served alone; `None`: beside the API, at `addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// Bounds on connections and requests, and the shutdown's.
    pub connections: ConnectionLimits,
}

/// A VastDB table to serve (the seed's `StorageConfig` names, on the command line).
#[derive(Debug, Clone, clap::Args)]
pub struct VastOptions {
    /// VastDB endpoint, e.g. http://vast.example:80.
    #[arg(long = "vastdb-endpoint", requires_all = ["access_key", "secret_key", "bucket", "schema"])]
    pub endpoint: Option<String>,
    /// Access key (or the environment variable, to keep it out of shell history).
    #[arg(
        long = "vastdb-access-key",
        env = "VASTDB_ACCESS_KEY",
        hide_env_values = true
    )]
    pub access_key: Option<String>,
    /// Secret key (or the environment variable, to keep it out of shell history).
    #[arg(
        long = "vastdb-secret-key",
        env = "VASTDB_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
    /// The bucket holding the schema.
    #[arg(long = "vastdb-bucket")]
    pub bucket: Option<String>,
    /// The schema holding the table.
    #[arg(long = "vastdb-schema")]
    pub schema: Option<String>,
    /// The table.
    #[arg(long = "vastdb-table", default_value = DEFAULT_TABLE)]
    pub table: String,
    /// The table layout: PoCADuck's (label, block_id, points list) or columnar (label, x, y, z).
    #[arg(long = "vastdb-layout", default_value_t = DEFAULT_LAYOUT)]
    pub layout: pocaduck_edge_read::Layout,
    /// Values per point (never guessed from the data).
    #[arg(long, default_value_t = DEFAULT_DIMS)]
    pub dims: usize,
    /// The dataset's name in URLs (the table's name by default).
    #[arg(long = "vastdb-name")]
    pub name: Option<String>,
    /// Seconds to wait for VastDB's next bytes before answering 504.
    #[arg(long = "vastdb-read-timeout", default_value_t = DEFAULT_READ_TIMEOUT_SECS)]
    pub read_timeout_secs: u64,
    /// Rows per sub-split in one VastDB reply (the SDK's `limit_rows_per_sub_split`): the
    /// proxy holds about one reply's rows at a time.
    #[arg(long = "vastdb-limit-rows", default_value_t = DEFAULT_LIMIT_ROWS)]
    pub limit_rows: u64,
    /// Seconds the table's label list is served before it is read again (in the
    /// background, while the list goes on being served).
    #[arg(long = "vastdb-labels-ttl", value_name = "SECS", default_value_t = DEFAULT_LABELS_TTL_SECS)]
    pub labels_ttl_secs: u64,
}

impl VastOptions {
    /// The source, when an endpoint was given.
    fn source(&self, clock: Arc<SystemClock>) -> anyhow::Result<Option<VastSource>> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(None);
        };
        let settings = TableSettings {
            endpoint: endpoint.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            bucket: self.bucket.clone(),
            schema: self.schema.clone(),
            table: Some(self.table.clone()),
            layout: Some(self.layout),
            dims: Some(self.dims as u64),
            limit_rows: Some(self.limit_rows),
            read_timeout_secs: Some(self.read_timeout_secs),
        };
        let checked = settings.check().map_err(|(setting, why)| {
            let flag = match setting {
                TableSetting::Endpoint => "--vastdb-endpoint",
                TableSetting::AccessKey => "--vastdb-access-key (or $VASTDB_ACCESS_KEY)",
                TableSetting::SecretKey => "--vastdb-secret-key (or $VASTDB_SECRET_KEY)",
                TableSetting::Bucket => "--vastdb-bucket",
                TableSetting::Schema => "--vastdb-schema",
                TableSetting::Table => "--vastdb-table",
                TableSetting::Dims => "--dims",
                TableSetting::LimitRows => "--vastdb-limit-rows",
                TableSetting::ReadTimeout => "--vastdb-read-timeout",
            };
            anyhow::anyhow!("{flag} {why}")
        })?;
        let upstream = HttpUpstream::new(Duration::from_secs(checked.read_timeout_secs))?;
        let name = self.name.clone().unwrap_or(checked.table_name);
        Ok(Some(
            VastSource::new(name, checked.config, Arc::new(upstream), clock)
                .with_labels_ttl_secs(self.labels_ttl_secs),
        ))
    }
}

/// Builds the service over the datasets (names must be distinct), counting its requests in
/// `metrics`.
fn service(options: &ServeOptions, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Service>> {
    let mut datasets: Vec<(String, Arc<dyn RangeStore>)> = Vec::new();
    for location in &options.data {
        let (name, store) = open_for_serving(location)?;
        anyhow::ensure!(
            !datasets.iter().any(|(n, _)| *n == name),
            "two datasets are named {name:?}; give each a distinct last path segment"
        );
        datasets.push((name, store));
    }
    let clock = Arc::new(SystemClock::new());
    let vast: Vec<VastSource> = match &options.vastdb {
        Some(v) => v.source(clock.clone())?.into_iter().collect(),
        None => Vec::new(),
    };
    if let Some(v) = vast.first() {
        anyhow::ensure!(
            !datasets.iter().any(|(n, _)| *n == v.name),
            "two datasets are named {:?}; name the VastDB one with --vastdb-name",
            v.name
        );
    }
    let served: Vec<&str> = datasets
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(vast.iter().map(|v| v.name.as_str()))
        .collect();
    let access = access(options, &served)?;
    Ok(Arc::new(Service::new(ServiceConfig {
        datasets,
        vast,
        access,
        limits: options.limits.clone(),
        clock,
        log: Arc::new(TracingLog { metrics }),
    })))
}

/// Who may read the `served` datasets: `--access`'s file bound to them, or, without one,
/// every dataset public under `--cors-origin`.
fn access(options: &ServeOptions, served: &[&str]) -> anyhow::Result<Access> {
    let Some(file) = &options.access else {
        return Ok(Access::open(CorsPolicy::new(options.cors_origins.clone())));
    };
    let json = std::fs::read_to_string(file)
        .with_context(|| format!("--access {}: reading it", file.display()))?;
    AccessConfig::parse(&json)
        .and_then(|config| Access::guarded(config, served))
        .map_err(|e| anyhow::anyhow!("--access {}: {e}", file.display()))
}

/// Serves until interrupted; prints `listening on http://ADDR` once the socket is bound and
/// its threads started, then `metrics on http://ADDR/metrics` when they have an address of
/// their own.
///
/// `threads` threads, each with a single-threaded runtime that accepts from the shared
/// socket and runs its connections whole: an answer relayed from VastDB is read and written
/// on one thread, never handed between threads chunk by chunk.
pub fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let threads = options.threads.max(1);
    let metrics = Metrics::new();
    let service_of = service(&options, metrics.clone())?;
    let app = router(service_of.clone(), &options, metrics.clone());
    let listener = std::net::TcpListener::bind(options.addr)
        .with_context(|| format!("binding {}", options.addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, datasets = options.data.len(), threads, "serving");
    if options.access.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "no --access configuration: every dataset is public");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let exposition = options
        .metrics_addr
        .map(|at| {
            serve_metrics(
                at,
                metrics.clone(),
                service_of.clone(),
                &options.connections,
                until(stopped.clone()),
            )
        })
        .transpose()?;
    let shared = connections::Shared::new(options.connections.clone(), metrics.connections.clone());
    let workers = (1..threads)
        .map(|i| {
            let listener = listener.try_clone()?;
            let (app, shared, stopped) = (app.clone(), shared.clone(), stopped.clone());
            std::thread::Builder::new()
                .name(format!("serve-{i}"))
                .spawn(move || run(listener, app, shared, until(stopped)))
                .context("starting a server thread")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    println!("listening on http://{addr}");
    if let Some((at, _)) = &exposition {
        println!("metrics on http://{at}/metrics");
    }
    if options.www.is_some() {
        // Best effort: a caller that only wanted the first line may have closed the pipe.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "the viewer: open http://{addr}/ in a browser"
        );
    }
    let served = run(listener, app, shared, async move {
        shutdown().await;
        let _ = stop.send(true);
    });
    for worker in workers
        .into_iter()
        .chain(exposition.map(|(_, thread)| thread))
    {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a server thread panicked"))??;
    }
    served
}

/// Serves `GET /metrics` alone on `addr`, on a thread of its own with the API's connection
/// bounds (its connections apart from the API's count), until `stop` resolves.
fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    service: Arc<Service>,
    limits: &ConnectionLimits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, std::thread::JoinHandle<anyhow::Result<()>>)> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr} (metrics)"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving metrics");
    let app =
        axum::Router::new().route("/metrics", axum::routing::get(exposition(metrics, service)));
    let shared = connections::Shared::new(limits.clone(), Default::default());
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || run(listener, app, shared, stop))
        .context("starting the metrics thread")?;
    Ok((addr, thread))
}

/// The handler of `GET /metrics`: `metrics`, with `service`'s answer budget as it stands.
fn exposition(
    metrics: Arc<Metrics>,
    service: Arc<Service>,
) -> impl Fn() -> std::future::Ready<([(http::header::HeaderName, &'static str); 1], String)>
       + Clone
       + Send
       + 'static {
    move || {
        let text = metrics.text(service.budget());
        std::future::ready(([(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text))
    }
}

/// The routes of `options`: the API over its datasets, and its site when there is one.
///
/// Everything [`serve`] mounts, without a socket: a test or another host hands it requests
/// (it is a `tower::Service`). `options.addr` and `options.threads` are [`serve`]'s alone.
pub fn app(options: &ServeOptions) -> anyhow::Result<axum::Router> {
    let metrics = Metrics::new();
    Ok(router(service(options, metrics.clone())?, options, metrics))
}

/// The routes: `service` as the API, the site when `options` names one, and `metrics` at
/// `/metrics` unless `options` serves them at an address of their own.
fn router(service: Arc<Service>, options: &ServeOptions, metrics: Arc<Metrics>) -> axum::Router {
    let api = |State(service): State<Arc<Service>>, request: Request| handle(service, request);
    let metrics_route = exposition(metrics, service.clone());
    let routes = match &options.www {
        // `/v1` and below go to the API; everything else is a file of the site.
        Some(dir) => axum::Router::new()
            .route("/healthz", any(api))
            .route("/readyz", any(api))
            .route("/v1", any(api))
            .route("/v1/", any(api))
            .route("/v1/{*rest}", any(api))
            .fallback_service(static_site(dir)),
        None => axum::Router::new().fallback(api),
    };
    // With a metrics address of their own, the metrics are not beside the API.
    let routes = match options.metrics_addr {
        Some(_) => routes,
        None => routes.route("/metrics", axum::routing::get(metrics_route)),
    };
    routes.with_state(service)
}

/// Serves `app` on this thread until `stop` resolves, then lets open requests finish
/// (within the shutdown bound of `shared`'s limits).
fn run(
    listener: std::net::TcpListener,
    app: axum::Router,
    shared: connections::Shared,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        connections::serve(listener, app, shared, stop).await;
        Ok(())
    })
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn until(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// The site's files: `index.html` for a directory, `.wasm` as `application/wasm` (by
/// extension), Range and conditional requests honoured.
fn static_site(dir: &std::path::Path) -> tower_http::services::ServeDir {
    tower_http::services::ServeDir::new(dir).append_index_html_on_directories(true)
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM: the server then stops and the demo's emulator
/// with it.
async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installs a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Hands a request to the service and its answer back to axum.
async fn handle(service: Arc<Service>, request: Request) -> Response {
    service.handle(request).await.map(AxumBody::new)
}

/// The service's log: `tracing`, a line per request at info level and failures at error
/// level; and the metrics of both.
struct TracingLog {
    metrics: Arc<Metrics>,
}

impl RequestLog for TracingLog {
    fn served(&self, r: &RequestRecord) {
        self.metrics.served(r);
        tracing::info!(
            target: "request",
            request_id = r.request_id,
            method = %r.method,
            path = r.path,
            route = r.route,
            dataset = r.dataset.as_deref().unwrap_or("-"),
            status = r.status,
            bytes = r.bytes,
            duration_ms = format_args!("{:.3}", r.duration_ms),
            upstream_ms = format_args!("{:.3}", r.upstream_ms),
            cache_hits = r.cache_hits,
            cache_misses = r.cache_misses,
            complete = r.complete,
            "served"
        );
    }

    fn failed(&self, request_id: &str, method: &http::Method, path: &str, error: &ApiError) {
        self.metrics.failed(error);
        tracing::error!(
            request_id,
            %method,
            path,
            status = error.status.as_u16(),
            code = error.code,
            detail = error.detail.as_deref().unwrap_or(&error.message),
            "request failed"
        );
    }
}
