//! Where the data is: PoCADuck's `StorageConfig` (its field names, its storage type derived
//! from `base_path`'s scheme, its validation) plus the VastDB fields of its `dev` branch.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as StorePath;
use object_store::{ClientConfigKey, ObjectStore};
use pocaduck_edge_read::vast::{Layout, VastConfig, DEFAULT_LIMIT_ROWS, DEFAULT_MAX_RETRIES};
use pocaduck_edge_vastdb::{Credentials, Endpoint, TablePath};

use crate::error::{Error, Result};
use crate::http_credentials::{bearer_headers, SignedQuery, BEARER_TOKEN};
use crate::store::{local_store, retry_config, ObjectRanges};
use pocaduck_edge_read::dataset_name;

/// The VastDB table read when `vastdb_table` is not changed (PoCADuck's default).
pub const DEFAULT_VASTDB_TABLE: &str = pocaduck_edge_read::vast::DEFAULT_TABLE;
/// Values per point when `dims` is not changed.
pub const DEFAULT_DIMS: usize = pocaduck_edge_read::vast::DEFAULT_DIMS;

/// Rows per sub-split per VastDB reply for `Query`, which returns whole labels.
pub(crate) const QUERY_LIMIT_ROWS: u64 =
    pocaduck_edge_read::vast::WHOLE_LABEL_PAGE_FACTOR * DEFAULT_LIMIT_ROWS;

/// The kind of storage a [`StorageConfig`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// A VastDB table (the `vastdb_*` fields).
    Vastdb,
    /// An edge-layout dataset in a local directory (a path, or `file://`).
    Local,
    /// An edge-layout dataset on S3 or an S3-compatible store (`s3://`).
    S3,
    /// An edge-layout dataset on Google Cloud Storage (`gs://` or `gcs://`).
    Gcs,
    /// An edge-layout dataset on Azure Blob Storage (`az://` or `azure://`).
    Azure,
    /// An edge-layout dataset on any static HTTP host that answers range requests
    /// (`http://` or `https://`).
    Http,
}

impl StorageType {
    /// The name PoCADuck gives it: `vastdb`, `local`, `s3`, `gcs`, `azure` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::Vastdb => "vastdb",
            StorageType::Local => "local",
            StorageType::S3 => "s3",
            StorageType::Gcs => "gcs",
            StorageType::Azure => "azure",
            StorageType::Http => "http",
        }
    }
}

