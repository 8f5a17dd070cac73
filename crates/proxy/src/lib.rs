//! The pocaduck-edge read API as a host-agnostic service.
//!
//! [`Service::handle`] turns an HTTP request into a response: routing, options, output
//! formats (Arrow IPC, Parquet, npy, JSON), raw file ranges with ETags, CORS, limits,
//! errors and `Server-Timing`. It reaches storage only through [`store::RangeStore`] and
//! time only through [`store::Clock`], and VastDB only through [`upstream::Upstream`], which
//! each host (native server, Worker) implements;
//! no tokio, no filesystem, and it builds for `wasm32-unknown-unknown`.

pub mod body;
pub mod cors;
pub mod dataset;
pub mod error;
pub mod files;
pub mod formats;
pub mod options;
pub mod service;
pub mod store;
pub mod timing;
pub mod upstream;
pub mod vast;
pub mod vast_client;

pub use body::Body;
pub use error::ApiError;
pub use service::{Limits, Service, ServiceConfig};
pub use store::{Clock, RangeStore, StoreError};
