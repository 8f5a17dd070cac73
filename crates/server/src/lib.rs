//! The `pocaduck-edge` server as a library: the routes `pocaduck-edge serve` mounts, for
//! tests and other hosts to mount the same thing.
//!
//! [`app`] builds the read API ([`pocaduck_edge_proxy::Service`] over the datasets and
//! VastDB table of a [`ServeOptions`]) as an [`axum::Router`], with the static site beside
//! it when the options name one; [`serve::serve`] listens and runs it.

mod connections;
mod metrics;
pub mod serve;

pub use connections::{ConnectionFlags, ConnectionLimits};

pub use serve::{app, ServeOptions, VastOptions};
