//! Signed URLs (docs/security.md, "Signed URLs"): an HMAC-SHA256, keyed by one of a
//! dataset's signing keys, over a request's path and query, valid until an expiry.
//!
//! The signed message is `scope + "\n" + canonical query`. Without `prefix`, the scope is
//! the request's path as sent and the canonical query holds every parameter but `sig`; with
//! `prefix`, the scope is the prefix, which covers every path starting with it, and the
//! canonical query holds `expires`, `kid` and `prefix` alone. A canonical query is the
//! parameters as `key=value`, each side decoded then percent-encoded anew (all but RFC 3986's
//! unreserved characters, as `%XX` in upper case), sorted bytewise and joined by `&`. The
//! signature is sent base64url-encoded without padding. Times are passed in.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

/// The parameter holding the expiry, in seconds since the Unix epoch.
pub const EXPIRES: &str = "expires";
/// The parameter naming the signing key.
pub const KEY_ID: &str = "kid";
/// The parameter holding a signed path prefix.
pub const PREFIX: &str = "prefix";
/// The parameter holding the signature.
pub const SIG: &str = "sig";
/// Every parameter of a signed URL: reserved, never an option of a route.
pub const PARAMS: [&str; 4] = [EXPIRES, KEY_ID, PREFIX, SIG];
/// The shortest signing key, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// What a canonical query leaves unencoded: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A key signing a dataset's URLs, named by its id.
#[derive(Clone)]
pub struct SigningKey {
    /// The id a signed URL names it by (`kid`).
    pub id: String,
    secret: Vec<u8>,
}

impl SigningKey {
    /// The key `id` of secret `secret_hex` (at least [`MIN_KEY_BYTES`] bytes, in hex); the
    /// error never echoes the secret.
    pub fn from_hex(id: &str, secret_hex: &str) -> Result<Self, String> {
        if id.is_empty() {
            return Err("a signing key needs a non-empty id".into());
        }
        let secret =
            hex::decode(secret_hex).map_err(|e| format!("the secret is not hex digits: {e}"))?;
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the secret has {} bytes; a signing key has at least {MIN_KEY_BYTES} (e.g. `openssl rand -hex 32`)",
                secret.len()
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            secret,
        })
    }

    /// The MAC of `scope` and `canonical`, the two parts of a signed message.
    fn mac(&self, scope: &str, canonical: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        mac.update(canonical.as_bytes());
        mac
    }

    /// The signature of `scope` and `canonical`, base64url without padding.
    pub fn sign(&self, scope: &str, canonical: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(scope, canonical).finalize().into_bytes())
    }
}

impl std::fmt::Debug for SigningKey {
    /// The id alone: the secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A signed URL's parameters, read from a request's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Seconds since the Unix epoch from which the URL is refused.
    pub expires: u64,
    /// The id of the key that signed it.
    pub key_id: String,
    /// The signed path prefix, if the URL covers several paths.
    pub prefix: Option<String>,
    sig: Vec<u8>,
    canonical: String,
}

/// What a request's query says of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedQuery {
    /// No parameter of a signed URL.
    Absent,
    /// A signed URL's parameters, well formed.
    Present(Signature),
    /// Some of them, malformed: why.
    Malformed(String),
}

/// A signature checked against a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the key it names, for this path, and not expired.
    Valid,
    /// Signed as it says, but expired.
    Expired,
    /// Not valid for this request: why, in terms that say nothing of the dataset.
    Invalid(&'static str),
}

/// The canonical form of a query's `pairs` (decoded keys and values).
pub fn canonical_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut encoded: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, UNRESERVED),
                utf8_percent_encode(v, UNRESERVED)
            )
        })
        .collect();
    encoded.sort_unstable();
    encoded.join("&")
}

/// Whether `prefix` covers `path`: `path` starts with it, or is it without its final `/`.
pub fn covers(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix) || prefix.strip_suffix('/') == Some(path)
}

