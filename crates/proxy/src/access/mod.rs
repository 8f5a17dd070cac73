//! Who may read which dataset, and which origins' scripts may see it (docs/security.md).
//!
//! An [`Access`] is either open (every dataset public, one CORS allowlist: a service with no
//! access configuration) or guarded by an [`AccessConfig`] bound to the served datasets:
//! each dataset public, or readable with a bearer token whose hash it lists ([`token`]) or
//! a URL signed by one of its keys ([`signed`]), with its own CORS allowlist.
//!
//! A guarded service answers a dataset it does not serve as it answers one the caller may
//! not read (401 without a credential, 403 with one), so names can only be learnt from
//! the listing, which shows a caller only what it may read.

pub mod config;
pub mod signed;
pub mod token;

use std::collections::HashMap;

use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};

use crate::cors::CorsPolicy;
use crate::error::ApiError;
pub use config::{AccessConfig, AccessError, Policy};
use signed::{SignedQuery, Verdict};
use token::TokenHash;

/// The challenge of a 401 answer.
pub const CHALLENGE: &str = "Bearer realm=\"pocaduck-edge\"";

/// Who may read each dataset, and the CORS of each answer.
#[derive(Debug, Clone)]
pub struct Access(Rule);

#[derive(Debug, Clone)]
enum Rule {
    /// Every dataset public, every answer under one allowlist.
    Open(CorsPolicy),
    /// A policy per served dataset; `shared` is the union of their origins, the CORS of
    /// answers not about one readable dataset.
    Guarded {
        policies: HashMap<String, Policy>,
        shared: CorsPolicy,
    },
}

/// The credentials a request carries, never shown (no `Debug`).
pub struct Credentials {
    bearer: Bearer,
    signed: SignedQuery,
}

/// What a request's `Authorization` header holds.
enum Bearer {
    Absent,
    Token(String),
    /// Not `Bearer <token>`.
    Malformed,
}

impl Credentials {
    /// The credentials of a request with `headers` and `query`.
    pub fn of(headers: &HeaderMap, query: Option<&str>) -> Self {
        let bearer = match headers.get(AUTHORIZATION) {
            None => Bearer::Absent,
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, token)| {
                    scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
                })
                .map_or(Bearer::Malformed, |(_, token)| {
                    Bearer::Token(token.trim().to_owned())
                }),
        };
        Self {
            bearer,
            signed: signed::read(query),
        }
    }

    /// Whether the request carries no credential at all.
    fn is_absent(&self) -> bool {
        matches!(self.bearer, Bearer::Absent) && self.signed == SignedQuery::Absent
    }
}

impl Access {
    /// Every dataset public, every answer's CORS `cors`: a service without an access
    /// configuration.
    pub fn open(cors: CorsPolicy) -> Self {
        Self(Rule::Open(cors))
    }

    /// `config` over the datasets named `served`: each named dataset must be served, and
    /// each served one named or covered by the default.
    pub fn guarded(config: AccessConfig, served: &[&str]) -> Result<Self, AccessError> {
        if let Some(name) = config
            .datasets
            .keys()
            .find(|n| !served.contains(&n.as_str()))
        {
            return Err(AccessError::new(
                format!("datasets.{name}"),
                format!(
                    "no dataset of that name is served (served: {})",
                    served.join(", ")
                ),
            ));
        }
        let mut policies = HashMap::new();
        for name in served {
            let policy = match (config.datasets.get(*name), &config.default) {
                (Some(policy), _) | (None, Some(policy)) => policy.clone(),
                (None, None) => {
                    return Err(AccessError::new(
                        "default",
                        format!(
                            "dataset {name} is served but not named under datasets, and there is no default"
                        ),
                    ))
                }
            };
            policies.insert((*name).to_owned(), policy);
        }
        let mut origins: Vec<String> = Vec::new();
        for origin in policies.values().flat_map(|p| p.cors.origins()) {
            if !origins.contains(origin) {
                origins.push(origin.clone());
            }
        }
        origins.sort();
        Ok(Self(Rule::Guarded {
            policies,
            shared: CorsPolicy::new(origins),
        }))
    }

