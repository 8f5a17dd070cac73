//! The WebAssembly half of the pocaduck-edge client (npm package `pocaduck-edge`).
//!
//! Two things, no IO: [`decode_arrow`] and [`decode_parquet`] turn a whole answer into
//! typed arrays ([`Decoded`]), and [`EdgeReader`] plans and decodes serverless reads of an
//! edge-layout dataset (manifest, footers, index pages, coalesced data ranges) whose bytes
//! the JS half fetches. Labels cross the boundary as decimal strings or `BigUint64Array`s,
//! never as JS numbers.

mod decoded;
mod reader;

use bytes::Bytes;
use wasm_bindgen::prelude::*;

pub use decoded::Decoded;
pub use reader::EdgeReader;

/// Decodes an Arrow IPC stream of labelled points (the API's `format=arrow`).
#[wasm_bindgen(js_name = decodeArrow)]
pub fn decode_arrow(bytes: Vec<u8>) -> Result<Decoded, JsError> {
    let labelled = pocaduck_edge_core::answer::decode_arrow(Bytes::from(bytes))?;
    Ok(Decoded::new(labelled))
}

/// Decodes a Parquet file of labelled points (the API's `format=parquet`).
#[wasm_bindgen(js_name = decodeParquet)]
pub fn decode_parquet(bytes: Vec<u8>) -> Result<Decoded, JsError> {
    let labelled = pocaduck_edge_core::answer::decode_parquet(Bytes::from(bytes))?;
    Ok(Decoded::new(labelled))
}
