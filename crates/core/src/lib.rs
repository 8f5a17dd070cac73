//! Neuron point clouds for the edge: the data model, the edge layout (format 2) with its
//! writer and reader, range planning, and decoding into typed buffers.
//!
//! This crate does no IO and reads no clock: bytes, manifests and index pages go in;
//! plans, Parquet files (through [`write::FileSink`]) and `N × D` int64 arrays come out.
//! Hosts (the native server, the Worker, the wasm client) drive it. It builds for
//! `wasm32-unknown-unknown`.

pub mod answer;
pub mod cloud;
pub mod columns;
pub mod encoding;
pub mod error;
pub mod index;
pub mod integrity;
pub mod ipc;
pub mod label;
pub mod manifest;
pub mod metadata;
pub mod neuroglancer;
pub mod plan;
pub mod point_table;
pub mod read;
pub mod reader;
mod thrift;
#[cfg(feature = "write")]
pub mod write;

pub use cloud::PointCloud;
pub use error::{Error, Result};
pub use index::{IndexEntry, IndexPage};
pub use label::parse_label;
pub use manifest::Manifest;
