//! The Worker's configuration: `wrangler.toml`'s `[vars]` and the secrets, read into what the
//! service needs. The settings are the native server's flags under their environment names,
//! with the same defaults (docs/worker.md, "Configuration").

use std::time::Duration;

use pocaduck_edge_proxy::{AccessConfig, Limits};
use pocaduck_edge_read::dataset_name;
use pocaduck_edge_read::vast::{TableSetting, TableSettings, VastConfig, DEFAULT_LABELS_TTL_SECS};

/// Where a dataset's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Under `prefix` (empty, or ending in `/`) in the R2 bucket bound as `binding`.
    R2 {
        /// The binding's name in `wrangler.toml` (`[[r2_buckets]] binding`).
        binding: String,
        /// The keys' common prefix.
        prefix: String,
    },
    /// Under a base URL (ending in `/`) answering `Range` requests: a public S3, GCS or R2
    /// bucket, or a pocaduck-edge server's `/files/`.
    Url(String),
}

impl std::fmt::Display for Location {
    /// As `DATASETS` names it: `r2://BINDING/PREFIX` or the base URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::R2 { binding, prefix } => write!(f, "r2://{binding}/{prefix}"),
            Location::Url(base) => f.write_str(base),
        }
    }
}

/// A VastDB table to serve, as the native server's `--vastdb-*` flags give it.
#[derive(Debug, Clone)]
pub struct VastSettings {
    /// The dataset's name in URLs.
    pub name: String,
    /// Where the table is, with the keys.
    pub config: VastConfig,
    /// How long to wait for VastDB's next bytes.
    pub read_timeout: Duration,
    /// Seconds the table's label list is served before it is read again.
    pub labels_ttl_secs: u64,
}

/// Everything the Worker serves, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Datasets by name, each with its location.
    pub datasets: Vec<(String, Location)>,
    /// A VastDB table to serve too.
    pub vast: Option<VastSettings>,
    /// Origins allowed by CORS (`*` for any), when there is no access configuration.
    pub cors_origins: Vec<String>,
    /// The access configuration (`ACCESS`, docs/security.md); without one every dataset is
    /// public.
    pub access: Option<AccessConfig>,
    /// Request limits.
    pub limits: Limits,
}

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    /// The variable or secret to fix.
    pub setting: &'static str,
    /// What is wrong with it (never a secret's value).
    pub message: String,
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

/// Reads the settings through `var`, which gives a variable's or secret's value when it is
/// set.
pub fn settings(var: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    let datasets = datasets(var("DATASETS").as_deref().unwrap_or(""))?;
    let vast = vast(&var)?;
    if let Some(v) = &vast {
        if datasets.iter().any(|(n, _)| *n == v.name) {
            return Err(invalid(
                "VASTDB_NAME",
                format!(
                    "two datasets are named {:?}; name the VastDB one apart",
                    v.name
                ),
            ));
        }
    }
    let access = var("ACCESS")
        .map(|json| AccessConfig::parse(&json).map_err(|e| invalid("ACCESS", e.to_string())))
        .transpose()?;
    if access.is_some() && var("CORS_ORIGINS").is_some() {
        return Err(invalid(
            "CORS_ORIGINS",
            "with ACCESS set, each dataset's origins are its cors in ACCESS",
        ));
    }
    let cors_origins = match var("CORS_ORIGINS") {
        Some(list) => list
            .split([',', ' '])
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
        None => vec!["*".to_string()],
    };
    let defaults = Limits::default();
    let limits = Limits {
        max_labels: number(&var, "MAX_LABELS")?.map_or(defaults.max_labels, |n| n as usize),
        max_points: number(&var, "MAX_POINTS")?.unwrap_or(defaults.max_points),
        max_body_bytes: number(&var, "MAX_BODY_BYTES")?
            .map_or(defaults.max_body_bytes, |n| n as usize),
        max_answer_bytes: number(&var, "MAX_ANSWER_BYTES")?.unwrap_or(WORKER_ANSWER_BYTES),
        max_waiting_answers: number(&var, "MAX_WAITING_ANSWERS")?
            .map_or(defaults.max_waiting_answers, |n| n as usize),
    };
    Ok(Settings {
        datasets,
        vast,
        cors_origins,
        access,
        limits,
    })
}

