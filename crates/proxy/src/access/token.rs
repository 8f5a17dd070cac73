//! Bearer tokens, kept only as their SHA-256 hashes (`sha256:<64 hex digits>`) and compared
//! in constant time.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// How a token's hash is written in the access configuration: `sha256:` and 64 hex digits.
pub const HASH_PREFIX: &str = "sha256:";

/// The SHA-256 hash of a bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(&Sha256::digest(token.as_bytes()));
        Self(out)
    }

    /// Reads `sha256:<64 hex digits>`; the error says what is wrong, never echoing `text`
    /// (it may be a token written where its hash belongs).
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(hex_digits) = text.strip_prefix(HASH_PREFIX) else {
            return Err(format!(
                "not a token hash: expected {HASH_PREFIX}<64 hex digits> (the output of \
                 `pocaduck-edge access hash-token`), never the token itself"
            ));
        };
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut out).map_err(|e| {
            format!("{HASH_PREFIX} must be followed by 64 hex digits of a SHA-256 hash: {e}")
        })?;
        Ok(Self(out))
    }

    /// Whether any of `hashes` is this hash, comparing every one in constant time.
    pub fn is_among(&self, hashes: &[TokenHash]) -> bool {
        hashes
            .iter()
            .fold(Choice::from(0), |found, h| found | h.0.ct_eq(&self.0))
            .into()
    }
}

impl std::fmt::Display for TokenHash {
    /// As the access configuration writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{HASH_PREFIX}{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf %s s3cret-token | openssl dgst -sha256` (and Python's `hashlib.sha256`).
    const S3CRET_TOKEN: &str =
        "sha256:a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e";

    #[test]
    fn a_token_hashes_as_openssl_hashes_it() {
        assert_eq!(TokenHash::of("s3cret-token").to_string(), S3CRET_TOKEN);
        assert_eq!(
            TokenHash::parse(S3CRET_TOKEN).unwrap(),
            TokenHash::of("s3cret-token")
        );
    }

    #[test]
    fn only_the_hashed_token_matches() {
        let stored = [
            TokenHash::of("other"),
            TokenHash::parse(S3CRET_TOKEN).unwrap(),
        ];
        assert!(TokenHash::of("s3cret-token").is_among(&stored));
        for wrong in ["s3cret-toke", "s3cret-token ", "", "S3CRET-TOKEN"] {
            assert!(!TokenHash::of(wrong).is_among(&stored), "{wrong:?}");
        }
        assert!(!TokenHash::of("s3cret-token").is_among(&[]));
    }

    #[test]
    fn a_plain_token_or_bad_hex_is_refused_without_echoing_it() {
        let plain = TokenHash::parse("s3cret-token").unwrap_err();
        assert!(plain.contains("never the token itself"), "{plain}");
        assert!(!plain.contains("s3cret"), "{plain}");
        for bad in [
            "sha256:",
            "sha256:abc",
            &format!("{}0", S3CRET_TOKEN),
            &S3CRET_TOKEN.replace('a', "g"),
        ] {
            let e = TokenHash::parse(bad).unwrap_err();
            assert!(e.contains("64 hex digits"), "{bad}: {e}");
        }
    }
}
