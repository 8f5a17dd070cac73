//! The edge layout's content hashes (xxh3-64, 16 lowercase hex digits): of whole files, of
//! index pages and Parquet footers (in the manifest), and of each row group of a points file
//! (in that file's footer). A reader checks every hash that covers the bytes it decodes, so
//! bytes that changed or rotted are refused, never decoded into other points.

use parquet::file::metadata::ParquetMetaData;

use crate::error::{Error, Result};
use crate::plan::group_range;

/// The key, in a points file's Parquet key-value metadata, of its row groups' hashes: one
/// per row group, in order, comma-separated; each hashes the row group's bytes (from its
/// first column chunk's start to its last one's end).
pub const ROW_GROUP_HASHES_KEY: &str = "pocaduck-edge:row_group_xxh3";

/// xxh3-64 of `bytes`.
pub fn xxh3(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// xxh3-64 of `bytes` in the layout's form: 16 lowercase hex digits.
pub fn xxh3_hex(bytes: &[u8]) -> String {
    format!("{:016x}", xxh3(bytes))
}

/// Checks that `bytes` hash to `expected` (16 hex digits); `what` names them in the error.
pub fn check(what: impl std::fmt::Display, bytes: &[u8], expected: &str) -> Result<()> {
    if xxh3_hex(bytes).eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Error::Corrupt {
            what: what.to_string(),
        })
    }
}

/// The row-group hashes that the footer `meta` of points file `path` records, one per row
/// group; `None` when it records none (a file written without them).
pub fn row_group_hashes(path: &str, meta: &ParquetMetaData) -> Result<Option<Vec<u64>>> {
    let Some(value) = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == ROW_GROUP_HASHES_KEY))
        .map(|kv| kv.value.as_deref().unwrap_or_default())
    else {
        return Ok(None);
    };
    let bad = |why: &str| Error::Points(format!("{path}: {ROW_GROUP_HASHES_KEY} {why}"));
    let hashes = value
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| match h.len() {
            16 => u64::from_str_radix(h, 16).map_err(|_| bad("holds a value that is not hex")),
            _ => Err(bad("holds a value that is not 16 hex digits")),
        })
        .collect::<Result<Vec<u64>>>()?;
    if hashes.len() != meta.num_row_groups() {
        return Err(bad(&format!(
            "has {} hashes for {} row groups",
            hashes.len(),
            meta.num_row_groups()
        )));
    }
    Ok(Some(hashes))
}

