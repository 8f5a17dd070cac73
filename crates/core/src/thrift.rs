//! A bounded walk over Parquet's thrift (the compact protocol): footers and page headers
//! checked before the Parquet crate reads them.
//!
//! The Parquet crate skips a field it does not know by its declared shape, and skips a
//! boolean element of a list, set or map as if it took no byte: a field of a few bytes that
//! declares a list of 2^31 booleans, or such lists nested, keeps its reader looping for
//! seconds to hours. This walk reads the bytes as that skip does (a boolean element takes no
//! byte, so the two stay in step over any bytes) and counts the values it walks: it refuses
//! a collection that declares more elements than the bytes left can hold, and any struct
//! whose values outnumber its bytes by more than [`VALUES_PER_BYTE`], so it and the crate's
//! reader end in time linear in the bytes.

/// The deepest nesting of structs and collections walked (the Parquet crate's skip depth).
const MAX_DEPTH: u32 = 64;

/// The most values walked per byte of a struct. Every value but a collection's boolean takes
/// at least a byte; a footer or page header of Parquet's own fields holds no collection of
/// booleans at all.
pub(crate) const VALUES_PER_BYTE: usize = 2;

/// Compact-protocol type ids.
mod ty {
    pub(super) const BOOL_TRUE: u8 = 1;
    pub(super) const BOOL_FALSE: u8 = 2;
    pub(super) const BYTE: u8 = 3;
    pub(super) const I16: u8 = 4;
    pub(super) const I32: u8 = 5;
    pub(super) const I64: u8 = 6;
    pub(super) const DOUBLE: u8 = 7;
    pub(super) const BINARY: u8 = 8;
    pub(super) const LIST: u8 = 9;
    pub(super) const SET: u8 = 10;
    pub(super) const MAP: u8 = 11;
    pub(super) const STRUCT: u8 = 12;
    pub(super) const UUID: u8 = 13;
}

/// One struct at the start of some bytes, walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walked {
    /// Its length in bytes (through its stop byte).
    pub(crate) len: usize,
    /// The value of the top-level `i32` field that was asked for, when present.
    pub(crate) field: Option<i32>,
}

/// Walks the thrift struct at the start of `bytes`, and takes the value of its top-level
/// `i32` field `field` when one is named. An error names what is malformed: a cut, a type the protocol lacks,
/// nesting past 64, a collection or binary longer than the bytes left, or more values than
/// [`VALUES_PER_BYTE`] allows.
pub(crate) fn walk_struct(bytes: &[u8], field: Option<i16>) -> Result<Walked, String> {
    let mut walk = Walk {
        bytes,
        at: 0,
        values_left: bytes
            .len()
            .saturating_mul(VALUES_PER_BYTE)
            .saturating_add(1),
    };
    let value = walk.fields(1, field)?;
    Ok(Walked {
        len: walk.at,
        field: value,
    })
}

struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    /// How many more values may be walked.
    values_left: usize,
}

