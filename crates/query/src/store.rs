//! The native range store: any `object_store` backend (local disk, S3, GCS, Azure, HTTP)
//! under a dataset prefix, with bounded timeouts and retries, and the system clock.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreScheme, RetryConfig};
use pocaduck_edge_read::{dataset_name, Clock, RangeStore, StoreError};

use crate::error::{Error, Result};

/// Seconds a cloud or HTTP store's request may take, its body included, unless its
/// `timeout` option says otherwise (`AWS_TIMEOUT`, …).
pub const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Seconds to connect to a cloud or HTTP store, unless its `connect_timeout` option says
/// otherwise.
pub const CONNECT_TIMEOUT_SECS: u64 = 5;
/// Times a failed request (a 5xx, a 429, a timeout, a connection or body error) is sent
/// again.
pub const MAX_RETRIES: usize = 3;
/// Seconds after a request's first try past which it is not tried again.
pub const RETRY_TIMEOUT_SECS: u64 = 30;

/// The retries of every cloud and HTTP store: at most [`MAX_RETRIES`], waiting 100 ms and
/// doubling to at most 2 s between tries, none started after [`RETRY_TIMEOUT_SECS`]. A
/// request that keeps failing therefore fails in at most about
/// `(MAX_RETRIES + 1) × REQUEST_TIMEOUT_SECS` plus 4 s of waits.
pub fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: MAX_RETRIES,
        retry_timeout: Duration::from_secs(RETRY_TIMEOUT_SECS),
    }
}

/// The client options every cloud and HTTP store starts from (before its own options):
/// [`REQUEST_TIMEOUT_SECS`] and [`CONNECT_TIMEOUT_SECS`].
fn default_client_options() -> [(String, String); 2] {
    [
        ("timeout".into(), format!("{REQUEST_TIMEOUT_SECS}s")),
        ("connect_timeout".into(), format!("{CONNECT_TIMEOUT_SECS}s")),
    ]
}

/// The store of `url` with `options` (over [`default_client_options`]) and
/// [`retry_config`], as `object_store::parse_url_opts` opens it with no retry settings; and
/// the path of `url` in it.
fn open_url(
    url: &url::Url,
    options: Vec<(String, String)>,
) -> Result<(Arc<dyn ObjectStore>, StorePath), object_store::Error> {
    let (scheme, path) = ObjectStoreScheme::parse(url)?;
    let path = StorePath::parse(path)?;
    let options = default_client_options().into_iter().chain(options);
    macro_rules! build {
        ($builder:expr, $key:ty) => {{
            let builder = options.fold($builder.with_retry(retry_config()), |b, (k, v)| match k
                .parse::<$key>()
            {
                Ok(k) => b.with_config(k, v),
                Err(_) => b,
            });
            Arc::new(builder.build()?) as Arc<dyn ObjectStore>
        }};
    }
    let store = match scheme {
        ObjectStoreScheme::Local => Arc::new(LocalFileSystem::new()) as Arc<dyn ObjectStore>,
        ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
        ObjectStoreScheme::AmazonS3 => build!(
            AmazonS3Builder::new().with_url(url.as_str()),
            object_store::aws::AmazonS3ConfigKey
        ),
        ObjectStoreScheme::GoogleCloudStorage => build!(
            GoogleCloudStorageBuilder::new().with_url(url.as_str()),
            object_store::gcp::GoogleConfigKey
        ),
        ObjectStoreScheme::MicrosoftAzure => build!(
            MicrosoftAzureBuilder::new().with_url(url.as_str()),
            object_store::azure::AzureConfigKey
        ),
        ObjectStoreScheme::Http => build!(
            HttpBuilder::new().with_url(&url[..url::Position::BeforePath]),
            object_store::ClientConfigKey
        ),
        other => {
            return Err(object_store::Error::Generic {
                store: "pocaduck-edge",
                source: format!("{other:?} URLs are not served").into(),
            })
        }
    };
    Ok((store, path))
}

/// A dataset's files in an object store, below `prefix`.
pub struct ObjectRanges {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
}

impl ObjectRanges {
    /// Opens `location`: a local directory, or a URL (`file://`, `s3://`, `gs://`, `az://`,
    /// `https://`) whose credentials come from the usual environment variables. Returns the
    /// dataset name (the last path segment) and the store.
    pub fn open(location: &str) -> Result<(String, Self)> {
        let open_error = |message: String| Error::Open {
            location: location.to_string(),
            message,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, StorePath) = if location.contains("://") {
            let url =
                url::Url::parse(location).map_err(|e| open_error(format!("not a URL: {e}")))?;
            // Only the stores' own variables: object_store also takes short aliases
            // (`token`, `endpoint`, `region`…) that unrelated variables must not set.
            let options: Vec<(String, String)> = std::env::vars()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .filter(|(k, _)| {
                    ["aws_", "google_", "azure_"]
                        .iter()
                        .any(|prefix| k.starts_with(prefix))
                })
                .collect();
            open_url(&url, options).map_err(|e| open_error(e.to_string()))?
        } else {
            let store = local_store(location).map_err(open_error)?;
            (Arc::new(store), StorePath::default())
        };
        Ok((dataset_name(location).to_string(), Self { store, prefix }))
    }

    /// The files of `store` below `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: StorePath) -> Self {
        Self { store, prefix }
    }

    fn path(&self, path: &str) -> StorePath {
        path.split('/')
            .fold(self.prefix.clone(), |p, part| p.child(part))
    }
}

/// Opens `location` as a server reads it: a local directory as [`LocalRanges`] (on Unix),
/// anything else as [`ObjectRanges::open`] does. Returns the dataset name (the last path
/// segment) and the store.
///
/// [`LocalRanges`]: crate::local::LocalRanges
pub fn open_for_serving(location: &str) -> Result<(String, Arc<dyn RangeStore>)> {
    #[cfg(unix)]
    if !location.contains("://") {
        let store =
            crate::local::LocalRanges::new(std::path::Path::new(location)).map_err(|e| {
                Error::Open {
                    location: location.to_string(),
                    message: format!("dataset directory: {e}"),
                }
            })?;
        return Ok((dataset_name(location).to_string(), Arc::new(store)));
    }
    let (name, store) = ObjectRanges::open(location)?;
    Ok((name, Arc::new(store)))
}

/// The local directory `dir` as a store (the directory must exist).
pub(crate) fn local_store(dir: &str) -> Result<LocalFileSystem, String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("dataset directory: {e}"))?;
    LocalFileSystem::new_with_prefix(&dir).map_err(|e| e.to_string())
}

fn store_error(path: &str, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound(path.into()),
        other => StoreError::Other {
            path: path.into(),
            message: other.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl RangeStore for ObjectRanges {
    async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        let result = self
            .store
            .get(&self.path(path))
            .await
            .map_err(|e| store_error(path, e))?;
        result.bytes().await.map_err(|e| store_error(path, e))
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.store
            .get_range(&self.path(path), range)
            .await
            .map_err(|e| store_error(path, e))
    }
}

/// Milliseconds since the clock was made (the server's start, a query's opening), and the
/// system's wall-clock time.
pub struct SystemClock(Instant);

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1e3
    }

    fn unix_seconds(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