/// Checks every row group of points file `path` (footer `meta`) that lies wholly inside
/// `bytes`, the file's bytes from offset `start`, against the hashes its footer records;
/// returns how many it checked (none when the footer records no hashes).
pub fn check_row_groups(
    path: &str,
    meta: &ParquetMetaData,
    start: u64,
    bytes: &[u8],
) -> Result<usize> {
    let Some(hashes) = row_group_hashes(path, meta)? else {
        return Ok(0);
    };
    let end = start + bytes.len() as u64;
    let mut checked = 0;
    for (i, (group, expected)) in meta.row_groups().iter().zip(hashes).enumerate() {
        let range = group_range(group)?;
        let inside = range.offset >= start
            && range
                .offset
                .checked_add(range.length)
                .is_some_and(|e| e <= end);
        if !inside {
            continue;
        }
        let at = (range.offset - start) as usize;
        if xxh3(&bytes[at..at + range.length as usize]) != expected {
            return Err(Error::Corrupt {
                what: format!("row group {i} of {path}"),
            });
        }
        checked += 1;
    }
    Ok(checked)
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use bytes::Bytes;
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;

    use super::*;
    use crate::manifest::Manifest;
    use crate::read::parse_footer;
    use crate::reader::{decode_page, points_footer};
    use crate::write::{DatasetWriter, MemorySink, WriterOptions};
    use crate::PointCloud;

    /// Three labels in row groups of at most 100 rows, with their files.
    fn dataset() -> (Manifest, HashMap<String, Bytes>) {
        let sink = MemorySink::default();
        let dims = ["x", "y", "z"].map(String::from).to_vec();
        let options = WriterOptions {
            row_group_rows: 100,
            ..WriterOptions::default()
        };
        let mut writer = DatasetWriter::new(sink.clone(), dims, options).unwrap();
        for (label, n) in [(7u64, 50i64), (1 << 60, 250), (u64::MAX, 120)] {
            let values = (0..n).flat_map(|i| [i, -i, i * 3]).collect();
            let points = PointCloud::new(3, values).unwrap();
            writer.push_label(label, points, &[]).unwrap();
        }
        (writer.finish().unwrap(), sink.files())
    }

    fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
        let mut out = bytes.to_vec();
        out[at] ^= 0x20;
        out
    }

    #[test]
    fn the_writer_records_a_hash_of_every_row_group_page_and_footer() {
        let (manifest, files) = dataset();
        let file = &manifest.files[0];
        let bytes = &files[&file.path];
        let footer = file.footer.unwrap();
        let footer_bytes = &bytes[footer.offset as usize..];
        assert_eq!(file.footer_xxh3.as_deref(), Some(&*xxh3_hex(footer_bytes)));
        let meta = points_footer(&manifest, 0, footer_bytes).unwrap();
        assert!(
            meta.num_row_groups() >= 4,
            "{} row groups",
            meta.num_row_groups()
        );
        let hashes = row_group_hashes(&file.path, &meta).unwrap().unwrap();
        for (group, hash) in meta.row_groups().iter().zip(&hashes) {
            let r = group_range(group).unwrap();
            assert_eq!(xxh3(&bytes[r.offset as usize..r.end() as usize]), *hash);
        }
        // The whole file holds every row group, each checked.
        assert_eq!(
            check_row_groups(&file.path, &meta, 0, bytes).unwrap(),
            meta.num_row_groups()
        );
        let index = &files[&manifest.label_index.file.path];
        for (i, page) in manifest.label_index.pages.iter().enumerate() {
            let r = page.range;
            let page_bytes = &index[r.offset as usize..r.end() as usize];
            assert_eq!(page.xxh3.as_deref(), Some(&*xxh3_hex(page_bytes)));
            decode_page(&manifest, i, page_bytes).unwrap();
        }
    }

    #[test]
    fn a_changed_byte_of_a_row_group_is_refused_and_the_others_pass() {
        let (manifest, files) = dataset();
        let file = &manifest.files[0];
        let bytes = &files[&file.path];
        let footer = file.footer.unwrap();
        let meta = points_footer(&manifest, 0, &bytes[footer.offset as usize..]).unwrap();
        let ranges: Vec<_> = meta
            .row_groups()
            .iter()
            .map(|g| group_range(g).unwrap())
            .collect();
        for (i, r) in ranges.iter().enumerate() {
            let bad = flipped(bytes, (r.offset + r.length / 2) as usize);
            let err = check_row_groups(&file.path, &meta, 0, &bad).unwrap_err();
            assert!(
                matches!(&err, Error::Corrupt { what } if *what == format!("row group {i} of {}", file.path)),
                "{err}"
            );
            for (j, other) in ranges.iter().enumerate().filter(|(j, _)| *j != i) {
                let part = &bad[other.offset as usize..other.end() as usize];
                assert_eq!(
                    check_row_groups(&file.path, &meta, other.offset, part).unwrap(),
                    1,
                    "row group {j}"
                );
            }
        }
        // A range that holds no whole row group checks none.
        let r = ranges[1];
        let part = &bytes[r.offset as usize + 1..r.end() as usize];
        assert_eq!(
            check_row_groups(&file.path, &meta, r.offset + 1, part).unwrap(),
            0
        );
    }

    #[test]
    fn a_changed_byte_of_a_footer_or_an_index_page_is_refused() {
        let (manifest, files) = dataset();
        let file = &manifest.files[0];
        let footer = file.footer.unwrap();
        let footer_bytes = &files[&file.path][footer.offset as usize..];
        for at in [0, footer_bytes.len() / 2, footer_bytes.len() - 9] {
            let err = points_footer(&manifest, 0, &flipped(footer_bytes, at)).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "byte {at}: {err}");
        }
        let r = manifest.label_index.pages[0].range;
        let page = &files[&manifest.label_index.file.path][r.offset as usize..r.end() as usize];
        for at in [0, 20, page.len() - 1] {
            let err = decode_page(&manifest, 0, &flipped(page, at)).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "byte {at}: {err}");
        }
    }

    /// The footer of a one-column Parquet file of `groups` row groups, with `hashes` under
    /// the row-group hashes' key when given.
    fn footer_with(groups: usize, hashes: Option<&str>) -> Arc<ParquetMetaData> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "label",
            DataType::UInt64,
            false,
        )]));
        let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), None).unwrap();
        for g in 0..groups {
            let column: ArrayRef = Arc::new(UInt64Array::from(vec![g as u64; 3]));
            writer
                .write(&RecordBatch::try_new(schema.clone(), vec![column]).unwrap())
                .unwrap();
            writer.flush().unwrap();
        }
        if let Some(value) = hashes {
            writer.append_key_value_metadata(KeyValue::new(
                ROW_GROUP_HASHES_KEY.into(),
                value.to_string(),
            ));
        }
        let bytes = writer.into_inner().unwrap();
        let len = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap());
        parse_footer("f.parquet", &bytes[bytes.len() - len as usize - 8..]).unwrap()
    }

    #[test]
    fn malformed_row_group_hashes_are_refused_and_absent_ones_check_nothing() {
        let two = "0123456789abcdef,fedcba9876543210";
        assert_eq!(
            row_group_hashes("f", &footer_with(2, Some(two))).unwrap(),
            Some(vec![0x0123456789abcdef, 0xfedcba9876543210])
        );
        for (groups, value, why) in [
            (1, two, "has 2 hashes for 1 row groups"),
            (2, "0123456789abcdef,0123", "not 16 hex digits"),
            (1, "0123456789abcdeg", "not hex"),
            (1, "", "has 0 hashes for 1 row groups"),
        ] {
            let err = row_group_hashes("f", &footer_with(groups, Some(value))).unwrap_err();
            assert!(err.to_string().contains(why), "{value:?}: {err}");
        }
        let none = footer_with(2, None);
        assert_eq!(row_group_hashes("f", &none).unwrap(), None);
        assert_eq!(check_row_groups("f", &none, 0, &[0; 64]).unwrap(), 0);
    }

    #[test]
    fn hashes_compare_without_regard_to_case() {
        let hex = xxh3_hex(b"points");
        check("x", b"points", &hex.to_uppercase()).unwrap();
        assert!(matches!(check("x", b"point", &hex), Err(Error::Corrupt { what }) if what == "x"));
    }
}