/// `DATASETS`: locations separated by commas or spaces, each `r2://BINDING/PREFIX` or an
/// `http(s)://` base URL, named by their last path segment as natively, or `NAME=LOCATION`.
fn datasets(list: &str) -> Result<Vec<(String, Location)>, ConfigError> {
    let mut out: Vec<(String, Location)> = Vec::new();
    for entry in list.split([',', ' ', '\n', '\t']).filter(|l| !l.is_empty()) {
        let (name, location) = match entry.split_once('=') {
            Some((name, location)) if !name.contains('/') => (name, location),
            _ => (dataset_name(entry), entry),
        };
        if name.is_empty() {
            return Err(invalid("DATASETS", format!("{entry}: no dataset name")));
        }
        let parsed = if let Some(rest) = location.strip_prefix("r2://") {
            let (binding, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if binding.is_empty() {
                return Err(invalid(
                    "DATASETS",
                    format!("{location}: no R2 binding named"),
                ));
            }
            let prefix = prefix.trim_matches('/');
            Location::R2 {
                binding: binding.to_string(),
                prefix: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                },
            }
        } else if location.starts_with("https://") || location.starts_with("http://") {
            Location::Url(format!("{}/", location.trim_end_matches('/')))
        } else {
            return Err(invalid(
                "DATASETS",
                format!("{location} is neither r2://BINDING/PREFIX nor an http(s) URL"),
            ));
        };
        let name = name.to_string();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(invalid(
                "DATASETS",
                format!("two datasets are named {name:?}; give each a distinct last path segment"),
            ));
        }
        out.push((name, parsed));
    }
    Ok(out)
}

/// The VastDB table, when `VASTDB_ENDPOINT` is set.
fn vast(var: &impl Fn(&str) -> Option<String>) -> Result<Option<VastSettings>, ConfigError> {
    let Some(endpoint) = var("VASTDB_ENDPOINT").filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    let layout = match var("VASTDB_LAYOUT") {
        Some(layout) => Some(
            layout
                .parse()
                .map_err(|e: String| invalid("VASTDB_LAYOUT", e))?,
        ),
        None => None,
    };
    let settings = TableSettings {
        endpoint,
        access_key: var("VASTDB_ACCESS_KEY"),
        secret_key: var("VASTDB_SECRET_KEY"),
        bucket: var("VASTDB_BUCKET"),
        schema: var("VASTDB_SCHEMA"),
        table: var("VASTDB_TABLE"),
        layout,
        dims: number(var, "VASTDB_DIMS")?,
        limit_rows: number(var, "VASTDB_LIMIT_ROWS")?,
        read_timeout_secs: number(var, "VASTDB_READ_TIMEOUT")?,
    };
    let checked = settings.check().map_err(|(setting, why)| {
        let (name, how) = match setting {
            TableSetting::Endpoint => ("VASTDB_ENDPOINT", ""),
            TableSetting::AccessKey => ("VASTDB_ACCESS_KEY", SECRET),
            TableSetting::SecretKey => ("VASTDB_SECRET_KEY", SECRET),
            TableSetting::Bucket => ("VASTDB_BUCKET", VAR),
            TableSetting::Schema => ("VASTDB_SCHEMA", VAR),
            TableSetting::Table => ("VASTDB_TABLE", ""),
            TableSetting::Dims => ("VASTDB_DIMS", ""),
            TableSetting::LimitRows => ("VASTDB_LIMIT_ROWS", ""),
            TableSetting::ReadTimeout => ("VASTDB_READ_TIMEOUT", ""),
        };
        invalid(name, format!("{why}{how}"))
    })?;
    Ok(Some(VastSettings {
        name: var("VASTDB_NAME").unwrap_or(checked.table_name),
        config: checked.config,
        read_timeout: Duration::from_secs(checked.read_timeout_secs),
        labels_ttl_secs: number(var, "VASTDB_LABELS_TTL")?.unwrap_or(DEFAULT_LABELS_TTL_SECS),
    }))
}

