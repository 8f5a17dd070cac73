//! The VastDB tabular protocol as the official Python SDK speaks it, sans-IO: bytes and times
//! in, requests, record batches and errors out.
//!
//! * [`request`]: the calls (version probe, transactions, listings, DDL, insert) as
//!   [`request::Request`] values, and [`sign`] for SigV4 with the time passed in;
//! * [`query`]: the `GET ?data` body (projection and filter), [`paging`]: the request loop
//!   over splits, sub-splits and resume points;
//! * [`deframe`]: the reply's multiplexed IPC streams re-assembled into record batches;
//! * [`reply`]: the metadata replies; [`fbs`]: the generated flatbuffers.
//!
//! No IO and no clock, so the native server, the Worker and the wasm client can all drive it.
//! It builds for `wasm32-unknown-unknown`.

pub mod deframe;
pub mod error;
pub mod fbs;
pub mod frame;
pub mod ipc;
pub mod paging;
pub mod query;
pub mod reply;
pub mod request;
pub mod schema;
pub mod sign;

pub use deframe::{Event, ReplyDecoder, INVALID_ROW_ID};
pub use error::{Error, Result};
pub use paging::{Progress, QueryCursor, QuerySettings};
pub use query::{Condition, Filter, Op, Value};
pub use request::{Endpoint, Request, TablePath};
pub use sign::{sign, Credentials};
