//! Labels: `u64` identifiers, travelling as decimal strings wherever JSON or JS is involved.

use crate::error::{Error, Result};

/// Parses a label given as decimal text, refusing anything that is not a `u64`
/// (empty, signs, non-digits, values above 2^64 − 1).
pub fn parse_label(text: &str) -> Result<u64> {
    let bad = |reason| Error::BadLabel {
        text: text.chars().take(64).collect(),
        reason,
    };
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.starts_with('-') {
        return Err(bad("negative"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a decimal number"));
    }
    text.parse::<u64>()
        .map_err(|_| bad("greater than 18446744073709551615"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_whole_u64_range() {
        assert_eq!(parse_label("0").unwrap(), 0);
        assert_eq!(parse_label("9007199254740993").unwrap(), (1u64 << 53) + 1);
        assert_eq!(parse_label("18446744073709551615").unwrap(), u64::MAX);
    }

    #[test]
    fn refuses_what_is_not_a_u64() {
        for text in [
            "",
            "-1",
            "+1",
            "1.0",
            "abc",
            "1e3",
            " 1",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let err = parse_label(text).unwrap_err();
            assert!(matches!(err, Error::BadLabel { .. }), "{text}: {err}");
        }
    }
}
