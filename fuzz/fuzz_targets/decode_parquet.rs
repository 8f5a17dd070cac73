//! A Parquet answer (or a points file) decoded whole, as the npm client decodes what a
//! server sends: every run of the result read back.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pocaduck_edge_core::answer::decode_parquet;

fuzz_target!(|data: &[u8]| {
    let Ok(labelled) = decode_parquet(Bytes::copy_from_slice(data)) else {
        return;
    };
    for run in &labelled.runs {
        let values = labelled.int64(run.rows.clone());
        assert_eq!(values.len(), run.rows.len() * labelled.dims);
        let _ = labelled.bbox(run.rows.clone());
    }
});
