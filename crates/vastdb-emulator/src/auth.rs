//! SigV4 checking: the emulator signs each request again with the shared secret, as the SDK
//! did, and compares the `Authorization` header.

use pocaduck_edge_vastdb::{sign, Credentials, Endpoint, Request};

/// Why a request was not authenticated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No or malformed `Authorization` / `x-amz-date`.
    Missing(&'static str),
    /// An access key other than the configured one.
    UnknownKey,
    /// The signature does not match.
    Mismatch,
}

/// Checks `request` (without its SigV4 headers) against the headers it arrived with.
pub(crate) fn verify(
    request: &Request,
    host: &str,
    authorization: Option<&str>,
    amz_date: Option<&str>,
    credentials: &Credentials,
) -> Result<(), Denied> {
    let authorization = authorization.ok_or(Denied::Missing("Authorization"))?;
    let amz_date = amz_date.ok_or(Denied::Missing("x-amz-date"))?;
    let key = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .ok_or(Denied::Missing("Authorization credential"))?;
    if key != credentials.access_key() {
        return Err(Denied::UnknownKey);
    }
    let seconds = parse_amz_date(amz_date).ok_or(Denied::Missing("a valid x-amz-date"))?;
    let endpoint =
        Endpoint::parse(&format!("http://{host}")).map_err(|_| Denied::Missing("Host"))?;
    let mut expected = request.clone();
    expected.headers.clear();
    sign(&mut expected, &endpoint, credentials, seconds).map_err(|_| Denied::Mismatch)?;
    if expected.header_value("authorization") == Some(authorization) {
        Ok(())
    } else {
        Err(Denied::Mismatch)
    }
}

/// `YYYYMMDDTHHMMSSZ` → seconds since the Unix epoch.
fn parse_amz_date(date: &str) -> Option<u64> {
    let b = date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| date.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20261124T030426Z"), Some(1_795_489_466));
        assert_eq!(parse_amz_date("20000301T000000Z"), Some(951_868_800));
        for bad in [
            "",
            "20261124T030426",
            "2026112XT030426Z",
            "20261324T030426Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }
}
