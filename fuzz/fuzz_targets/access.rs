//! The access rules: an access configuration's parser, and a request's credentials (its
//! `Authorization` header and signed-URL query) checked against a fixed configuration. The
//! first byte chooses; for a check, the rest is `PATH \n QUERY \n AUTHORIZATION`.
#![no_main]

use std::sync::OnceLock;

use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use pocaduck_edge_proxy::access::{Access, AccessConfig, Credentials};

/// The time of every check, before the seeds' expiry (1700003600).
const NOW: u64 = 1_700_000_000;

/// A public dataset and a private one with a token hash and a signing key (the key of
/// docs/security.md's worked example).
fn access() -> &'static Access {
    static ACCESS: OnceLock<Access> = OnceLock::new();
    ACCESS.get_or_init(|| {
        let config = AccessConfig::parse(
            r#"{"datasets": {
                "open-ds": {"access": "public"},
                "secret-ds": {
                    "tokens": ["sha256:a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e"],
                    "signing_keys": [{"id": "k1", "secret_hex": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}]
                }
            }}"#,
        )
        .expect("a valid configuration");
        Access::guarded(config, &["open-ds", "secret-ds"]).expect("both datasets are served")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if which % 2 == 0 {
        drop(AccessConfig::parse(text));
        return;
    }
    let mut parts = text.splitn(3, '\n');
    let (path, query, authorization) = (
        parts.next().unwrap_or_default(),
        parts.next().filter(|q| !q.is_empty()),
        parts.next(),
    );
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization.and_then(|a| HeaderValue::from_str(a).ok()) {
        headers.insert(AUTHORIZATION, value);
    }
    let credentials = Credentials::of(&headers, query);
    // A public dataset is read by anyone; a private one never without a credential.
    assert!(access().check("open-ds", path, &credentials, NOW).is_ok());
    let secret = access().check("secret-ds", path, &credentials, NOW);
    if query.is_none() && authorization.is_none() {
        assert_eq!(secret.map_err(|e| e.status.as_u16()), Err(401));
    }
    drop(access().check("not-served", path, &credentials, NOW));
});
