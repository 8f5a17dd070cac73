//! What an answer says of itself in its metadata (an Arrow stream's schema metadata, a
//! Parquet file's key-value metadata): the keys, and how their values are written.

use std::collections::HashMap;

use crate::cloud::BBox;
use crate::error::{Error, Result};

/// The label of a one-label answer, in decimal.
pub const LABEL_KEY: &str = "pocaduck_edge:label";
/// The bounds of a one-label answer's points: the `D` minima then the `D` maxima, in
/// decimal, comma-separated. A hint: a decoder checks it.
pub const BBOX_KEY: &str = "pocaduck_edge:bbox";

/// The label an Arrow schema's `metadata` names ([`LABEL_KEY`]): `None` when it names none,
/// an error when what it names is not a `u64`.
pub fn label(metadata: &HashMap<String, String>) -> Option<Result<u64>> {
    let text = metadata.get(LABEL_KEY)?;
    Some(
        crate::parse_label(text)
            .map_err(|e| Error::Points(format!("the answer's metadata names a bad label: {e}"))),
    )
}

/// The bounds written as [`BBOX_KEY`] says, `None` unless it is `2 × dims` integers with
/// each minimum at most its maximum.
pub fn parse_bbox(text: &str, dims: usize) -> Option<BBox> {
    let values: Vec<i64> = text
        .split(',')
        .map(|v| v.trim().parse().ok())
        .collect::<Option<_>>()?;
    if values.len() != 2 * dims {
        return None;
    }
    let (min, max) = values.split_at(dims);
    min.iter().zip(max).all(|(lo, hi)| lo <= hi).then(|| BBox {
        min: min.to_vec(),
        max: max.to_vec(),
    })
}

/// `bbox` as [`BBOX_KEY`] holds it.
pub fn format_bbox(bbox: &BBox) -> String {
    let values: Vec<String> = bbox
        .min
        .iter()
        .chain(&bbox.max)
        .map(i64::to_string)
        .collect();
    values.join(",")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_label_is_a_u64_in_decimal() {
        let named = |text: &str| HashMap::from([(LABEL_KEY.to_string(), text.to_string())]);
        assert_eq!(label(&HashMap::new()).map(|l| l.ok()), None);
        assert_eq!(
            label(&named("18446744073709551615")).unwrap().unwrap(),
            u64::MAX
        );
        for bad in ["-1", "18446744073709551616", "1e3", ""] {
            let err = label(&named(bad)).unwrap().unwrap_err().to_string();
            assert!(err.contains("bad label"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn bounds_that_are_not_a_box_of_dims_are_refused() {
        for text in [
            "",
            "1,2,3",
            "1,2,3,4,5,6,7",
            "9,0,0,1,1,1",
            "1,2,x,4,5,6",
            "1.5,2,3,4,5,6",
        ] {
            assert_eq!(parse_bbox(text, 3), None, "{text:?}");
        }
        let bbox = parse_bbox(" -2, -9223372036854775808,3 ,4,5,9223372036854775807", 3);
        assert_eq!(
            bbox,
            Some(BBox {
                min: vec![-2, i64::MIN, 3],
                max: vec![4, 5, i64::MAX],
            })
        );
    }

    proptest! {
        #[test]
        fn bounds_round_trip_as_metadata(
            lo in prop::collection::vec(any::<i64>(), 1..5),
            span in prop::collection::vec(any::<u64>(), 5),
        ) {
            let max: Vec<i64> = lo.iter().zip(&span).map(|(l, s)| l.saturating_add_unsigned(*s)).collect();
            let bbox = BBox { min: lo.clone(), max };
            prop_assert_eq!(parse_bbox(&format_bbox(&bbox), lo.len()), Some(bbox.clone()));
            prop_assert_eq!(parse_bbox(&format_bbox(&bbox), lo.len() + 1), None);
        }
    }
}
