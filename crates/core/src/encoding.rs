//! How coordinate columns are encoded in Parquet, in the layout's points files and in
//! Parquet answers alike.
//!
//! Points are sorted lexicographically (x, then y, then z): the leading dims change by small
//! steps from row to row, so their deltas pack into a few bits; the last dim jumps within
//! each (x, y) run and compresses best split into byte streams. Measured on the sample
//! (zstd 3): 0.885 B/point against 0.929 with byte streams for every dim.

use parquet::basic::Encoding;

/// The Parquet encoding of dim `dim` (0-based) of points sorted lexicographically over
/// `dims` dims.
pub fn coordinate_encoding(dim: usize, dims: usize) -> Encoding {
    if dim + 1 < dims.min(3) {
        Encoding::DELTA_BINARY_PACKED
    } else {
        Encoding::BYTE_STREAM_SPLIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_leading_dims_are_delta_packed_and_the_rest_byte_split() {
        let e = |dims| {
            (0..dims)
                .map(|d| coordinate_encoding(d, dims))
                .collect::<Vec<_>>()
        };
        use Encoding::{BYTE_STREAM_SPLIT as B, DELTA_BINARY_PACKED as D};
        assert_eq!(e(3), [D, D, B]);
        assert_eq!(e(2), [D, B]);
        assert_eq!(e(1), [B]);
        assert_eq!(e(4), [D, D, B, B]);
    }
}
