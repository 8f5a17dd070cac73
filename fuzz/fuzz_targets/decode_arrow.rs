//! An Arrow IPC answer decoded whole, as the npm client decodes what a server sends, and
//! located from its headers alone (the client's fast path for a one-label columns answer).
#![no_main]

use std::borrow::Cow;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pocaduck_edge_core::answer::decode_arrow;
use pocaduck_edge_core::ipc::columns_layout;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(layout)) = columns_layout(data.len(), |r| Cow::Borrowed(&data[r])) {
        for batch in &layout.batches {
            for start in batch.columns {
                assert!(start + batch.rows * 4 <= data.len(), "a column past the answer");
            }
        }
    }
    let Ok(labelled) = decode_arrow(Bytes::copy_from_slice(data)) else {
        return;
    };
    for run in &labelled.runs {
        let values = labelled.int64(run.rows.clone());
        assert_eq!(values.len(), run.rows.len() * labelled.dims);
        let _ = labelled.bbox(run.rows.clone());
    }
});
