//! The boundary where this layer decodes bytes it did not make: a dataset's stored Parquet
//! (footers, point chunks, blocks) and VastDB's replies.
//!
//! The decoders answer malformed bytes with errors, and check what their dependencies
//! would panic on; some panics lie inside page decoding that no check before it covers
//! (the Parquet crate asserts on a run-length header of more than 10 bytes, and, where
//! overflow checks are on, subtracts past zero on a delta page that claims no values). Natively
//! (built to unwind) such a panic is caught here and becomes the error of the bytes that
//! caused it, so the request gets an error answer and the server serves on. A build that
//! aborts on panic (the browser's) has no such boundary: the npm client handles the trap.

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `decode` over bytes from a store or VastDB. Its error, or a panic inside it, comes
/// back as the text for the caller's [`crate::ReadError`]. Whatever `decode` changed is to
/// be dropped after a panic (it may be half done).
pub fn decode_untrusted<T, E: Display>(decode: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(decode)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!("a decoder failed on malformed bytes ({message})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use pocaduck_edge_core::answer::decode_parquet;

    use super::*;

    #[test]
    fn errors_pass_and_panics_become_errors() {
        assert_eq!(decode_untrusted(|| Ok::<_, String>(3)), Ok(3));
        assert_eq!(
            decode_untrusted(|| Err::<(), _>("short")),
            Err("short".into())
        );
        let err = decode_untrusted(|| -> Result<(), String> { panic!("an assertion") });
        assert_eq!(
            err,
            Err("a decoder failed on malformed bytes (an assertion)".into())
        );
    }

    /// The kept Parquet answers that make the Parquet crate panic (`panic-*.bin` beside
    /// core's hostile tests) are errors through the boundary.
    #[test]
    fn kept_parquet_panics_are_errors() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../core/tests/hostile/decode_parquet"
        );
        let mut kept = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("panic-") {
                continue;
            }
            let bytes = Bytes::from(std::fs::read(&path).unwrap());
            let err = decode_untrusted(|| decode_parquet(bytes)).unwrap_err();
            assert!(
                err.starts_with("a decoder failed on malformed bytes"),
                "{name}: {err}"
            );
            kept += 1;
        }
        assert!(kept > 0, "no kept input that makes the Parquet crate panic");
    }
}
