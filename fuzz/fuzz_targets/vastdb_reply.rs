//! A VastDB `GET ?data` reply de-framed, fed in pieces as it arrives.
//!
//! Input: one byte (bit 0: the schema, the points list of PoCADuck's layout or the columnar
//! layout's columns; bits 1–3: the piece size; bits 4–7: sub-splits − 1), then the reply.
#![no_main]

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use libfuzzer_sys::fuzz_target;
use pocaduck_edge_vastdb::deframe::Limits;
use pocaduck_edge_vastdb::ReplyDecoder;

fuzz_target!(|data: &[u8]| {
    let Some((&first, reply)) = data.split_first() else {
        return;
    };
    let schema = if first & 1 == 0 {
        Schema::new(vec![Field::new_list(
            "points",
            Field::new("item", DataType::Int64, true),
            true,
        )])
    } else {
        Schema::new(vec![
            Field::new("label", DataType::UInt64, true),
            Field::new("x", DataType::Int32, true),
            Field::new("y", DataType::Int32, true),
            Field::new("z", DataType::Int32, true),
        ])
    };
    let piece = usize::from((first >> 1) & 7) * 97 + 1;
    let sub_splits = u32::from(first >> 4) + 1;
    let limits = Limits {
        max_message_bytes: 1 << 20,
        max_round_bytes: 4 << 20,
    };
    let Ok(mut decoder) = ReplyDecoder::new(Arc::new(schema), sub_splits, limits) else {
        return;
    };
    let mut events = Vec::new();
    for chunk in reply.chunks(piece) {
        if decoder.push(chunk, &mut events).is_err() {
            return;
        }
        events.clear();
    }
    let _ = decoder.finish();
});
