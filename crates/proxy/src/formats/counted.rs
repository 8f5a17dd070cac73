//! The formats whose head names the point count (npy's shape, JSON's `count`), streamed when
//! the counts are known before the points: the head first, then each piece's points as they
//! come, the same bytes as the whole answer ([`npy`](super::npy), [`json`](super::json)).

use std::collections::VecDeque;

use bytes::Bytes;
use pocaduck_edge_core::PointCloud;

use super::{internal, FormatError};

/// The header of an `.npy` file of `rows × dims` little-endian int64, padded to 64 bytes.
pub(super) fn npy_header(rows: u64, dims: usize) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<i8', 'fortran_order': False, 'shape': ({rows}, {dims}), }}");
    // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in \n.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// One label's npy answer, streamed: its header, then its points piece by piece.
pub struct NpyEncoder {
    out: Vec<u8>,
}

impl NpyEncoder {
    /// The answer of a label of `count` points of `dims` values.
    pub fn new(count: u64, dims: usize) -> Self {
        Self {
            out: npy_header(count, dims),
        }
    }

    /// Encodes the next points.
    pub fn push(&mut self, cloud: &PointCloud) {
        self.out.reserve(cloud.values().len() * 8);
        for v in cloud.values() {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// The bytes encoded so far and not taken yet.
    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.out))
    }
}

/// A JSON answer, streamed: each label's object opens with its count, and its points follow
/// piece by piece.
pub struct JsonEncoder {
    dims: usize,
    /// Several labels, inside `{"dims": D, "labels": […]}`.
    many: bool,
    /// The labels still to open, with their point counts, in the answer's order.
    to_come: VecDeque<(u64, u64)>,
    /// The open label, and the points it still expects.
    open: Option<(u64, u64)>,
    /// Whether a label has been opened (the next one is preceded by a comma).
    started: bool,
    /// Whether the open label has a point already.
    has_point: bool,
    out: Vec<u8>,
}

impl JsonEncoder {
    /// The answer of `labels` (label, point count) of `dims` values per point: one label's
    /// object, or, when `many`, the object listing them.
    pub fn new(dims: usize, labels: Vec<(u64, u64)>, many: bool) -> Self {
        let mut out = Vec::new();
        if many {
            out.extend_from_slice(format!("{{\"dims\":{dims},\"labels\":[").as_bytes());
        }
        Self {
            dims,
            many,
            to_come: labels.into(),
            open: None,
            started: false,
            has_point: false,
            out,
        }
    }