/// The Worker's default of [`Limits::max_answer_bytes`]: half an isolate's 128 MB.
const WORKER_ANSWER_BYTES: u64 = 64 << 20;

/// How a missing secret is set.
const SECRET: &str = " (wrangler secret put, or .dev.vars locally)";
/// How a missing variable is set.
const VAR: &str = " (a [vars] entry)";

/// A whole number setting, `None` when unset.
fn number(
    var: &impl Fn(&str) -> Option<String>,
    setting: &'static str,
) -> Result<Option<u64>, ConfigError> {
    var(setting)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| invalid(setting, format!("{v:?} is not a whole number")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use pocaduck_edge_read::vast::DEFAULT_LIMIT_ROWS;
    use pocaduck_edge_read::Layout;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings(|name| vars.get(name).cloned())
    }

    const VAST: [(&str, &str); 5] = [
        ("VASTDB_ENDPOINT", "http://127.0.0.1:9000"),
        ("VASTDB_ACCESS_KEY", "AKIDEXAMPLE"),
        (
            "VASTDB_SECRET_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("VASTDB_BUCKET", "flyem"),
        ("VASTDB_SCHEMA", "hemibrain"),
    ];

    #[test]
    fn nothing_set_serves_nothing_with_the_native_defaults() {
        let s = read(&[]).unwrap();
        assert!(s.datasets.is_empty() && s.vast.is_none());
        assert_eq!(s.cors_origins, ["*"]);
        let native = Limits::default();
        assert_eq!(
            (
                s.limits.max_labels,
                s.limits.max_points,
                s.limits.max_body_bytes
            ),
            (native.max_labels, native.max_points, native.max_body_bytes)
        );
    }

    #[test]
    fn datasets_are_r2_prefixes_or_base_urls_named_by_their_last_segment() {
        let s = read(&[(
            "DATASETS",
            "r2://DATA/flyem/hemibrain-da1/, https://bucket.example/a/other\n r2://DATA/top, \
             web=https://pub.r2.example/",
        )])
        .unwrap();
        assert_eq!(
            s.datasets,
            [
                (
                    "hemibrain-da1".to_string(),
                    Location::R2 {
                        binding: "DATA".into(),
                        prefix: "flyem/hemibrain-da1/".into()
                    }
                ),
                (
                    "other".to_string(),
                    Location::Url("https://bucket.example/a/other/".into())
                ),
                (
                    "top".to_string(),
                    Location::R2 {
                        binding: "DATA".into(),
                        prefix: "top/".into()
                    }
                ),
                (
                    "web".to_string(),
                    Location::Url("https://pub.r2.example/".into())
                ),
            ]
        );
    }

    #[test]
    fn bad_datasets_name_the_setting() {
        for list in [
            "s3://bucket/a",
            "r2:///a",
            "r2://DATA/a,https://x.example/a",
            "=r2://DATA/a",
            "a=ftp://x.example/",
        ] {
            let e = read(&[("DATASETS", list)]).unwrap_err();
            assert_eq!(e.setting, "DATASETS", "{list}: {e}");
        }
    }

    #[test]
    fn a_vastdb_table_takes_the_native_defaults() {
        let v = read(&VAST).unwrap().vast.unwrap();
        assert_eq!(v.name, "point_clouds");
        assert_eq!(v.config.table.to_string(), "flyem/hemibrain/point_clouds");
        assert_eq!(v.config.layout, Layout::Pocaduck);
        assert_eq!(v.config.dims, 3);
        assert_eq!(v.config.limit_rows, DEFAULT_LIMIT_ROWS);
        assert_eq!(v.read_timeout, Duration::from_secs(30));
        assert_eq!(v.labels_ttl_secs, 60);
    }

    #[test]
    fn a_missing_or_bad_vastdb_setting_is_named_without_any_secret() {
        for (drop, setting) in [
            ("VASTDB_ACCESS_KEY", "VASTDB_ACCESS_KEY"),
            ("VASTDB_SECRET_KEY", "VASTDB_SECRET_KEY"),
            ("VASTDB_BUCKET", "VASTDB_BUCKET"),
        ] {
            let vars: Vec<_> = VAST.iter().copied().filter(|(k, _)| *k != drop).collect();
            let e = read(&vars).unwrap_err();
            assert_eq!(e.setting, setting);
            for (_, value) in &VAST[1..3] {
                assert!(!e.to_string().contains(value), "{e}");
            }
        }
        for (setting, value) in [
            ("VASTDB_LAYOUT", "rows"),
            ("VASTDB_DIMS", "0"),
            ("VASTDB_DIMS", "three"),
            ("VASTDB_READ_TIMEOUT", "0"),
            ("VASTDB_LABELS_TTL", "-1"),
            ("VASTDB_ENDPOINT", "vast.example"),
        ] {
            let mut vars = VAST.to_vec();
            vars.retain(|(k, _)| *k != setting);
            vars.push((setting, value));
            assert_eq!(
                read(&vars).unwrap_err().setting,
                setting,
                "{setting}={value}"
            );
        }
    }

    #[test]
    fn the_vastdb_table_and_a_dataset_may_not_share_a_name() {
        let mut vars = VAST.to_vec();
        vars.push(("DATASETS", "r2://DATA/point_clouds"));
        assert_eq!(read(&vars).unwrap_err().setting, "VASTDB_NAME");
        vars.push(("VASTDB_NAME", "vast"));
        assert_eq!(read(&vars).unwrap().datasets.len(), 1);
    }

    #[test]
    fn limits_and_origins_are_read() {
        let s = read(&[
            ("CORS_ORIGINS", "https://a.example, https://b.example"),
            ("MAX_LABELS", "5"),
            ("MAX_POINTS", "1000"),
            ("MAX_BODY_BYTES", "64"),
            ("MAX_ANSWER_BYTES", "1048576"),
            ("MAX_WAITING_ANSWERS", "3"),
        ])
        .unwrap();
        assert_eq!(s.cors_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(
            (
                s.limits.max_labels,
                s.limits.max_points,
                s.limits.max_body_bytes,
                s.limits.max_answer_bytes,
                s.limits.max_waiting_answers
            ),
            (5, 1000, 64, 1 << 20, 3)
        );
        // Unset, an isolate's answers hold at most half of its 128 MB.
        assert_eq!(read(&[]).unwrap().limits.max_answer_bytes, 64 << 20);
        assert_eq!(
            read(&[("MAX_POINTS", "-1")]).unwrap_err().setting,
            "MAX_POINTS"
        );
    }

    #[test]
    fn access_is_the_native_json_and_replaces_cors_origins() {
        let hash = "sha256:a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e";
        let json = format!(
            r#"{{"datasets": {{"lab": {{"tokens": ["{hash}"], "cors": ["https://viewer.lab.org"]}}}}}}"#
        );
        let s = read(&[("ACCESS", &json)]).unwrap();
        let access = s.access.unwrap();
        assert_eq!(
            access.datasets["lab"].cors.origins(),
            ["https://viewer.lab.org"]
        );
        assert!(read(&[]).unwrap().access.is_none());
        let both = read(&[("ACCESS", &json), ("CORS_ORIGINS", "*")]).unwrap_err();
        assert_eq!(both.setting, "CORS_ORIGINS");
        let plain = read(&[(
            "ACCESS",
            r#"{"datasets": {"lab": {"tokens": ["s3cret-token"]}}}"#,
        )])
        .unwrap_err();
        assert_eq!(plain.setting, "ACCESS");
        assert!(plain.message.contains("datasets.lab.tokens[0]"), "{plain}");
        assert!(!plain.to_string().contains("s3cret"), "{plain}");
    }
}