impl Walk<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| format!("cut at byte {}", self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        match usize::try_from(n) {
            Ok(n) if n <= self.left() => {
                self.at += n;
                Ok(())
            }
            _ => Err(format!(
                "{what} of {n} bytes at byte {} with {} left",
                self.at,
                self.left()
            )),
        }
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "a varint longer than 10 bytes before byte {}",
            self.at
        ))
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// A collection's element count, which must fit in the bytes left at `per` bytes each
    /// (a collection of booleans in the values left).
    fn count(&mut self, n: u64, per: u64, what: &str) -> Result<u64, String> {
        let fits = if per == 0 {
            n <= self.values_left as u64
        } else {
            n.saturating_mul(per) <= self.left() as u64
        };
        if n > i32::MAX as u64 || !fits {
            return Err(format!(
                "a {what} of {n} elements at byte {} with {} bytes left",
                self.at,
                self.left()
            ));
        }
        Ok(n)
    }

    /// A struct's fields through its stop byte; the value of top-level `i32` field `want`.
    fn fields(&mut self, depth: u32, want: Option<i16>) -> Result<Option<i32>, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH}"));
        }
        let mut id: i16 = 0;
        let mut found = None;
        loop {
            let header = self.byte()?;
            let kind = header & 0x0f;
            if kind == 0 {
                return Ok(found);
            }
            let delta = header >> 4;
            id = if delta == 0 {
                i16::try_from(self.zigzag()?).map_err(|_| "a field id past i16".to_string())?
            } else {
                id.checked_add(i16::from(delta))
                    .ok_or_else(|| "a field id past i16".to_string())?
            };
            if want == Some(id) && kind == ty::I32 {
                found = i32::try_from(self.zigzag()?).ok();
                continue;
            }
            self.value(kind, depth, false)?;
        }
    }

    /// Counts `n` values walked.
    fn spend(&mut self, n: u64) -> Result<(), String> {
        match usize::try_from(n) {
            Ok(n) if n <= self.values_left => {
                self.values_left -= n;
                Ok(())
            }
            _ => Err(format!(
                "more than {VALUES_PER_BYTE} values per byte in {} bytes",
                self.bytes.len()
            )),
        }
    }

    /// One value of type `kind`. A boolean takes no byte, neither as a field (its value is
    /// in the field's header) nor as an element (where the protocol gives it a byte, but the
    /// Parquet crate's skip, which this walk keeps in step with, reads none).
    fn value(&mut self, kind: u8, depth: u32, element: bool) -> Result<(), String> {
        if element {
            self.spend(1)?;
        }
        match kind {
            ty::BOOL_TRUE | ty::BOOL_FALSE => Ok(()),
            ty::BYTE => self.byte().map(drop),
            ty::I16 | ty::I32 | ty::I64 => self.varint().map(drop),
            ty::DOUBLE => self.skip(8, "a double"),
            ty::UUID => self.skip(16, "a uuid"),
            ty::BINARY => {
                let len = self.varint()?;
                self.skip(len, "a binary")
            }
            ty::STRUCT => self.fields(depth + 1, None).map(drop),
            ty::LIST | ty::SET => {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(()); // an empty list some writers send without a type
                }
                let short = u64::from(header >> 4);
                let n = if short == 15 { self.varint()? } else { short };
                let kind = header & 0x0f;
                let n = self.count(n, per_element(kind), "list")?;
                self.elements(kind, n, depth)
            }
            ty::MAP => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                let per = per_element(types >> 4) + per_element(types & 0x0f);
                let n = self.count(n, per, "map")?;
                for _ in 0..n {
                    self.value(types >> 4, depth + 1, true)?;
                    self.value(types & 0x0f, depth + 1, true)?;
                }
                Ok(())
            }
            other => Err(format!("type {other} at byte {}", self.at)),
        }
    }

    fn elements(&mut self, kind: u8, n: u64, depth: u32) -> Result<(), String> {
        if depth + 1 > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH}"));
        }
        if matches!(kind, ty::BOOL_TRUE | ty::BOOL_FALSE) {
            return self.spend(n);
        }
        for _ in 0..n {
            self.value(kind, depth + 1, true)?;
        }
        Ok(())
    }
}