    /// Encodes the next points, of `label`: those of the open label until it has its count,
    /// then of the next.
    pub fn push(&mut self, label: u64, cloud: &PointCloud) -> Result<(), FormatError> {
        if cloud.is_empty() {
            return Ok(());
        }
        let remaining = loop {
            match self.open {
                Some((_, remaining)) if remaining > 0 => break remaining,
                Some(_) => self.close(),
                None => self.open_next()?,
            }
        };
        let (open, _) = self.open.expect("opened above");
        if open != label || cloud.len() as u64 > remaining || cloud.dims() != self.dims {
            return Err(internal(format!(
                "{} points of label {label} where label {open} expects {remaining}",
                cloud.len()
            )));
        }
        let mut number = itoa::Buffer::new();
        for row in cloud.rows() {
            if self.has_point {
                self.out.push(b',');
            }
            self.has_point = true;
            self.out.push(b'[');
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(number.format(*v).as_bytes());
            }
            self.out.push(b']');
        }
        self.open = Some((open, remaining - cloud.len() as u64));
        Ok(())
    }

    /// Opens the next label's object.
    fn open_next(&mut self) -> Result<(), FormatError> {
        let (label, count) = self
            .to_come
            .pop_front()
            .ok_or_else(|| internal("points past the answer's last label"))?;
        if self.started {
            self.out.push(b',');
        }
        self.started = true;
        self.has_point = false;
        self.out.extend_from_slice(
            format!(
                "{{\"count\":{count},\"dims\":{},\"label\":\"{label}\",\"points\":[",
                self.dims
            )
            .as_bytes(),
        );
        self.open = Some((label, count));
        Ok(())
    }

    /// Closes the open label's object.
    fn close(&mut self) {
        self.out.extend_from_slice(b"]}");
        self.open = None;
    }

    /// The bytes encoded so far and not taken yet.
    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.out))
    }

    /// The answer's last bytes: the labels still open or to come (which had no points
    /// left), closed. Fails when a label did not get its count.
    pub fn finish(mut self) -> Result<Bytes, FormatError> {
        loop {
            match self.open {
                Some((label, remaining)) if remaining > 0 => {
                    return Err(internal(format!(
                        "label {label} ended {remaining} points short"
                    )))
                }
                Some(_) => self.close(),
                None if self.to_come.is_empty() => break,
                None => self.open_next()?,
            }
        }
        if self.many {
            self.out.extend_from_slice(b"]}");
        }
        Ok(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::super::npy;
    use super::*;

    /// One label as a JSON value, as serde_json writes it (the reference).
    fn json_label(label: u64, cloud: &PointCloud) -> serde_json::Value {
        let points: Vec<&[i64]> = cloud.rows().collect();
        serde_json::json!({"label": label.to_string(), "dims": cloud.dims(), "count": cloud.len(), "points": points})
    }

    /// Several labels as JSON, as serde_json writes them (the reference).
    fn json_many(dims: usize, labels: &[(u64, PointCloud)]) -> Vec<u8> {
        let items: Vec<serde_json::Value> = labels.iter().map(|(l, c)| json_label(*l, c)).collect();
        serde_json::to_vec(&serde_json::json!({"dims": dims, "labels": items})).unwrap()
    }

    fn cloud(values: Vec<i64>) -> PointCloud {
        PointCloud::new(3, values).unwrap()
    }

    /// Pushes `pieces` (label, points) and collects every byte.
    fn streamed(encoder: &mut JsonEncoder, pieces: &[(u64, PointCloud)]) -> Vec<u8> {
        let mut out = encoder.take().to_vec();
        for (label, piece) in pieces {
            encoder.push(*label, piece).unwrap();
            out.extend_from_slice(&encoder.take());
        }
        out
    }

    #[test]
    fn streamed_answers_are_the_whole_answers_bytes() {
        let a = cloud(vec![1, -2, 3, 4, 5, i64::MAX, i64::MIN, 0, 7]);
        let b = cloud(vec![9, 9, 9]);
        let empty = cloud(Vec::new());
        let (la, lb, lc) = (u64::MAX, 1 << 60, 3);
        // One label, in two pieces and an empty one.
        let mut one = JsonEncoder::new(3, vec![(la, 3)], false);
        let pieces = [
            (la, cloud(a.values()[..3].to_vec())),
            (la, empty.clone()),
            (la, cloud(a.values()[3..].to_vec())),
        ];
        let mut bytes = streamed(&mut one, &pieces);
        bytes.extend_from_slice(&one.finish().unwrap());
        let whole = serde_json::to_vec(&json_label(la, &a)).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            String::from_utf8(whole).unwrap()
        );
        // Several labels, one repeated, one with no points (first, between and last).
        let labels = [
            (lc, empty.clone()),
            (la, a.clone()),
            (lc, empty.clone()),
            (la, a.clone()),
            (lb, b.clone()),
            (lc, empty.clone()),
        ];
        let counts = labels.iter().map(|(l, c)| (*l, c.len() as u64)).collect();
        let mut many = JsonEncoder::new(3, counts, true);
        let mut bytes = streamed(&mut many, &labels);
        bytes.extend_from_slice(&many.finish().unwrap());
        assert_eq!(bytes, json_many(3, &labels));
        // npy, in pieces.
        let mut npy_stream = NpyEncoder::new(3, 3);
        let mut bytes = npy_stream.take().to_vec();
        for piece in [&a.values()[..6], &a.values()[6..]] {
            npy_stream.push(&cloud(piece.to_vec()));
            bytes.extend_from_slice(&npy_stream.take());
        }
        assert_eq!(bytes, npy(&a).to_vec());
    }

    #[test]
    fn points_that_do_not_fit_the_counts_are_refused() {
        let two = cloud(vec![1, 2, 3, 4, 5, 6]);
        let mut encoder = JsonEncoder::new(3, vec![(1, 1)], false);
        assert!(encoder.push(1, &two).is_err(), "more points than counted");
        let mut encoder = JsonEncoder::new(3, vec![(1, 2)], false);
        assert!(encoder.push(2, &two).is_err(), "another label");
        let mut encoder = JsonEncoder::new(3, vec![(1, 3)], false);
        encoder.push(1, &two).unwrap();
        assert!(encoder.finish().is_err(), "a label short of its count");
        let mut encoder = JsonEncoder::new(3, vec![(1, 2)], false);
        encoder.push(1, &two).unwrap();
        assert!(encoder.push(1, &two).is_err(), "points past the last label");
    }
}
