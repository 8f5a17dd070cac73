//! The WebAssembly half of the pocaduck-edge client (npm package `pocaduck-edge`).
//!
//! Two things, no IO: [`decode_arrow`], [`decode_parquet`] and [`decode_rows`] turn a whole
//! answer into typed arrays ([`Decoded`]), and [`EdgeReader`] plans and decodes serverless reads of an
//! edge-layout dataset (manifest, footers, index pages, coalesced data ranges) whose bytes
//! the JS half fetches. Labels cross the boundary as decimal strings or `BigUint64Array`s,
//! never as JS numbers.

mod decoded;
mod js_columns;
mod reader;

use std::borrow::Cow;

use arrow_buffer::ScalarBuffer;
use bytes::Bytes;
use js_sys::{BigInt64Array, BigUint64Array, Uint8Array};
use pocaduck_edge_core::answer::{LabelRun, Labelled, Storage};
use wasm_bindgen::prelude::*;

use js_columns::JsColumns;

pub use decoded::Decoded;
pub use reader::EdgeReader;

/// Decodes an Arrow IPC stream of labelled points (the API's `format=arrow`). A one-label
/// `shape=columns` answer of int32 columns is left where it is and read from `bytes` as
/// its outputs are made, so `bytes` must not change until the `Decoded` is freed; any other
/// answer is copied into wasm memory and decoded there.
#[wasm_bindgen(js_name = decodeArrow)]
pub fn decode_arrow(bytes: Uint8Array) -> Result<Decoded, JsError> {
    if bytes.byte_offset() % 4 == 0 {
        let read = |r: std::ops::Range<usize>| {
            Cow::Owned(bytes.subarray(r.start as u32, r.end as u32).to_vec())
        };
        if let Some(layout) =
            pocaduck_edge_core::ipc::columns_layout(bytes.length() as usize, read)?
        {
            return Ok(Decoded::in_js(JsColumns::new(bytes, layout)));
        }
    }
    let labelled = pocaduck_edge_core::answer::decode_arrow(Bytes::from(bytes.to_vec()))?;
    Ok(Decoded::new(labelled))
}

/// Decodes a Parquet file of labelled points (the API's `format=parquet`).
#[wasm_bindgen(js_name = decodeParquet)]
pub fn decode_parquet(bytes: Vec<u8>) -> Result<Decoded, JsError> {
    let labelled = pocaduck_edge_core::answer::decode_parquet(Bytes::from(bytes))?;
    Ok(Decoded::new(labelled))
}

/// Points decoded elsewhere (the VastDB pass-through module): `counts[i]` rows of `dims`
/// values for `labels[i]`, one label after another in `values`.
#[wasm_bindgen(js_name = decodeRows)]
pub fn decode_rows(
    labels: BigUint64Array,
    counts: Vec<u32>,
    dims: usize,
    values: BigInt64Array,
) -> Result<Decoded, JsError> {
    let labels = labels.to_vec();
    let total: usize = counts.iter().map(|&c| c as usize).sum();
    if labels.len() != counts.len() || dims == 0 || total * dims != values.length() as usize {
        return Err(JsError::new(
            "labels, counts and values do not describe the same rows",
        ));
    }
    let mut start = 0;
    let runs = labels
        .into_iter()
        .zip(counts)
        .map(|(label, count)| {
            let rows = start..start + count as usize;
            start = rows.end;
            LabelRun {
                label,
                rows,
                bbox_hint: None,
            }
        })
        .collect();
    Ok(Decoded::new(Labelled {
        dims,
        points: Storage::Rows(vec![ScalarBuffer::from(values.to_vec())]),
        runs,
    }))
}
