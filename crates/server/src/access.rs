//! `pocaduck-edge access`: the operator's helpers for the access configuration
//! (docs/security.md): a bearer token's hash for its `tokens`, and a signed URL.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use pocaduck_edge_proxy::access::signed::{sign_query, SigningKey};
use pocaduck_edge_proxy::access::token::TokenHash;

/// The shortest token `hash-token` accepts: a shorter one could be guessed.
const MIN_TOKEN_CHARS: usize = 16;

/// What `pocaduck-edge access` does.
#[derive(clap::Subcommand)]
pub(crate) enum AccessCommand {
    /// Read a bearer token from stdin (one line) and print its hash, `sha256:<hex>`, for a
    /// dataset's `tokens` in the access configuration.
    HashToken,
    /// Print URL with a signature by a dataset's key (`signing_keys`), valid for
    /// --expires-in seconds: for URL's path and options alone, or with --prefix for every
    /// path starting with the prefix.
    SignUrl {
        /// The URL to grant, e.g. http://127.0.0.1:8080/v1/datasets/NAME/labels/5/points?format=npy.
        url: String,
        /// The key's `id` in the access configuration.
        #[arg(long)]
        key_id: String,
        /// The key's `secret_hex` (or the environment variable, to keep it out of shell
        /// history).
        #[arg(long, env = "POCADUCK_EDGE_SIGNING_SECRET", hide_env_values = true)]
        secret_hex: String,
        /// Seconds from now until the URL is refused.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
        expires_in: u64,
        /// Grant every path starting with this (e.g. /v1/datasets/NAME/, which covers
        /// /v1/datasets/NAME too), whatever its options: one URL for a client that reads a
        /// whole dataset.
        #[arg(long)]
        prefix: Option<String>,
    },
}

/// Runs `command`, printing its answer on stdout.
pub(crate) fn run(command: AccessCommand) -> anyhow::Result<()> {
    match command {
        AccessCommand::HashToken => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("reading the token from stdin")?;
            println!("{}", TokenHash::of(token_line(&input)?));
            Ok(())
        }
        AccessCommand::SignUrl {
            url,
            key_id,
            secret_hex,
            expires_in,
            prefix,
        } => {
            let key = SigningKey::from_hex(&key_id, &secret_hex).map_err(|e| {
                anyhow::anyhow!("--secret-hex (or $POCADUCK_EDGE_SIGNING_SECRET): {e}")
            })?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("the system clock is before 1970")?
                .as_secs();
            println!(
                "{}",
                signed_url(&url, &key, prefix.as_deref(), now + expires_in)?
            );
            Ok(())
        }
    }
}

/// The token of `input`: one line, its line ending dropped, long enough and of visible
/// ASCII characters (as an `Authorization` header carries it).
fn token_line(input: &str) -> anyhow::Result<&str> {
    let token = input.strip_suffix('\n').unwrap_or(input);
    let token = token.strip_suffix('\r').unwrap_or(token);
    anyhow::ensure!(
        token.bytes().all(|b| b.is_ascii_graphic()),
        "the token must be one line of visible ASCII characters, without spaces"
    );
    anyhow::ensure!(
        token.len() >= MIN_TOKEN_CHARS,
        "the token has {} characters; use at least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)",
        token.len()
    );
    Ok(token)
}

/// `url` signed with `key` until `expires`, for its path or every path under `prefix`.
fn signed_url(
    url: &str,
    key: &SigningKey,
    prefix: Option<&str>,
    expires: u64,
) -> anyhow::Result<String> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    anyhow::ensure!(
        uri.scheme().is_some() && uri.authority().is_some(),
        "{url:?} is not an absolute http(s):// URL"
    );
    let query =
        sign_query(key, uri.path(), uri.query(), prefix, expires).map_err(anyhow::Error::msg)?;
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    Ok(format!("{base}?{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_one_long_visible_line() {
        assert_eq!(
            token_line("0123456789abcdef\n").unwrap(),
            "0123456789abcdef"
        );
        assert_eq!(
            token_line("0123456789abcdef\r\n").unwrap(),
            "0123456789abcdef"
        );
        for bad in ["short\n", "0123456789 abcdef", "0123456789abcdef\n\n", ""] {
            assert!(token_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_url_keeps_its_options_and_gains_the_signature() {
        let key = SigningKey::from_hex("k1", &"00".repeat(32)).unwrap();
        let signed = signed_url(
            "http://127.0.0.1:8080/v1/datasets/d/labels/5/points?format=npy",
            &key,
            None,
            1_700_000_000,
        )
        .unwrap();
        assert!(
            signed.starts_with("http://127.0.0.1:8080/v1/datasets/d/labels/5/points?format=npy&expires=1700000000&kid=k1&sig="),
            "{signed}"
        );
        assert!(signed_url("/v1/datasets/d", &key, None, 1).is_err());
        assert!(signed_url("http://h/v1/datasets/d", &key, Some("/v1/datasets/e/"), 1).is_err());
    }
}
