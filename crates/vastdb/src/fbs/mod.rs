//! The flatbuffers of the tabular protocol: Arrow's `Schema`, VAST's compute IR (the query
//! body) and the `tabular` listings, statistics and DDL bodies.
//!
//! `generated.rs` is made by `planus` from `fbs/*.fbs`; regenerate it with
//! `scripts/gen-vastdb-fbs.sh` after changing a schema and never edit it by hand.

#[allow(unsafe_code, missing_docs, unreachable_pub, clippy::all, unused_imports, dead_code)]
#[rustfmt::skip]
mod generated;

pub use generated::org::apache::arrow::computeir::flatbuf as ir;
pub use generated::org::apache::arrow::flatbuf as arrow;
pub use generated::tabular;
