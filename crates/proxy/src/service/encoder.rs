//! The encoders of points answers: streamed ones (Arrow rows, Arrow columns, Parquet, and
//! npy and JSON when their counts are known first), and answers held whole (npy and JSON
//! otherwise, Parquet of VastDB's points).

use arrow_schema::DataType;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Response;
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_read::{Clock, Timing};

use super::respond::{set_point_count, set_timing};
use super::routes::Many;
use super::Answer;
use crate::body::Body;
use crate::formats::{
    self, ArrowEncoder, ColumnsEncoder, FormatError, JsonEncoder, NpyEncoder, ParquetEncoder,
};
use crate::options::{Format, PointsOptions};

/// Bytes one point takes in memory on its way into an answer of `format` with `dims`
/// dims: its decoded int64 values, and what encoding adds (the label column of Arrow
/// rows, a second copy for npy and Parquet, up to 21 bytes of text a value for JSON).
pub(super) fn bytes_per_point(format: Format, dims: usize) -> u64 {
    let dims = dims as u64;
    let encoded = match format {
        Format::Arrow => 8,
        Format::Parquet | Format::Npy => 8 * dims,
        Format::Json => 21 * dims,
    };
    8 * dims + encoded
}

/// The encoder of a streamed answer.
pub(super) enum Encoder {
    /// Arrow, a row of `D` values per point.
    Arrow(ArrowEncoder),
    /// Arrow, a column per dim.
    Columns(ColumnsEncoder),
    /// Parquet.
    Parquet(ParquetEncoder),
    /// npy of one label whose count is known.
    Npy(NpyEncoder),
    /// JSON of labels whose counts are known.
    Json(JsonEncoder),
}

impl Encoder {
    /// The answer's format.
    pub(super) fn format(&self) -> Format {
        match self {
            Encoder::Arrow(_) | Encoder::Columns(_) => Format::Arrow,
            Encoder::Parquet(_) => Format::Parquet,
            Encoder::Npy(_) => Format::Npy,
            Encoder::Json(_) => Format::Json,
        }
    }

    /// Encodes `cloud`, points of `label`.
    pub(super) fn push(&mut self, label: u64, cloud: PointCloud) -> Result<(), FormatError> {
        match self {
            Encoder::Arrow(e) => e.push(label, cloud),
            Encoder::Columns(e) => e.push_cloud(label, &cloud),
            Encoder::Parquet(e) => e.push(label, &cloud),
            Encoder::Npy(e) => {
                e.push(&cloud);
                Ok(())
            }
            Encoder::Json(e) => e.push(label, &cloud),
        }
    }

    /// The bytes encoded so far and not taken yet.
    pub(super) fn take(&mut self) -> Vec<Bytes> {
        match self {
            Encoder::Arrow(e) => e.take(),
            Encoder::Columns(e) => e.take(),
            Encoder::Parquet(e) => vec![e.take()],
            Encoder::Npy(e) => vec![e.take()],
            Encoder::Json(e) => vec![e.take()],
        }
    }

    /// The answer's last bytes.
    pub(super) fn finish(self) -> Result<Vec<Bytes>, FormatError> {
        match self {
            Encoder::Arrow(e) => Ok(e.finish()),
            Encoder::Columns(e) => Ok(e.finish()),
            Encoder::Parquet(e) => Ok(vec![e.finish()?]),
            Encoder::Npy(mut e) => Ok(vec![e.take()]),
            Encoder::Json(e) => Ok(vec![e.finish()?]),
        }
    }
}

/// The Arrow column type of each dim: int64 where `wide`, else int32.
pub(super) fn column_types(wide: &[bool]) -> Vec<DataType> {
    wide.iter()
        .map(|&wide| {
            if wide {
                DataType::Int64
            } else {
                DataType::Int32
            }
        })
        .collect()
}

/// Encodes whole labels as npy, JSON or Parquet: the answer held whole.
pub(super) fn encode_whole(
    clock: &dyn Clock,
    dim_names: &[String],
    labels: &[(u64, PointCloud)],
    options: &PointsOptions,
    many: Many,
    mut timing: Timing,
) -> Answer {
    let t0 = clock.now_ms();
    let body = match options.format {
        Format::Npy => formats::npy(&labels[0].1),
        Format::Json => formats::json(dim_names.len(), labels, many == Many::Several)?,
        Format::Parquet => formats::parquet(dim_names, labels)?,
        Format::Arrow => unreachable!("Arrow answers are streamed"),
    };
    timing.encode += clock.now_ms() - t0;
    let mut r = Response::new(Body::Full(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(options.format.content_type()),
    );
    let count = labels.iter().map(|(_, cloud)| cloud.len() as u64).sum();
    set_point_count(r.headers_mut(), Some(count));
    set_timing(&mut r, &timing);
    Ok(r)
}

/// Refuses npy for several labels: it holds one.
pub(super) fn check_format(options: &PointsOptions, many: Many) -> Result<(), crate::ApiError> {
    if options.format == Format::Npy && many == Many::Several {
        return Err(crate::ApiError::bad_request(
            "format npy holds one label; use arrow, parquet or json for several",
        ));
    }
    Ok(())
}

/// Refuses an answer held whole of more than `max_points` points.
pub(super) fn check_whole(
    total: u64,
    max_points: u64,
    options: &PointsOptions,
) -> Result<(), crate::ApiError> {
    if total > max_points {
        return Err(crate::ApiError::too_large(format!(
            "the answer is over the limit of {max_points} points per {:?} answer, which is held whole (format=arrow streams any size)",
            options.format
        )));
    }
    Ok(())
}
