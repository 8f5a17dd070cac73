//! The access configuration (docs/security.md, "Configuration"): one JSON document, the
//! same for the native server (`serve --access FILE`) and the Worker (its `ACCESS`
//! secret), giving each dataset its readers and its CORS origins.
//!
//! ```json
//! {"datasets": {
//!    "hemibrain-da1": {"access": "public"},
//!    "secret-ds": {"tokens": ["sha256:…"], "signing_keys": [{"id": "k1", "secret_hex": "…"}],
//!                  "cors": ["https://viewer.lab.org"]}},
//!  "default": {"access": "public", "cors": ["*"]}}
//! ```
//!
//! Every mistake is an error naming the setting (`datasets.secret-ds.tokens[0]`), never
//! echoing a value that may be a secret.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::signed::SigningKey;
use super::token::TokenHash;
use crate::cors::CorsPolicy;

/// A mistake in the access configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the access configuration's {setting}: {message}")]
pub struct AccessError {
    /// The setting to fix, as a path into the document (`datasets.NAME.tokens[0]`).
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

impl AccessError {
    /// An error of `setting`.
    pub(crate) fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// Who may read one dataset, and from which origins a browser may.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Anyone may read it; credentials are not looked at.
    pub public: bool,
    /// Hashes of the bearer tokens that may read it.
    pub tokens: Vec<TokenHash>,
    /// Keys whose signed URLs may read it.
    pub keys: Vec<SigningKey>,
    /// Origins whose scripts may read its answers.
    pub cors: CorsPolicy,
}

/// The access configuration, parsed and checked: a policy per named dataset, and one for
/// the datasets it does not name, if any.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// Policies by dataset name.
    pub datasets: BTreeMap<String, Policy>,
    /// The policy of a served dataset not named; without one, every served dataset must be
    /// named.
    pub default: Option<Policy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    datasets: BTreeMap<String, RawPolicy>,
    default: Option<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    access: Option<Visibility>,
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    signing_keys: Vec<RawKey>,
    cors: Option<Vec<String>>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Visibility {
    Public,
    Private,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    secret_hex: String,
}

impl AccessConfig {
    /// Parses and checks the JSON document `json`.
    pub fn parse(json: &str) -> Result<Self, AccessError> {
        let mut document = serde_json::Deserializer::from_str(json);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut document).map_err(|e| {
            let setting = match e.path().to_string() {
                p if p == "." => "document".to_owned(),
                p => p,
            };
            AccessError::new(setting, without_strings(&e.inner().to_string()))
        })?;
        document
            .end()
            .map_err(|e| AccessError::new("document", e.to_string()))?;
        let mut datasets = BTreeMap::new();
        for (name, raw) in raw.datasets {
            let policy = policy(&format!("datasets.{name}"), raw)?;
            datasets.insert(name, policy);
        }
        let default = raw.default.map(|raw| policy("default", raw)).transpose()?;
        Ok(Self { datasets, default })
    }
}

/// The policy `raw` at `setting`, checked.
fn policy(setting: &str, raw: RawPolicy) -> Result<Policy, AccessError> {
    let public = raw.access == Some(Visibility::Public);
    if public && !(raw.tokens.is_empty() && raw.signing_keys.is_empty()) {
        return Err(AccessError::new(
            setting,
            "a public dataset takes no tokens or signing_keys (anyone may read it)",
        ));
    }
    if !public && raw.tokens.is_empty() && raw.signing_keys.is_empty() {
        return Err(AccessError::new(
            setting,
            "not public and without tokens or signing_keys: no one could read it",
        ));
    }
    let tokens = raw
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            TokenHash::parse(t).map_err(|m| AccessError::new(format!("{setting}.tokens[{i}]"), m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut keys: Vec<SigningKey> = Vec::new();
    for (i, k) in raw.signing_keys.iter().enumerate() {
        let at = format!("{setting}.signing_keys[{i}]");
        let key =
            SigningKey::from_hex(&k.id, &k.secret_hex).map_err(|m| AccessError::new(&at, m))?;
        if keys.iter().any(|other| other.id == key.id) {
            return Err(AccessError::new(
                at,
                format!("a second key with id {:?}", key.id),
            ));
        }
        keys.push(key);
    }
    let origins = match raw.cors {
        Some(origins) => origins,
        None if public => vec!["*".to_owned()],
        None => Vec::new(),
    };
    for (i, origin) in origins.iter().enumerate() {
        check_origin(origin).map_err(|m| AccessError::new(format!("{setting}.cors[{i}]"), m))?;
    }
    Ok(Policy {
        public,
        tokens,
        keys,
        cors: CorsPolicy::new(origins),
    })
}

/// `*`, or an origin as a browser sends it: `http(s)://host[:port]`, nothing after.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match host {
        Some(host)
            if !host.is_empty()
                && !host.contains(['/', '?', '#', '@', ' ', '*'])
                && origin.is_ascii() =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{origin:?} is not an origin: `*` or scheme://host[:port], as a browser's Origin header, with no path or trailing slash"
        )),
    }
}

