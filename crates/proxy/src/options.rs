//! Query-string options, checked strictly: an unknown, repeated or malformed option is a 400.

use pocaduck_edge_core::cloud::BBox;
use pocaduck_edge_core::parse_label;
use pocaduck_edge_core::reader::Selection;

use crate::error::ApiError;

/// Output format of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Arrow IPC stream: `label: uint64, points: fixed_size_list<int64>[D]`.
    Arrow,
    /// Parquet: `label: uint64` and one int32/int64 column per dim.
    Parquet,
    /// NumPy `.npy`, `(N, D)` int64 (one label only).
    Npy,
    /// JSON, labels as strings and coordinates as numbers.
    Json,
}

impl Format {
    /// The response `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Npy => "application/x-npy",
            Format::Json => "application/json",
        }
    }
}

/// How an Arrow answer lays out its points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `label: uint64, points: fixed_size_list<int64>[D]`: `N × D` row-major int64 (the
    /// default).
    Rows,
    /// One integer column per dim named after it, int32 where the source stores int32,
    /// else int64, after a `label: uint64` column when the answer may hold several labels
    /// (`POST`); the points pass through as decoded or as VastDB sent them.
    Columns,
}

/// Options of the points routes.
#[derive(Debug, Clone, PartialEq)]
pub struct PointsOptions {
    /// Output format (default Arrow).
    pub format: Format,
    /// Which points of each label: at most `limit`, spread evenly over its xyz order (a
    /// level of detail), then those inside `bbox` (first dims only, bounds inclusive).
    pub selection: Selection,
    /// Layout of an Arrow answer (default rows).
    pub shape: Shape,
}

/// Options of the label listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelsOptions {
    /// List labels greater than this one.
    pub after: Option<u64>,
    /// At most this many labels.
    pub limit: usize,
}

/// Default and largest page of the label listing.
pub const LABELS_PAGE: (usize, usize) = (1000, 10_000);

fn pairs(query: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::bad_request(format!(
                "unknown option {k:?}; this route takes {}",
                allowed.join(", ")
            )));
        }
        if seen.iter().any(|(s, _)| *s == k) {
            return Err(ApiError::bad_request(format!(
                "option {k:?} is given twice"
            )));
        }
        seen.push((k.into_owned(), v.into_owned()));
    }
    Ok(seen)
}

/// Parses the points options of `query` for `dims`-dim data.
pub fn points_options(query: Option<&str>, dims: usize) -> Result<PointsOptions, ApiError> {
    let mut out = PointsOptions {
        format: Format::Arrow,
        selection: Selection::default(),
        shape: Shape::Rows,
    };
    let mut shape_given = false;
    for (k, v) in pairs(query, &["format", "order", "bbox", "limit", "shape"])? {
        match k.as_str() {
            "format" => {
                out.format = match v.as_str() {
                    "arrow" => Format::Arrow,
                    "parquet" => Format::Parquet,
                    "npy" => Format::Npy,
                    "json" => Format::Json,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "format {v:?} is not one of arrow, parquet, npy, json"
                        )))
                    }
                }
            }
            // Points are stored in xyz order, PoCADuck's: the only order there is.
            "order" if v == "xyz" => {}
            "order" => {
                return Err(ApiError::bad_request(format!(
                    "order {v:?} is not xyz (the only order)"
                )))
            }
            "bbox" => out.selection.bbox = Some(parse_bbox(&v, dims)?),
            "limit" => {
                out.selection.limit = Some(v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("limit {v:?} is not a non-negative integer"))
                })?)
            }
            "shape" => {
                shape_given = true;
                out.shape = match v.as_str() {
                    "rows" => Shape::Rows,
                    "columns" => Shape::Columns,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "shape {v:?} is not one of rows, columns"
                        )))
                    }
                }
            }
            _ => unreachable!("pairs() admits only the listed options"),
        }
    }
    if shape_given && out.format != Format::Arrow {
        return Err(ApiError::bad_request(format!(
            "shape applies to format=arrow, not {:?}",
            out.format
        )));
    }
    Ok(out)
}

/// `bbox=min0,min1,…,max0,max1,…` over the first `k ≤ dims` dims, bounds inclusive.
fn parse_bbox(text: &str, dims: usize) -> Result<BBox, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("bbox {text:?}: {why}"));
    let values: Vec<i64> = text
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| bad(format!("{v:?} is not an integer")))
        })
        .collect::<Result<_, _>>()?;
    if values.len() % 2 != 0 || values.is_empty() || values.len() / 2 > dims {
        return Err(bad(format!(
            "expected 2×k integers (mins then maxes) for k ≤ {dims} dims"
        )));
    }
    let k = values.len() / 2;
    let bbox = BBox {
        min: values[..k].to_vec(),
        max: values[k..].to_vec(),
    };
    if bbox.min.iter().zip(&bbox.max).any(|(lo, hi)| lo > hi) {
        return Err(bad("a minimum is above its maximum".into()));
    }
    Ok(bbox)
}

/// Parses the label listing's options.
pub fn labels_options(query: Option<&str>) -> Result<LabelsOptions, ApiError> {
    let mut out = LabelsOptions {
        after: None,
        limit: LABELS_PAGE.0,
    };
    for (k, v) in pairs(query, &["after", "limit"])? {
        match k.as_str() {
            "after" => {
                out.after = Some(parse_label(&v).map_err(|e| ApiError::bad_label(e.to_string()))?)
            }
            "limit" => {
                out.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=LABELS_PAGE.1).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit {v:?} is not an integer from 1 to {}",
                            LABELS_PAGE.1
                        ))
                    })?
            }
            _ => unreachable!("pairs() admits only the listed options"),
        }
    }
    Ok(out)
}

/// Parses a VastDB reply page's options: where the page resumes (`resume`, one row id per
/// sub-split, comma-separated), checked against the query by the reader.
pub fn reply_options(query: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(pairs(query, &["resume"])?.pop().map(|(_, resume)| resume))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let o = points_options(None, 3).unwrap();
        assert_eq!((o.format, o.selection.limit), (Format::Arrow, None));
        let o = points_options(Some("format=npy&order=xyz&limit=10&bbox=0,0,0,5,5,5"), 3).unwrap();
        assert_eq!((o.format, o.selection.limit), (Format::Npy, Some(10)));
        assert_eq!(o.selection.bbox.unwrap().max, vec![5, 5, 5]);
        assert_eq!(o.shape, Shape::Rows);
        let o = points_options(Some("shape=columns"), 3).unwrap();
        assert_eq!((o.format, o.shape), (Format::Arrow, Shape::Columns));
    }

    #[test]
    fn refuses_unknown_repeated_and_malformed_options() {
        for q in [
            "fmt=arrow",
            "format=csv",
            "order=zyx",
            "limit=-1",
            "limit=x",
            "bbox=1,2,3",
            "bbox=5,0,1,1",
            "bbox=a,b",
            "format=json&format=npy",
            "bbox=0,0,0,0,1,1,1,1",
            "shape=cols",
            "shape=columns&format=parquet",
            "format=npy&shape=rows",
        ] {
            let e = points_options(Some(q), 3).unwrap_err();
            assert_eq!(e.status, 400, "{q}");
        }
        for q in ["after=-1", "after=x", "limit=0", "limit=10001", "page=2"] {
            assert_eq!(labels_options(Some(q)).unwrap_err().status, 400, "{q}");
        }
    }
}
