//! The crate's error type.

use pocaduck_edge_read::ReadError;

/// What went wrong in a query or while opening a dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The [`StorageConfig`](crate::StorageConfig) is invalid (the message names the field).
    #[error("invalid storage config: {0}")]
    Config(String),
    /// A dataset location could not be opened (a bad URL, a missing directory, a store
    /// that refused its options).
    #[error("opening {location}: {message}")]
    Open {
        /// The location, as given (never holds credentials: they travel as options).
        location: String,
        /// What failed.
        message: String,
    },
    /// Reading failed: the dataset or table is unavailable, VastDB failed or timed out, or
    /// data is corrupt. The category and its details are the reading crate's, the same the
    /// read API answers from.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The HTTP client or the async runtime could not be set up, or a query task died.
    #[error("{0}")]
    Runtime(String),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