/// `message` without the text of its quoted strings: a parser's error may quote a value
/// that is a secret written in the wrong place.
fn without_strings(message: &str) -> String {
    message
        .split('"')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
        .collect::<Vec<_>>()
        .join("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "sha256:a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e";
    const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn error_of(json: &str) -> AccessError {
        AccessConfig::parse(json).expect_err(json)
    }

    #[test]
    fn a_document_of_each_kind_of_dataset_parses() {
        let json = format!(
            r#"{{"datasets": {{
                "open": {{"access": "public"}},
                "lab": {{"tokens": ["{HASH}"], "signing_keys": [{{"id": "k1", "secret_hex": "{SECRET}"}}],
                         "cors": ["https://viewer.lab.org", "http://localhost:5173"]}}}},
                "default": {{"access": "private", "tokens": ["{HASH}"]}}}}"#
        );
        let config = AccessConfig::parse(&json).unwrap();
        let open = &config.datasets["open"];
        assert!(open.public && open.tokens.is_empty());
        assert_eq!(
            open.cors,
            CorsPolicy::new(vec!["*".into()]),
            "public: any origin by default"
        );
        let lab = &config.datasets["lab"];
        assert!(!lab.public);
        assert_eq!(lab.tokens, [TokenHash::of("s3cret-token")]);
        assert_eq!(lab.keys[0].id, "k1");
        assert_eq!(
            lab.cors.origins(),
            ["https://viewer.lab.org", "http://localhost:5173"]
        );
        let default = config.default.unwrap();
        assert!(!default.public);
        assert!(
            default.cors.origins().is_empty(),
            "not public: no origin by default"
        );
        assert!(AccessConfig::parse("{}").unwrap().datasets.is_empty());
    }

    #[test]
    fn each_mistake_names_its_setting() {
        let cases = [
            (
                r#"{"dataset": {}}"#.to_owned(),
                "dataset",
                "unknown field `dataset`",
            ),
            (
                r#"{"datasets": {"a": {"access": "public", "colour": 1}}}"#.to_owned(),
                "datasets.a.colour",
                "unknown field `colour`",
            ),
            (
                r#"{"datasets": {"a": {"access": "open"}}}"#.to_owned(),
                "datasets.a.access",
                "unknown variant",
            ),
            (
                r#"{"datasets": {"a": {"tokens": ["s3cret-token"]}}}"#.to_owned(),
                "datasets.a.tokens[0]",
                "never the token itself",
            ),
            (
                r#"{"datasets": {"a": {"tokens": ["sha256:xyz"]}}}"#.to_owned(),
                "datasets.a.tokens[0]",
                "64 hex digits",
            ),
            (
                format!(r#"{{"datasets": {{"a": {{"tokens": ["{HASH}", "{HASH}z"]}}}}}}"#),
                "datasets.a.tokens[1]",
                "64 hex digits",
            ),
            (
                r#"{"datasets": {"a": {"signing_keys": [{"id": "k1", "secret_hex": "0g"}]}}}"#
                    .to_owned(),
                "datasets.a.signing_keys[0]",
                "not hex",
            ),
            (
                r#"{"datasets": {"a": {"signing_keys": [{"id": "k1", "secret_hex": "0011"}]}}}"#
                    .to_owned(),
                "datasets.a.signing_keys[0]",
                "at least 32",
            ),
            (
                format!(
                    r#"{{"datasets": {{"a": {{"signing_keys": [{{"id": "k1", "secret_hex": "{SECRET}"}}, {{"id": "k1", "secret_hex": "{SECRET}"}}]}}}}}}"#
                ),
                "datasets.a.signing_keys[1]",
                "a second key",
            ),
            (
                r#"{"datasets": {"a": {"signing_keys": [{"id": "k1"}]}}}"#.to_owned(),
                "datasets.a.signing_keys[0]",
                "missing field `secret_hex`",
            ),
            (
                format!(r#"{{"datasets": {{"a": {{"access": "public", "tokens": ["{HASH}"]}}}}}}"#),
                "datasets.a",
                "a public dataset takes no",
            ),
            (
                r#"{"datasets": {"a": {}}}"#.to_owned(),
                "datasets.a",
                "no one could read it",
            ),
            (
                r#"{"default": {"access": "private"}}"#.to_owned(),
                "default",
                "no one could read it",
            ),
            (
                r#"{"datasets": {"a": {"access": "public", "cors": ["https://viewer.lab.org/"]}}}"#
                    .to_owned(),
                "datasets.a.cors[0]",
                "not an origin",
            ),
            (
                r#"{"datasets": {"a": {"access": "public", "cors": ["viewer.lab.org"]}}}"#
                    .to_owned(),
                "datasets.a.cors[0]",
                "not an origin",
            ),
            (
                r#"{"datasets": {"a": {"access": "public", "cors": ["*", "https://*.lab.org"]}}}"#
                    .to_owned(),
                "datasets.a.cors[1]",
                "not an origin",
            ),
            ("{\"datasets\": ".to_owned(), "datasets", "EOF"),
        ];
        let trailing = error_of(r#"{"default": {"access": "public"}} x"#);
        assert_eq!(trailing.setting, "document");
        assert!(trailing.message.contains("trailing"), "{trailing}");
        for (json, setting, why) in cases {
            let e = error_of(&json);
            assert_eq!(e.setting, setting, "{json}: {e}");
            assert!(e.message.contains(why), "{json}: {e}");
            assert!(e.to_string().contains(setting), "{e}");
        }
    }

    #[test]
    fn an_error_never_echoes_a_secret() {
        for json in [
            r#"{"datasets": {"a": {"tokens": "s3cret-token"}}}"#,
            r#"{"datasets": {"a": {"tokens": ["s3cret-token"]}}}"#,
            r#"{"datasets": {"a": {"signing_keys": [{"id": "k", "secret_hex": "s3cret-token"}]}}}"#,
            r#"{"datasets": {"a": {"signing_keys": "s3cret-token"}}}"#,
        ] {
            let e = error_of(json);
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }
}