impl fmt::Display for StorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a dataset is and how to reach it: PoCADuck's `StorageConfig`, field for field,
/// plus the VastDB fields of its `dev` branch and the explicit `dims` of a VastDB table.
///
/// Build one with [`StorageConfig::new`] (a local path or a URL), [`StorageConfig::vastdb`],
/// or a struct literal ending in `..Default::default()`. The storage type is derived as
/// PoCADuck derives it ([`StorageConfig::storage_type`]); [`StorageConfig::validate`] checks
/// what PoCADuck checks, and [`Query::new`](crate::Query::new) validates before opening.
/// `Debug` never shows a secret key, a connection string or inline credentials.
#[derive(Clone)]
pub struct StorageConfig {
    /// The dataset: a local directory, or `s3://`, `gs://`/`gcs://`, `az://`/`azure://` or
    /// `http(s)://` URL of an edge-layout dataset. Empty (or `vastdb://…`) for VastDB.
    pub base_path: String,
    /// AWS region, required for `s3://` (as in PoCADuck).
    pub s3_region: Option<String>,
    /// AWS access key id for `s3://` (else the environment's `AWS_ACCESS_KEY_ID`).
    pub s3_access_key_id: Option<String>,
    /// AWS secret access key for `s3://` (else the environment's `AWS_SECRET_ACCESS_KEY`).
    pub s3_secret_access_key: Option<String>,
    /// Google Cloud project id, required for `gs://` unless `extra_config` has
    /// `GOOGLE_CLOUD_PROJECT` (as in PoCADuck; the store itself does not use it).
    pub gcs_project_id: Option<String>,
    /// Google credentials: a service-account key file's path, or the key's JSON itself.
    pub gcs_credentials: Option<String>,
    /// Azure storage connection string, required for `az://` (as in PoCADuck).
    pub azure_storage_connection_string: Option<String>,
    /// More store options, as `object_store` names them (`aws_endpoint`,
    /// `aws_session_token`, `google_service_account`, `azure_storage_account_name`,
    /// `allow_http`, `timeout`, …), plus PoCADuck's `s3_endpoint_url` and
    /// `s3_session_token`. An unknown key is an error. Ignored for local and VastDB.
    pub extra_config: BTreeMap<String, String>,
    /// VastDB endpoint, e.g. `http://vast.example:80`. Setting any `vastdb_*` field but the
    /// table and layout makes this a VastDB config.
    pub vastdb_endpoint: Option<String>,
    /// VastDB access key.
    pub vastdb_access_key: Option<String>,
    /// VastDB secret key.
    pub vastdb_secret_key: Option<String>,
    /// VastDB bucket holding the schema.
    pub vastdb_bucket: Option<String>,
    /// VastDB schema holding the table.
    pub vastdb_schema: Option<String>,
    /// VastDB table ([`DEFAULT_VASTDB_TABLE`] by default).
    pub vastdb_table: String,
    /// VastDB table layout: PoCADuck's (`label, block_id, points list<int64>`, the default)
    /// or columnar (`label, x, y, z`, what `pocaduck-edge vastdb load` writes by default).
    pub vastdb_layout: Layout,
    /// Values per point of a VastDB table (never guessed from the data); edge-layout
    /// datasets carry theirs in the manifest, which wins.
    pub dims: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            base_path: String::new(),
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            gcs_project_id: None,
            gcs_credentials: None,
            azure_storage_connection_string: None,
            extra_config: BTreeMap::new(),
            vastdb_endpoint: None,
            vastdb_access_key: None,
            vastdb_secret_key: None,
            vastdb_bucket: None,
            vastdb_schema: None,
            vastdb_table: DEFAULT_VASTDB_TABLE.to_owned(),
            vastdb_layout: pocaduck_edge_read::vast::DEFAULT_LAYOUT,
            dims: DEFAULT_DIMS,
        }
    }
}

impl StorageConfig {
    /// A config for `base_path` (a local directory or a URL), every other field default.
    pub fn new(base_path: impl Into<String>) -> Self {
        Self {
            base_path: base_path.into(),
            ..Self::default()
        }
    }

    /// A config for table [`DEFAULT_VASTDB_TABLE`] of `bucket/schema` at `endpoint`, in
    /// PoCADuck's layout with 3 dims (change `vastdb_table`, `vastdb_layout` and `dims` as
    /// needed).
    pub fn vastdb(
        endpoint: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
        bucket: impl Into<String>,
        schema: impl Into<String>,
    ) -> Self {
        Self {
            vastdb_endpoint: Some(endpoint.into()),
            vastdb_access_key: Some(access_key.into()),
            vastdb_secret_key: Some(secret_key.into()),
            vastdb_bucket: Some(bucket.into()),
            vastdb_schema: Some(schema.into()),
            ..Self::default()
        }
    }

    fn has_vastdb_fields(&self) -> bool {
        self.vastdb_endpoint.is_some()
            || self.vastdb_access_key.is_some()
            || self.vastdb_secret_key.is_some()
            || self.vastdb_bucket.is_some()
            || self.vastdb_schema.is_some()
    }