/// The fewest bytes an element of type `kind` takes, as the Parquet crate skips it.
fn per_element(kind: u8) -> u64 {
    u64::from(!matches!(kind, ty::BOOL_TRUE | ty::BOOL_FALSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A struct of field 1 (i32 −3), field 3 (i32 300), then `extra`, then stop.
    fn header(extra: &[u8]) -> Vec<u8> {
        let mut out = vec![0x15, 0x05, 0x25, 0xd8, 0x04];
        out.extend_from_slice(extra);
        out.push(0);
        out
    }

    #[test]
    fn a_struct_is_walked_to_its_stop_and_its_field_read() {
        let bytes = header(&[]);
        let walked = walk_struct(&bytes, Some(3)).unwrap();
        assert_eq!(
            walked,
            Walked {
                len: 6,
                field: Some(300)
            }
        );
        assert_eq!(walk_struct(&bytes, Some(1)).unwrap().field, Some(-3));
        assert_eq!(walk_struct(&bytes, Some(2)).unwrap().field, None);
        // Bytes after the stop are not the struct's.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(walk_struct(&longer, Some(3)).unwrap().len, 6);
        for cut in 0..bytes.len() {
            assert!(walk_struct(&bytes[..cut], Some(3)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn collections_of_every_kind_are_walked() {
        // Field 4: a list of 3 booleans (no byte each, as the Parquet crate skips them);
        // field 5 (delta 1): a struct holding a
        // binary of 2 bytes; field 6: a map of 1 i32 → double; field 100 (a full id, zigzag
        // 200): a list of 20 i64 (a long count); a boolean field; an empty untyped list.
        let mut extra = vec![0x19, 0x31];
        extra.extend_from_slice(&[0x1c, 0x18, 0x02, b'a', b'b', 0x00]);
        extra.extend_from_slice(&[0x1b, 0x01, 0x57, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]);
        extra.extend_from_slice(&[0x09, 0xc8, 0x01, 0xf6, 20]);
        extra.extend(std::iter::repeat_n(0x01, 20));
        extra.extend_from_slice(&[0x11, 0x19, 0x00]);
        let bytes = header(&extra);
        let walked = walk_struct(&bytes, Some(3)).unwrap();
        assert_eq!(walked.len, bytes.len());
        assert_eq!(walked.field, Some(300));
    }

    /// The walk keeps in step with the Parquet crate's reader, which skips a boolean element
    /// without reading a byte: the bytes after a list of booleans are the struct's next field.
    #[test]
    fn a_list_of_booleans_takes_no_bytes_as_the_parquet_crate_skips_it() {
        // Field 100: a list of 2 booleans, then the stop (and bytes after the struct).
        let bytes = [0x09, 0xc8, 0x01, 0x21, 0x00, 0xaa, 0xbb];
        assert_eq!(walk_struct(&bytes, None).unwrap().len, 5);
        // So a field 101 after it that declares 2^31 − 1 booleans is the walk's to refuse:
        // the crate would loop over them.
        let footer = [
            0x09, 0xc8, 0x01, 0x21, 0x19, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00,
        ];
        let err = walk_struct(&footer, None).unwrap_err();
        assert!(err.contains("2147483647 elements"), "{err}");
    }

    #[test]
    fn collections_longer_than_the_bytes_left_are_refused() {
        // A list of 2^31 − 1 booleans in 9 bytes, which the Parquet crate's skip loops over.
        let bools = header(&[0x09, 0xc8, 0x01, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07]);
        let err = walk_struct(&bools, Some(3)).unwrap_err();
        assert!(err.contains("2147483647 elements"), "{err}");
        // A map of as many boolean pairs.
        let map = header(&[0x0b, 0xc8, 0x01, 0xff, 0xff, 0xff, 0xff, 0x07, 0x11]);
        assert!(walk_struct(&map, Some(3)).unwrap_err().contains("map"));
        // A binary past the end, a varint of 11 bytes, a type the protocol lacks.
        assert!(walk_struct(&header(&[0x08, 0xc8, 0x01, 0x7f]), Some(3)).is_err());
        let long = header(&[
            0x06, 0xc8, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        assert!(walk_struct(&long, Some(3))
            .unwrap_err()
            .contains("10 bytes"));
        assert!(walk_struct(&header(&[0x0e]), Some(3))
            .unwrap_err()
            .contains("type 14"));
        // Lists of 14 booleans, each within the values left, more values than 2 a byte.
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend_from_slice(&[0x19, 0xe1]);
        }
        let err = walk_struct(&header(&many), Some(3)).unwrap_err();
        assert!(err.contains("a list of 14 elements at byte 13"), "{err}");
        // Structs nested 65 deep.
        let mut deep = vec![0x1c; 65];
        deep.extend(std::iter::repeat_n(0, 66));
        assert!(walk_struct(&deep, Some(3)).unwrap_err().contains("deeper"));
    }
}