    /// Whether a request for `path`, of dataset `dataset`, with `credentials`, may read it
    /// at `now_unix` (seconds since the Unix epoch): if not, 401 without a credential and
    /// 403 with one, whether or not the dataset exists.
    pub fn check(
        &self,
        dataset: &str,
        path: &str,
        credentials: &Credentials,
        now_unix: u64,
    ) -> Result<(), ApiError> {
        let Rule::Guarded { policies, .. } = &self.0 else {
            return Ok(());
        };
        let policy = policies.get(dataset);
        if policy.is_some_and(|p| p.public) {
            return Ok(());
        }
        if credentials.is_absent() {
            return Err(ApiError::unauthorized(format!(
                "dataset {dataset} needs a credential: a bearer token (Authorization: Bearer …) or a signed URL"
            ))
            .with_header(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE)));
        }
        let (tokens, keys) = policy.map_or((&[][..], &[][..]), |p| (&p.tokens[..], &p.keys[..]));
        let mut why: Option<String> = None;
        match &credentials.bearer {
            Bearer::Token(token) if TokenHash::of(token).is_among(tokens) => return Ok(()),
            Bearer::Token(_) => why = Some("the bearer token does not grant it".into()),
            Bearer::Malformed => {
                why = Some("the Authorization header is not `Bearer <token>`".into())
            }
            Bearer::Absent => {}
        }
        match &credentials.signed {
            SignedQuery::Present(signature) => match signature.check(path, keys, now_unix) {
                Verdict::Valid => return Ok(()),
                Verdict::Expired => {
                    why = Some(format!(
                        "the signed URL expired at {} (seconds since the Unix epoch)",
                        signature.expires
                    ))
                }
                Verdict::Invalid(m) => why = Some(why.map_or(m.into(), |w| format!("{w}; {m}"))),
            },
            SignedQuery::Malformed(m) => why = Some(why.map_or(m.clone(), |w| format!("{w}; {m}"))),
            SignedQuery::Absent => {}
        }
        Err(ApiError::forbidden(format!(
            "access to dataset {dataset} is refused: {}",
            why.unwrap_or_default()
        )))
    }

    /// Keeps an answer about `dataset` out of shared caches unless the dataset is public:
    /// a `Cache-Control: public` becomes `private` (a shared cache may otherwise keep an
    /// answer to an authorized request and hand it to anyone).
    pub fn restrict_caching(&self, dataset: Option<&str>, headers: &mut HeaderMap) {
        let Rule::Guarded { policies, .. } = &self.0 else {
            return;
        };
        if dataset
            .and_then(|d| policies.get(d))
            .is_some_and(|p| p.public)
        {
            return;
        }
        let Some(value) = headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()) else {
            return;
        };
        if let Some(rest) = value.strip_prefix("public") {
            if let Ok(private) = HeaderValue::from_str(&format!("private{rest}")) {
                headers.insert(CACHE_CONTROL, private);
            }
        }
    }

    /// The CORS allowlist of an answer about `dataset` (none for the listing and other
    /// routes), `granted` when the caller may read it: the dataset's own when granted, else
    /// (refusals, preflights, the listing) the union of every dataset's, so that no
    /// answer's CORS tells a dataset that exists from one that does not.
    pub fn cors(&self, dataset: Option<&str>, granted: bool) -> &CorsPolicy {
        match &self.0 {
            Rule::Open(cors) => cors,
            Rule::Guarded { policies, shared } => match dataset.and_then(|d| policies.get(d)) {
                Some(policy) if granted => &policy.cors,
                _ => shared,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    const HASH: &str = "sha256:a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e";
    const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    /// The prefix vector of [`signed`]'s tests (Python-signed), for `/v1/datasets/secret-ds/`.
    const PREFIXED: &str = "expires=1700003600&kid=k1&prefix=%2Fv1%2Fdatasets%2Fsecret-ds%2F&sig=nBm-Wx102_Td2XHNEfNGafivqw8X8rSig26_7BeBQP4";
    const NOW: u64 = 1_700_000_000;

    fn access() -> Access {
        let json = format!(
            r#"{{"datasets": {{
                "open": {{"access": "public"}},
                "secret-ds": {{"tokens": ["{HASH}"], "signing_keys": [{{"id": "k1", "secret_hex": "{SECRET}"}}],
                               "cors": ["https://viewer.lab.org"]}}}},
                "default": {{"tokens": ["{HASH}"], "cors": ["https://other.lab.org"]}}}}"#
        );
        Access::guarded(
            AccessConfig::parse(&json).unwrap(),
            &["open", "secret-ds", "unnamed"],
        )
        .unwrap()
    }

    fn credentials(authorization: Option<&str>, query: Option<&str>) -> Credentials {
        let mut headers = HeaderMap::new();
        if let Some(a) = authorization {
            headers.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        Credentials::of(&headers, query)
    }

    fn status(dataset: &str, path: &str, c: &Credentials) -> u16 {
        match access().check(dataset, path, c, NOW) {
            Ok(()) => 200,
            Err(e) => e.status.as_u16(),
        }
    }

    #[test]
    fn public_datasets_need_nothing_and_others_a_credential() {
        let anonymous = credentials(None, None);
        assert_eq!(status("open", "/v1/datasets/open", &anonymous), 200);
        let refused = access()
            .check("secret-ds", "/v1/datasets/secret-ds", &anonymous, NOW)
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused.code, "unauthorized");
        assert_eq!(
            refused.headers,
            [(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE))]
        );
        assert_eq!(status("unnamed", "/v1/datasets/unnamed", &anonymous), 401);
    }

    #[test]
    fn a_hashed_token_or_a_signed_url_grants_its_dataset() {
        let token = credentials(Some("Bearer s3cret-token"), None);
        assert_eq!(
            status("secret-ds", "/v1/datasets/secret-ds/labels", &token),
            200
        );
        assert_eq!(
            status("unnamed", "/v1/datasets/unnamed/labels", &token),
            200
        );
        let lower = credentials(Some("bearer s3cret-token"), None);
        assert_eq!(status("secret-ds", "/v1/datasets/secret-ds", &lower), 200);
        let signed = credentials(None, Some(PREFIXED));
        let path = "/v1/datasets/secret-ds/labels/5/points";
        assert_eq!(status("secret-ds", path, &signed), 200);
        // The key is secret-ds's alone: the same URL grants no other dataset.
        assert_eq!(
            status("unnamed", "/v1/datasets/secret-ds/labels", &signed),
            403
        );
        // A wrong token beside a valid signature: the signature grants.
        let both = credentials(Some("Bearer wrong"), Some(PREFIXED));
        assert_eq!(status("secret-ds", path, &both), 200);
    }

    #[test]
    fn a_wrong_or_expired_credential_is_403_saying_why() {
        let cases = [
            (
                Some("Bearer wrong"),
                None,
                "the bearer token does not grant it",
            ),
            (Some("Basic czNjcmV0"), None, "not `Bearer <token>`"),
            (Some("Bearer "), None, "not `Bearer <token>`"),
            (None, Some("sig=abc"), "carries expires, kid and sig"),
            (
                None,
                Some(&PREFIXED.replace("sig=n", "sig=m")[..]),
                "not valid for this path",
            ),
        ];
        for (authorization, query, why) in cases {
            let e = access()
                .check(
                    "secret-ds",
                    "/v1/datasets/secret-ds",
                    &credentials(authorization, query),
                    NOW,
                )
                .unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{why}"
            );
            assert!(e.message.contains(why), "{}", e.message);
            assert!(
                !e.message.contains("s3cret") && !e.message.contains("czNjcmV0"),
                "{}",
                e.message
            );
        }
        let expired = access()
            .check(
                "secret-ds",
                "/v1/datasets/secret-ds",
                &credentials(None, Some(PREFIXED)),
                1_700_003_600,
            )
            .unwrap_err();
        assert_eq!(expired.status, StatusCode::FORBIDDEN);
        assert!(
            expired.message.contains("expired at 1700003600"),
            "{}",
            expired.message
        );
    }

    #[test]
    fn a_dataset_not_served_answers_as_one_not_readable() {
        for (authorization, query) in [
            (None, None),
            (Some("Bearer s3cret-token"), None),
            (Some("Bearer wrong"), None),
        ] {
            let c = credentials(authorization, query);
            let missing = access()
                .check("nope", "/v1/datasets/nope", &c, NOW)
                .unwrap_err();
            let hidden = access()
                .check(
                    "secret-ds",
                    "/v1/datasets/secret-ds",
                    &credentials(authorization.map(|_| "Bearer wrong"), query),
                    NOW,
                )
                .unwrap_err();
            assert_eq!(missing.status, hidden.status);
            assert_eq!(
                missing.message.replace("nope", "X"),
                hidden.message.replace("secret-ds", "X")
            );
            assert_eq!(missing.headers, hidden.headers);
        }
    }

    #[test]
    fn cors_is_the_datasets_own_once_granted_else_the_union() {
        let a = access();
        assert_eq!(
            a.cors(Some("secret-ds"), true).origins(),
            ["https://viewer.lab.org"]
        );
        assert_eq!(
            a.cors(Some("unnamed"), true).origins(),
            ["https://other.lab.org"]
        );
        assert_eq!(a.cors(Some("open"), true).origins(), ["*"]);
        let union = ["*", "https://other.lab.org", "https://viewer.lab.org"];
        assert_eq!(a.cors(Some("secret-ds"), false).origins(), union);
        assert_eq!(a.cors(Some("nope"), false).origins(), union);
        assert_eq!(a.cors(None, true).origins(), union);
        let open = Access::open(CorsPolicy::new(vec!["https://x.org".into()]));
        assert_eq!(open.cors(Some("any"), false).origins(), ["https://x.org"]);
        assert!(open
            .check("any", "/v1/datasets/any", &credentials(None, None), NOW)
            .is_ok());
    }

    #[test]
    fn only_public_datasets_answers_may_be_kept_by_shared_caches() {
        let cached = |access: &Access, dataset: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            access.restrict_caching(Some(dataset), &mut headers);
            headers[CACHE_CONTROL].to_str().unwrap().to_owned()
        };
        assert_eq!(cached(&access(), "secret-ds"), "private, max-age=3600");
        assert_eq!(cached(&access(), "unnamed"), "private, max-age=3600");
        assert_eq!(cached(&access(), "open"), "public, max-age=3600");
        let open = Access::open(CorsPolicy::new(vec!["*".into()]));
        assert_eq!(cached(&open, "any"), "public, max-age=3600");
    }

    #[test]
    fn a_config_must_match_the_served_datasets() {
        let config = |json: &str| AccessConfig::parse(json).unwrap();
        let extra = Access::guarded(
            config(r#"{"datasets": {"gone": {"access": "public"}}}"#),
            &["a"],
        )
        .unwrap_err();
        assert_eq!(extra.setting, "datasets.gone");
        assert!(
            extra
                .message
                .contains("no dataset of that name is served (served: a)"),
            "{extra}"
        );
        let unnamed = Access::guarded(
            config(r#"{"datasets": {"a": {"access": "public"}}}"#),
            &["a", "b"],
        )
        .unwrap_err();
        assert_eq!(unnamed.setting, "default");
        assert!(
            unnamed
                .message
                .contains("dataset b is served but not named"),
            "{unnamed}"
        );
        assert!(
            Access::guarded(config(r#"{"default": {"access": "public"}}"#), &["a", "b"]).is_ok()
        );
    }
}