    /// The storage type: `vastdb` when a `vastdb_*` connection field is set (or `base_path`
    /// is `vastdb://…`), else from `base_path`'s scheme as PoCADuck derives it (none or
    /// `file` → local, `s3`, `gs`/`gcs`, `az`/`azure`, `http`/`https`). Fails on another
    /// scheme, or a `base_path` URL beside the VastDB fields.
    pub fn storage_type(&self) -> Result<StorageType> {
        let scheme = self
            .base_path
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        let from_path = match scheme.as_deref() {
            None => StorageType::Local,
            Some("file") => StorageType::Local,
            Some("s3" | "s3a") => StorageType::S3,
            Some("gs" | "gcs") => StorageType::Gcs,
            Some("az" | "azure" | "abfs" | "abfss") => StorageType::Azure,
            Some("http" | "https") => StorageType::Http,
            Some("vastdb") => StorageType::Vastdb,
            Some(other) => {
                let known = "a local path, s3://, gs://, gcs://, az://, azure://, http(s)://";
                let message = format!("base_path has scheme {other:?}: use {known} or vastdb_*");
                return Err(Error::Config(message));
            }
        };
        if self.has_vastdb_fields() {
            if !self.base_path.is_empty() && from_path != StorageType::Vastdb {
                return Err(Error::Config(format!(
                    "both a {from_path} base_path and vastdb_* fields are set: use one storage"
                )));
            }
            return Ok(StorageType::Vastdb);
        }
        Ok(from_path)
    }

    /// Checks the config as PoCADuck does (and a little more): `s3://` needs `s3_region`,
    /// `gs://` a project id, `az://` a connection string, VastDB its endpoint, keys, bucket,
    /// schema and a valid table name; `dims` is at least 1. Returns the storage type.
    pub fn validate(&self) -> Result<StorageType> {
        let kind = self.storage_type()?;
        if self.dims == 0 {
            return Err(Error::Config("dims must be at least 1".into()));
        }
        let missing = |what: &str| {
            Err(Error::Config(format!(
                "{what} is required for {kind} storage"
            )))
        };
        match kind {
            StorageType::Local | StorageType::Http => {
                if self.base_path.trim().is_empty() {
                    return missing("base_path");
                }
            }
            StorageType::S3 => {
                if self.s3_region.as_deref().is_none_or(str::is_empty) {
                    return missing("s3_region");
                }
            }
            StorageType::Gcs => {
                if self.gcs_project_id.as_deref().is_none_or(str::is_empty)
                    && !self.extra_config.contains_key("GOOGLE_CLOUD_PROJECT")
                {
                    return missing("gcs_project_id");
                }
            }
            StorageType::Azure => {
                if self
                    .azure_storage_connection_string
                    .as_deref()
                    .is_none_or(str::is_empty)
                {
                    return missing("azure_storage_connection_string");
                }
            }
            StorageType::Vastdb => {
                self.vast_config()?;
            }
        }
        Ok(kind)
    }

