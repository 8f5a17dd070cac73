//! A request's labels: a label in the path, and the labels a `POST …/points` body names.
//! Both come from outside and are checked strictly.

use pocaduck_edge_core::parse_label;

use crate::error::ApiError;

/// A label of the path or body: a decimal `u64` string.
pub fn label(text: &str) -> Result<u64, ApiError> {
    parse_label(text).map_err(|e| ApiError::bad_label(e.to_string()))
}

/// The labels a `POST …/points` body names (`{"labels": ["…", …]}`), at most `max_labels`
/// of them: strings, or integers below 2^53.
pub fn body_labels(body: &[u8], max_labels: usize) -> Result<Vec<u64>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        labels: Vec<serde_json::Value>,
    }
    let parsed: Body = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"labels\": [\"<label>\", …]}}: {e}"
        ))
    })?;
    if parsed.labels.len() > max_labels {
        return Err(ApiError::too_large(format!(
            "{} labels asked; the limit is {max_labels} labels per request",
            parsed.labels.len(),
        )));
    }
    if parsed.labels.is_empty() {
        return Err(ApiError::bad_request("the body names no labels"));
    }
    parsed
        .labels
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) => label(s),
            // Integers travel as strings: a JSON number above 2^53 has already lost digits
            // in most clients.
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(small) if small < (1 << 53) => Ok(small),
                _ => Err(ApiError::bad_label(format!(
                    "label {n} must be a decimal string"
                ))),
            },
            other => Err(ApiError::bad_label(format!(
                "label {other} must be a decimal string"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_decimal_u64_strings_or_small_numbers() {
        assert_eq!(label("18446744073709551615").unwrap(), u64::MAX);
        for bad in ["-1", "1.5", "x", "18446744073709551616", ""] {
            assert_eq!(label(bad).unwrap_err().code, "bad_label", "{bad:?}");
        }
    }

    #[test]
    fn bodies_name_labels_as_strings_or_small_numbers() {
        let body = br#"{"labels": ["18446744073709551615", 7]}"#;
        assert_eq!(body_labels(body, 2).unwrap(), [u64::MAX, 7]);
        assert_eq!(body_labels(body, 1).unwrap_err().code, "too_large");
        let cases: [(&[u8], &str); 6] = [
            (br#"{"labels": []}"#, "bad_request"),
            (br#"{"labels": [9007199254740993]}"#, "bad_label"),
            (br#"{"labels": [1.0]}"#, "bad_label"),
            (br#"{"labels": [null]}"#, "bad_label"),
            (br#"{"labels": ["1"], "more": 1}"#, "bad_request"),
            (b"\xff\xfe", "bad_request"),
        ];
        for (body, code) in cases {
            assert_eq!(
                body_labels(body, 10).unwrap_err().code,
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
