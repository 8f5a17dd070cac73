//! PoCADuck's `Query` API in Rust: the labels, point counts, points and blocks of a
//! neuron point-cloud dataset, with PoCADuck's semantics.
//!
//! A [`StorageConfig`] (PoCADuck's field names) says where the data is: an edge-layout
//! dataset in a local directory, on S3, GCS or Azure, or on any static HTTP host that
//! answers range requests, or a VastDB table (the fields of PoCADuck's `dev` branch). A
//! [`Query`] then answers as PoCADuck's does:
//!
//! * [`Query::get_labels`]: every label, ascending (`u64`, exact above 2^53);
//! * [`Query::get_point_count`]: the number of distinct points of a label (0 if unknown);
//! * [`Query::get_points`]: its distinct points, `(N, D)` int64 in `np.unique(axis=0)`
//!   order (`(0, D)` if unknown), through a small cache of recent labels;
//! * [`Query::get_blocks_for_label`]: the PoCADuck blocks that held it, when recorded;
//! * `…_timed` variants that also return a [`Timing`] (the seed's `timing=True`).
//!
//! ```no_run
//! use pocaduck_edge_query::{Query, StorageConfig};
//!
//! # fn main() -> Result<(), pocaduck_edge_query::Error> {
//! let query = Query::new(StorageConfig::new("/data/hemibrain-da1"))?;
//! let labels = query.get_labels()?;
//! let label = labels[0];
//! println!("label {label} has {} points", query.get_point_count(label)?);
//! println!("in blocks {:?}", query.get_blocks_for_label(label)?);
//! let points = query.get_points(label)?;
//! println!("shape {:?}, first point {:?}", points.shape(), points.row(0));
//! let (_, timing) = query.get_points_timed(label)?;
//! println!("{timing}");
//! query.close();
//! # Ok(())
//! # }
//! ```
//!
//! [`Query`] is synchronous, as PoCADuck is: it owns a small tokio runtime and works from
//! any thread. [`AsyncQuery`] is the same API for async code.
//!
//! The reading itself is `pocaduck-edge-read`'s (the same code the HTTP API runs):
//! `Dataset` for edge-layout datasets and `VastSource` for VastDB. This crate adds the
//! native IO those need, which the `pocaduck-edge` server uses too: [`ObjectRanges`] (any
//! `object_store` as a range store), `local::LocalRanges` (a local directory as a file
//! server reads it), [`SystemClock`] and [`HttpUpstream`] (reqwest for
//! VastDB). It is native only (tokio, object_store, reqwest): the wasm builds use `core`
//! and `read` directly.

mod config;
mod error;
mod http_credentials;
#[cfg(unix)]
pub mod local;
mod query;
pub mod store;
pub mod upstream;

pub use config::{StorageConfig, StorageType, DEFAULT_DIMS, DEFAULT_VASTDB_TABLE};
pub use error::{Error, Result};
pub use http_credentials::BEARER_TOKEN;
pub use pocaduck_edge_read::vast::Layout;
pub use pocaduck_edge_read::ReadError;
pub use query::{AsyncQuery, Points, Query, Timing, DEFAULT_CACHE_SIZE};
pub use store::{ObjectRanges, SystemClock};
pub use upstream::HttpUpstream;
