//! Reading neuron point clouds, apart from HTTP.
//!
//! A host implements three small IO traits — [`RangeStore`] (ranged reads of a dataset's
//! files), [`Clock`] and [`Upstream`] (one HTTP request to VastDB, its reply streamed) — and
//! this crate reads through them:
//!
//! * [`Dataset`]: an edge-layout dataset (manifest, footers, index pages, point chunks);
//! * [`VastSource`]: a VastDB table served as a dataset, through [`VastClient`], which
//!   signs each request, retries `SlowDown`, and drives queries to completion.
//!
//! Failures are [`ReadError`]s, by category (not found, bad request, unavailable, upstream
//! failed, timed out, too large, internal); no HTTP status is chosen here. The planning and
//! decoding are `pocaduck-edge-core`'s and the VastDB protocol `pocaduck-edge-vastdb`'s; this
//! crate adds the fetching between them, and the one boundary where their decoding of
//! stored bytes and VastDB replies runs ([`untrusted::decode_untrusted`]: a dependency's
//! panic on malformed bytes becomes an error of those bytes). No runtime, no sockets: it builds for
//! `wasm32-unknown-unknown`, where the traits are `?Send`.

// On wasm32 the IO traits are not `Send` (one thread), and the `Arc`s that share readers
// between a native host's tasks hold them there too.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

pub mod dataset;
pub mod error;
pub mod store;
pub mod timing;
pub mod untrusted;
pub mod upstream;
pub mod vast;
pub mod vast_client;

pub use dataset::{Dataset, Loaded};
pub use error::ReadError;
pub use store::{dataset_name, Clock, MaybeSend, RangeStore, StoreError};
pub use timing::Timing;
pub use upstream::{ByteStream, HostBody, PassOn, Task, Upstream, UpstreamError, UpstreamResponse};
pub use vast::{Layout, VastConfig, VastSource};
pub use vast_client::VastClient;