    /// The VastDB table to read, checked.
    pub(crate) fn vast_config(&self) -> Result<VastConfig> {
        let fields = [
            ("vastdb_endpoint", &self.vastdb_endpoint),
            ("vastdb_access_key", &self.vastdb_access_key),
            ("vastdb_secret_key", &self.vastdb_secret_key),
            ("vastdb_bucket", &self.vastdb_bucket),
            ("vastdb_schema", &self.vastdb_schema),
        ];
        let missing: Vec<&str> = fields
            .iter()
            .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "{} required for vastdb storage",
                match missing.as_slice() {
                    [one] => format!("{one} is"),
                    many => format!("{} are", many.join(", ")),
                }
            )));
        }
        let value = |v: &Option<String>| v.clone().unwrap_or_default();
        let endpoint = Endpoint::parse(&value(&self.vastdb_endpoint))
            .map_err(|e| Error::Config(format!("vastdb_endpoint: {e}")))?;
        let table = TablePath::new(
            &value(&self.vastdb_bucket),
            &value(&self.vastdb_schema),
            &self.vastdb_table,
        )
        .map_err(|e| Error::Config(format!("vastdb table: {e}")))?;
        if self.dims == 0 {
            return Err(Error::Config("dims must be at least 1".into()));
        }
        Ok(VastConfig {
            endpoint,
            credentials: Credentials::new(
                value(&self.vastdb_access_key),
                value(&self.vastdb_secret_key),
            ),
            table,
            layout: self.vastdb_layout,
            dims: self.dims,
            max_retries: DEFAULT_MAX_RETRIES,
            limit_rows: QUERY_LIMIT_ROWS,
        })
    }

    /// Opens the edge-layout dataset of a non-VastDB config: its name and its store.
    pub(crate) fn open_store(&self) -> Result<(String, ObjectRanges)> {
        let kind = self.validate()?;
        let open_error = |message: String| Error::Open {
            location: redacted_url(&self.base_path),
            message,
        };
        if kind == StorageType::Local {
            let dir = match self.base_path.split_once("://") {
                Some((_, path)) => path,
                None => self.base_path.as_str(),
            };
            let store = local_store(dir).map_err(open_error)?;
            return Ok((
                dataset_name(dir).to_string(),
                ObjectRanges::new(Arc::new(store), StorePath::default()),
            ));
        }
        if kind == StorageType::Vastdb {
            return Err(Error::Config(
                "a vastdb config names a table, not an edge-layout dataset".into(),
            ));
        }
        let mut url = url::Url::parse(&self.base_path)
            .map_err(|e| Error::Config(format!("base_path is not a URL: {e}")))?;
        if url.scheme() == "gcs" {
            // object_store knows Google Cloud Storage URLs as gs:// only.
            let rest = &self.base_path["gcs://".len()..];
            url = url::Url::parse(&format!("gs://{rest}"))
                .map_err(|e| Error::Config(format!("base_path is not a URL: {e}")))?;
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::Config(format!(
                "base_path names no {}",
                if kind == StorageType::Http {
                    "host"
                } else {
                    "bucket or container"
                }
            )));
        }
        let prefix = StorePath::from_url_path(url.path()).map_err(|e| open_error(e.to_string()))?;
        let store = self.build_store(kind, &url).map_err(open_error)?;
        Ok((
            dataset_name(url.path()).to_string(),
            ObjectRanges::new(store, prefix),
        ))
    }

    /// The `object_store` for a cloud or HTTP dataset at `url`, credentials passed as its
    /// options (over the environment's, which the cloud builders read first).
    fn build_store(
        &self,
        kind: StorageType,
        url: &url::Url,
    ) -> Result<Arc<dyn ObjectStore>, String> {
        let unknown =
            |key: &str| format!("extra_config key {key:?} is not an option of the {kind} store");
        let store: Arc<dyn ObjectStore> = match kind {
            StorageType::S3 => {
                let mut b = AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry_config());
                let mut options: Vec<(String, String)> = Vec::new();
                for (key, value) in [
                    ("aws_region", &self.s3_region),
                    ("aws_access_key_id", &self.s3_access_key_id),
                    ("aws_secret_access_key", &self.s3_secret_access_key),
                ] {
                    if let Some(v) = value {
                        options.push((key.to_owned(), v.clone()));
                    }
                }
                for (key, value) in &self.extra_config {
                    let key = match key.as_str() {
                        "s3_endpoint_url" | "s3_endpoint" => "aws_endpoint",
                        "s3_session_token" => "aws_session_token",
                        other => other,
                    };
                    options.push((key.to_owned(), value.clone()));
                }
                for (key, value) in options {
                    if key == "aws_endpoint" && value.starts_with("http://") {
                        b = b.with_allow_http(true);
                    }
                    let k: AmazonS3ConfigKey = key.parse().map_err(|_| unknown(&key))?;
                    b = b.with_config(k, value);
                }
                Arc::new(b.build().map_err(|e| e.to_string())?)
            }
            StorageType::Gcs => {
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry_config());
                if let Some(credentials) = &self.gcs_credentials {
                    let key = if credentials.trim_start().starts_with('{') {
                        GoogleConfigKey::ServiceAccountKey
                    } else {
                        GoogleConfigKey::ServiceAccount
                    };
                    b = b.with_config(key, credentials.clone());
                }
                for (key, value) in &self.extra_config {
                    if key == "GOOGLE_CLOUD_PROJECT" || key == "gcs_project_id" {
                        continue;
                    }
                    let k: GoogleConfigKey = key.parse().map_err(|_| unknown(key))?;
                    b = b.with_config(k, value.clone());
                }
                Arc::new(b.build().map_err(|e| e.to_string())?)
            }
            StorageType::Azure => {
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry_config());
                if let Some(connection) = &self.azure_storage_connection_string {
                    for (key, value) in azure_connection_options(connection)? {
                        if key == AzureConfigKey::Client(ClientConfigKey::AllowHttp) {
                            b = b.with_allow_http(value == "true");
                        } else {
                            b = b.with_config(key, value);
                        }
                    }
                }
                for (key, value) in &self.extra_config {
                    let k: AzureConfigKey = key.parse().map_err(|_| unknown(key))?;
                    b = b.with_config(k, value.clone());
                }
                Arc::new(b.build().map_err(|e| e.to_string())?)
            }
            StorageType::Http => {
                let origin = &url[..url::Position::BeforePath];
                let mut b = HttpBuilder::new()
                    .with_url(origin)
                    .with_retry(retry_config());
                // Before any other option: these replace the client options whole.
                if let Some(token) = self.extra_config.get(BEARER_TOKEN) {
                    b = b.with_client_options(
                        object_store::ClientOptions::new()
                            .with_default_headers(bearer_headers(token)?),
                    );
                }
                // A signed URL (docs/security.md): its query goes on every request.
                if let Some(query) = url.query().filter(|q| !q.is_empty()) {
                    b = b.with_http_connector(SignedQuery::new(query));
                }
                if url.scheme() == "http" {
                    b = b.with_config(ClientConfigKey::AllowHttp, "true");
                }
                for (key, value) in &self.extra_config {
                    if key == BEARER_TOKEN {
                        continue;
                    }
                    let k: ClientConfigKey = key.parse().map_err(|_| unknown(key))?;
                    b = b.with_config(k, value.clone());
                }
                Arc::new(b.build().map_err(|e| e.to_string())?)
            }
            StorageType::Local | StorageType::Vastdb => {
                unreachable!("local and vastdb configs open no object store")
            }
        };
        Ok(store)
    }
}

