//! Raw file access rules: `Range` parsing (bounded, suffix and open ranges; one range per
//! request), ETag matching for `If-None-Match`.

use std::ops::Range;

use crate::error::ApiError;

/// Parses a `Range` header against a file of `size` bytes: `Ok(None)` for no header,
/// `Ok(Some(range))` for a satisfiable single range (clamped to the file), 416 when it
/// lies outside the file, 400 when malformed or when it asks for several ranges.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ApiError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let bad = |why: &str| ApiError::bad_request(format!("Range {header:?}: {why}"));
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| bad("only bytes ranges are served"))?;
    if spec.contains(',') {
        return Err(bad("one range per request"));
    }
    let (first, last) = spec
        .split_once('-')
        .ok_or_else(|| bad("expected bytes=first-last"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| bad("positions must be non-negative integers"))
    };
    let unsatisfiable = || {
        ApiError::range_not_satisfiable(format!(
            "Range {header:?} is outside the file's {size} bytes"
        ))
    };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return Err(bad("expected bytes=first-last")),
        (true, false) => {
            let n = number(last)?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(n)..size
        }
        (false, open) => {
            let start = number(first)?;
            let end = if open {
                size
            } else {
                number(last)?.saturating_add(1).min(size)
            };
            if !open && number(last)? < start {
                return Err(bad("last position is before the first"));
            }
            if start >= size {
                return Err(unsatisfiable());
            }
            start..end
        }
    };
    Ok(Some(range))
}

/// Whether an `If-None-Match` header matches the strong `etag` (given without quotes).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(header) = header else { return false };
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-3"), 10).unwrap(), Some(0..4));
        assert_eq!(parse_range(Some("bytes=5-100"), 10).unwrap(), Some(5..10));
        assert_eq!(parse_range(Some("bytes=5-"), 10).unwrap(), Some(5..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10).unwrap(), Some(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10).unwrap(), Some(0..10));
    }

    #[test]
    fn unsatisfiable_and_malformed_ranges() {
        for h in ["bytes=10-20", "bytes=10-", "bytes=-0"] {
            assert_eq!(parse_range(Some(h), 10).unwrap_err().status, 416, "{h}");
        }
        assert_eq!(parse_range(Some("bytes=0-0"), 0).unwrap_err().status, 416);
        for h in [
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=5-2",
            "bytes=-",
            "bytes=1",
            "0-1",
            "bytes=--1",
        ] {
            assert_eq!(parse_range(Some(h), 10).unwrap_err().status, 400, "{h}");
        }
    }

    #[test]
    fn etags() {
        assert!(none_match(Some("\"abc\""), "abc"));
        assert!(none_match(Some("\"x\", W/\"abc\""), "abc"));
        assert!(none_match(Some("*"), "abc"));
        assert!(!none_match(Some("\"abd\""), "abc"));
        assert!(!none_match(None, "abc"));
    }
}