/// The signed URL parameters of `query`.
pub fn read(query: Option<&str>) -> SignedQuery {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut found: [Option<&str>; 4] = [None; 4];
    for (k, v) in &pairs {
        if let Some(i) = PARAMS.iter().position(|p| p == k) {
            if found[i].is_some() {
                return SignedQuery::Malformed(format!("{k} is given twice"));
            }
            found[i] = Some(v.as_str());
        }
    }
    let [expires, key_id, prefix, sig] = found;
    if found.iter().all(Option::is_none) {
        return SignedQuery::Absent;
    }
    let (Some(expires), Some(key_id), Some(sig)) = (expires, key_id, sig) else {
        return SignedQuery::Malformed(format!(
            "a signed URL carries {EXPIRES}, {KEY_ID} and {SIG} (and {PREFIX} to cover several paths)"
        ));
    };
    let Ok(expires) = expires.parse::<u64>() else {
        return SignedQuery::Malformed(format!("{EXPIRES} must be seconds since the Unix epoch"));
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return SignedQuery::Malformed(format!("{SIG} must be base64url without padding"));
    };
    let canonical = match prefix {
        Some(_) => canonical_query(
            pairs
                .iter()
                .filter(|(k, _)| [EXPIRES, KEY_ID, PREFIX].contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        None => canonical_query(
            pairs
                .iter()
                .filter(|(k, _)| k != SIG)
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ),
    };
    SignedQuery::Present(Signature {
        expires,
        key_id: key_id.to_owned(),
        prefix: prefix.map(str::to_owned),
        sig,
        canonical,
    })
}

impl Signature {
    /// Whether this signature, by one of `keys`, grants a request for `path` at
    /// `now_unix` (seconds since the Unix epoch). The MAC is compared in constant time, and
    /// computed even when no key has the id, so neither answer nor timing tells which
    /// key ids a dataset has.
    pub fn check(&self, path: &str, keys: &[SigningKey], now_unix: u64) -> Verdict {
        let scope = match &self.prefix {
            Some(prefix) if !covers(prefix, path) => {
                return Verdict::Invalid("the signed prefix does not cover this path")
            }
            Some(prefix) => prefix.as_str(),
            None => path,
        };
        let unknown = SigningKey {
            id: String::new(),
            secret: vec![0; MIN_KEY_BYTES],
        };
        let (key, known) = match keys.iter().find(|k| k.id == self.key_id) {
            Some(key) => (key, true),
            None => (&unknown, false),
        };
        let matches = key
            .mac(scope, &self.canonical)
            .verify_slice(&self.sig)
            .is_ok();
        if !(known && matches) {
            Verdict::Invalid("the signature is not valid for this path")
        } else if now_unix >= self.expires {
            Verdict::Expired
        } else {
            Verdict::Valid
        }
    }
}

/// `query` without a signed URL's parameters (the route's own options), as given when it
/// has none.
pub fn without_signature(query: Option<&str>) -> Option<Cow<'_, str>> {
    let query = query?;
    let pairs = form_urlencoded::parse(query.as_bytes());
    if !pairs.clone().any(|(k, _)| PARAMS.contains(&k.as_ref())) {
        return Some(Cow::Borrowed(query));
    }
    let mut rest = form_urlencoded::Serializer::new(String::new());
    rest.extend_pairs(pairs.filter(|(k, _)| !PARAMS.contains(&k.as_ref())));
    Some(Cow::Owned(rest.finish()))
}

/// Signs a URL of `path` and `query` (the route's options, if any) with `key`, valid until
/// `expires` (seconds since the Unix epoch), for `path` alone or, with `prefix`, for every
/// path it covers: the whole query to send, `query`'s parameters first.
pub fn sign_query(
    key: &SigningKey,
    path: &str,
    query: Option<&str>,
    prefix: Option<&str>,
    expires: u64,
) -> Result<String, String> {
    let query = query.filter(|q| !q.is_empty());
    let given: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some((k, _)) = given.iter().find(|(k, _)| PARAMS.contains(&k.as_str())) {
        return Err(format!("the URL already has a {k} parameter"));
    }
    if let Some(prefix) = prefix {
        if !covers(prefix, path) {
            return Err(format!(
                "prefix {prefix:?} does not cover the path {path:?}"
            ));
        }
    }
    let expires = expires.to_string();
    let mut auth: Vec<(&str, &str)> = vec![(EXPIRES, &expires), (KEY_ID, &key.id)];
    let (scope, canonical) = match prefix {
        Some(prefix) => {
            auth.push((PREFIX, prefix));
            (prefix, canonical_query(auth.iter().copied()))
        }
        None => (
            path,
            canonical_query(
                given
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .chain(auth.iter().copied()),
            ),
        ),
    };
    let sig = key.sign(scope, &canonical);
    auth.push((SIG, &sig));
    let added = auth
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, UNRESERVED)))
        .collect::<Vec<_>>()
        .join("&");
    Ok(match query {
        Some(q) => format!("{q}&{added}"),
        None => added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the vectors: bytes 0, 1, …, 31.
    fn key() -> SigningKey {
        SigningKey::from_hex(
            "k1",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        )
        .unwrap()
    }

    const PATH: &str = "/v1/datasets/secret-ds/labels/5/points";
    const EXPIRY: u64 = 1_700_003_600;

    /// Computed with Python's standard library alone (docs/security.md's `sign_url`):
    /// `sign_url(bytes(range(32)).hex(), "k1", PATH, 1700003600,
    /// params=[("format", "npy"), ("bbox", "0,0,0,10,10,10")])`.
    const EXACT: &str = "format=npy&bbox=0%2C0%2C0%2C10%2C10%2C10&expires=1700003600&kid=k1&sig=JMRiuVnFwxlAb6pXS2OfGIrTGYBdNFOFNbhpLPoq87Q";
    /// `sign_url(…, "k1", "/v1/datasets/secret-ds/labels", 1700003600,
    /// prefix="/v1/datasets/secret-ds/")`.
    const PREFIXED: &str = "expires=1700003600&kid=k1&prefix=%2Fv1%2Fdatasets%2Fsecret-ds%2F&sig=nBm-Wx102_Td2XHNEfNGafivqw8X8rSig26_7BeBQP4";

    fn signature(query: &str) -> Signature {
        match read(Some(query)) {
            SignedQuery::Present(s) => s,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn a_url_signed_by_python_is_valid_until_it_expires() {
        let s = signature(EXACT);
        assert_eq!(s.check(PATH, &[key()], EXPIRY - 1), Verdict::Valid);
        assert_eq!(s.check(PATH, &[key()], EXPIRY), Verdict::Expired);
        assert_eq!(s.check(PATH, &[key()], EXPIRY + 86_400), Verdict::Expired);
    }

    #[test]
    fn a_prefix_signed_by_python_covers_the_paths_below_it() {
        let s = signature(PREFIXED);
        let now = EXPIRY - 60;
        for path in [
            "/v1/datasets/secret-ds/labels",
            "/v1/datasets/secret-ds",
            "/v1/datasets/secret-ds/labels/5/points",
            "/v1/datasets/secret-ds/files/manifest.json",
        ] {
            assert_eq!(s.check(path, &[key()], now), Verdict::Valid, "{path}");
        }
        // Other options beside the signed parameters are not signed: any may be added.
        let with_options = signature(&format!("format=npy&limit=10&{PREFIXED}"));
        assert_eq!(with_options.check(PATH, &[key()], now), Verdict::Valid);
        for path in [
            "/v1/datasets/secret-ds2/labels",
            "/v1/datasets",
            "/v1/datasets/other",
        ] {
            assert_eq!(
                s.check(path, &[key()], now),
                Verdict::Invalid("the signed prefix does not cover this path"),
                "{path}"
            );
        }
    }

    #[test]
    fn minting_gives_the_python_vectors() {
        let exact = sign_query(
            &key(),
            PATH,
            Some("format=npy&bbox=0%2C0%2C0%2C10%2C10%2C10"),
            None,
            EXPIRY,
        )
        .unwrap();
        assert_eq!(exact, EXACT);
        let prefixed = sign_query(
            &key(),
            "/v1/datasets/secret-ds/labels",
            None,
            Some("/v1/datasets/secret-ds/"),
            EXPIRY,
        )
        .unwrap();
        assert_eq!(prefixed, PREFIXED);
        assert!(sign_query(&key(), PATH, Some("sig=x"), None, EXPIRY).is_err());
        assert!(sign_query(&key(), PATH, None, Some("/v1/datasets/other/"), EXPIRY).is_err());
    }

    #[test]
    fn any_change_to_a_signed_part_invalidates_the_url() {
        let now = EXPIRY - 60;
        let invalid = Verdict::Invalid("the signature is not valid for this path");
        let tampered = [
            EXACT.replace("format=npy", "format=json"),
            EXACT.replace("1700003600", "1700007200"),
            EXACT.replace("bbox=0%2C0", "bbox=1%2C0"),
            format!("limit=5&{EXACT}"),
            EXACT.replace("sig=J", "sig=K"),
        ];
        for query in &tampered {
            assert_eq!(
                signature(query).check(PATH, &[key()], now),
                invalid,
                "{query}"
            );
        }
        let s = signature(EXACT);
        assert_eq!(
            s.check("/v1/datasets/secret-ds/labels/6/points", &[key()], now),
            invalid
        );
        let other = SigningKey::from_hex("k1", &"ab".repeat(32)).unwrap();
        assert_eq!(s.check(PATH, &[other], now), invalid);
        let renamed =
            SigningKey::from_hex("k2", &hex::encode((0..32).collect::<Vec<u8>>())).unwrap();
        assert_eq!(s.check(PATH, &[renamed], now), invalid);
        assert_eq!(s.check(PATH, &[], now), invalid);
        // An expired URL with a wrong signature is invalid, not merely expired.
        assert_eq!(
            signature(&EXACT.replace("sig=J", "sig=K")).check(PATH, &[key()], EXPIRY + 1),
            invalid
        );
    }

    #[test]
    fn the_query_order_and_encoding_do_not_matter() {
        // The same parameters, reordered and encoded otherwise (`,` as is, `+`-free).
        let reordered = "kid=k1&sig=JMRiuVnFwxlAb6pXS2OfGIrTGYBdNFOFNbhpLPoq87Q&bbox=0,0,0,10,10,10&expires=1700003600&format=npy";
        assert_eq!(
            signature(reordered).check(PATH, &[key()], 0),
            Verdict::Valid
        );
        assert_eq!(
            canonical_query([("b", "x y"), ("a", "/~*"), ("a-", "é")]),
            "a-=%C3%A9&a=%2F~%2A&b=x%20y"
        );
    }

    #[test]
    fn malformed_parameters_say_what_is_wrong() {
        assert_eq!(read(None), SignedQuery::Absent);
        assert_eq!(read(Some("format=npy&limit=3")), SignedQuery::Absent);
        let cases = [
            ("sig=abc", "carries expires, kid and sig"),
            ("expires=1&kid=k1", "carries expires, kid and sig"),
            (
                "expires=soon&kid=k1&sig=abc",
                "seconds since the Unix epoch",
            ),
            ("expires=-1&kid=k1&sig=abc", "seconds since the Unix epoch"),
            ("expires=1&kid=k1&sig=a+b/c=", "base64url"),
            ("expires=1&kid=k1&sig=abc&sig=abc", "sig is given twice"),
        ];
        for (query, why) in cases {
            match read(Some(query)) {
                SignedQuery::Malformed(m) => assert!(m.contains(why), "{query}: {m}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn keys_are_long_hex_secrets_never_shown() {
        assert!(SigningKey::from_hex("k", &"00".repeat(31))
            .unwrap_err()
            .contains("at least 32"));
        assert!(SigningKey::from_hex("k", "zz").unwrap_err().contains("hex"));
        assert!(SigningKey::from_hex("", &"00".repeat(32)).is_err());
        let shown = format!("{:?}", key());
        assert!(shown.contains("k1") && !shown.contains("secret"), "{shown}");
    }

    #[test]
    fn the_routes_options_are_the_query_without_the_signature() {
        assert_eq!(without_signature(None), None);
        assert_eq!(
            without_signature(Some("format=npy&limit=3")).as_deref(),
            Some("format=npy&limit=3")
        );
        assert_eq!(
            without_signature(Some(EXACT)).as_deref(),
            Some("format=npy&bbox=0%2C0%2C0%2C10%2C10%2C10")
        );
        assert_eq!(without_signature(Some(PREFIXED)).as_deref(), Some(""));
    }
}