/// The options of an Azure storage connection string
/// (`DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=…`, or with
/// `SharedAccessSignature`, `BlobEndpoint` or `UseDevelopmentStorage=true`).
fn azure_connection_options(connection: &str) -> Result<Vec<(AzureConfigKey, String)>, String> {
    let mut parts: BTreeMap<String, String> = BTreeMap::new();
    for part in connection
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            "azure_storage_connection_string is not a list of key=value pairs".to_owned()
        })?;
        parts.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let mut out = Vec::new();
    let protocol = parts
        .get("defaultendpointsprotocol")
        .cloned()
        .unwrap_or_else(|| "https".to_owned());
    if protocol == "http" {
        out.push((
            AzureConfigKey::Client(ClientConfigKey::AllowHttp),
            "true".to_owned(),
        ));
    }
    if parts
        .get("usedevelopmentstorage")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        out.push((AzureConfigKey::UseEmulator, "true".to_owned()));
        out.push((
            AzureConfigKey::Client(ClientConfigKey::AllowHttp),
            "true".to_owned(),
        ));
    }
    if let Some(account) = parts.get("accountname") {
        out.push((AzureConfigKey::AccountName, account.clone()));
        if !parts.contains_key("blobendpoint") {
            if let Some(suffix) = parts
                .get("endpointsuffix")
                .filter(|s| s.as_str() != "core.windows.net")
            {
                out.push((
                    AzureConfigKey::Endpoint,
                    format!("{protocol}://{account}.blob.{suffix}"),
                ));
            }
        }
    }
    if let Some(key) = parts.get("accountkey") {
        out.push((AzureConfigKey::AccessKey, key.clone()));
    }
    if let Some(sas) = parts.get("sharedaccesssignature") {
        out.push((AzureConfigKey::SasKey, sas.clone()));
    }
    if let Some(endpoint) = parts.get("blobendpoint") {
        if endpoint.starts_with("http://") {
            out.push((
                AzureConfigKey::Client(ClientConfigKey::AllowHttp),
                "true".to_owned(),
            ));
        }
        out.push((AzureConfigKey::Endpoint, endpoint.clone()));
    }
    Ok(out)
}

