//! The pocaduck-edge read API as a host-agnostic service.
//!
//! [`Service::handle`] turns an HTTP request into a response: routing, options, output
//! formats (Arrow IPC, Parquet, npy, JSON), raw file ranges with ETags, access control
//! (public datasets, bearer tokens, signed URLs) and CORS per dataset, limits,
//! errors and `Server-Timing`. The reading is `pocaduck-edge-read`'s, through the IO traits
//! each host (native server, Worker) implements ([`RangeStore`], [`Clock`] and the VastDB
//! `Upstream`); this crate chooses statuses ([`ApiError`]), bounds the bytes answers hold
//! ([`budget`]) and encodes answers. No async runtime, no filesystem: it builds for
//! `wasm32-unknown-unknown`.

// On wasm32 the IO traits are not `Send` (one thread), and the `Arc`s that share readers
// between a native host's tasks hold them there too.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

pub mod access;
pub mod body;
pub mod budget;
pub mod cors;
pub mod error;
pub mod files;
pub mod formats;
pub mod log;
pub mod options;
pub mod request;
pub mod service;

pub use access::{Access, AccessConfig, AccessError};
pub use body::Body;
pub use error::ApiError;
pub use log::{RequestLog, RequestRecord};
pub use pocaduck_edge_read::{Clock, RangeStore, StoreError};
pub use service::{Limits, Service, ServiceConfig};
