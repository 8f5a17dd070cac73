//! The WebAssembly half of the pocaduck-edge client (npm package `pocaduck-edge`).
//!
//! Two things, no IO: [`decode_arrow`] and [`decode_parquet`] turn a whole answer into
//! typed arrays ([`Decoded`]), and [`EdgeReader`] plans and decodes serverless reads of an
//! edge-layout dataset (manifest, footers, index pages, coalesced data ranges) whose bytes
//! the JS half fetches. Labels cross the boundary as decimal strings or `BigUint64Array`s,
//! never as JS numbers.

mod decoded;
mod js_columns;
mod reader;

use std::borrow::Cow;

use bytes::Bytes;
use js_sys::Uint8Array;
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