/// `url` with any password replaced (a URL may carry credentials).
pub(crate) fn redacted_url(location: &str) -> String {
    let Ok(mut url) = url::Url::parse(location) else {
        return location.to_owned();
    };
    if url.password().is_none() && !url.query_pairs().any(|(k, _)| k == "sig") {
        return location.to_owned();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("REDACTED"));
    }
    // A signed URL's signature is a credential.
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "sig" { "REDACTED".into() } else { v };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    if !pairs.is_empty() {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Whether an `extra_config` value may be a secret, by its key.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "key",
        "password",
        "credential",
        "sas",
        "signature",
        "connection",
    ]
    .iter()
    .any(|word| key.contains(word))
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |v: &Option<String>| v.as_ref().map(|_| REDACTED);
        let gcs_credentials = self.gcs_credentials.as_deref().map(|c| {
            if c.trim_start().starts_with('{') {
                REDACTED
            } else {
                c
            }
        });
        let extra: BTreeMap<&str, &str> = self
            .extra_config
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    REDACTED
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("StorageConfig")
            .field("storage_type", &self.storage_type().ok())
            .field("base_path", &redacted_url(&self.base_path))
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("s3_secret_access_key", &secret(&self.s3_secret_access_key))
            .field("gcs_project_id", &self.gcs_project_id)
            .field("gcs_credentials", &gcs_credentials)
            .field(
                "azure_storage_connection_string",
                &secret(&self.azure_storage_connection_string),
            )
            .field("extra_config", &extra)
            .field("vastdb_endpoint", &self.vastdb_endpoint)
            .field("vastdb_access_key", &self.vastdb_access_key)
            .field("vastdb_secret_key", &secret(&self.vastdb_secret_key))
            .field("vastdb_bucket", &self.vastdb_bucket)
            .field("vastdb_schema", &self.vastdb_schema)
            .field("vastdb_table", &self.vastdb_table)
            .field("vastdb_layout", &self.vastdb_layout)
            .field("dims", &self.dims)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_types_follow_pocaducks_schemes() {
        let kind = |p: &str| StorageConfig::new(p).storage_type().unwrap();
        assert_eq!(kind("/data/x"), StorageType::Local);
        assert_eq!(kind("relative/x"), StorageType::Local);
        assert_eq!(kind("file:///data/x"), StorageType::Local);
        assert_eq!(kind("s3://b/p"), StorageType::S3);
        assert_eq!(kind("gs://b/p"), StorageType::Gcs);
        assert_eq!(kind("gcs://b/p"), StorageType::Gcs);
        assert_eq!(kind("az://c/p"), StorageType::Azure);
        assert_eq!(kind("azure://c/p"), StorageType::Azure);
        assert_eq!(kind("http://h/p"), StorageType::Http);
        assert_eq!(kind("HTTPS://h/p"), StorageType::Http);
        let v = StorageConfig::vastdb("http://v:80", "a", "s", "b", "s");
        assert_eq!(v.storage_type().unwrap(), StorageType::Vastdb);
        assert!(StorageConfig::new("ftp://h/p").storage_type().is_err());
        let mixed = StorageConfig {
            base_path: "s3://b/p".into(),
            ..v
        };
        assert!(mixed.storage_type().is_err());
    }

    #[test]
    fn azure_connection_strings_become_options() {
        let options = azure_connection_options(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(
            options,
            vec![
                (AzureConfigKey::AccountName, "acct".to_owned()),
                (AzureConfigKey::AccessKey, "a2V5==".to_owned()),
            ]
        );
        assert!(azure_connection_options("nonsense").is_err());
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redacted_url("https://user:hunter2@host/p"),
            "https://user:REDACTED@host/p"
        );
        assert_eq!(redacted_url("/local/path"), "/local/path");
    }
}
