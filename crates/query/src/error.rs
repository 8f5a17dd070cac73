//! The crate's error type.

use pocaduck_edge_proxy::ApiError;

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
    /// The read API answered with an error: the dataset or table is unavailable, VastDB
    /// failed or timed out, or data is corrupt. Status, code and message are the API's.
    #[error("{message} ({status} {code})")]
    Api {
        /// The HTTP status the API would answer.
        status: http::StatusCode,
        /// The API's stable error code, e.g. `dataset_unavailable` or `upstream_error`.
        code: &'static str,
        /// What went wrong, for people.
        message: String,
    },
    /// The HTTP client or the async runtime could not be set up, or a query task died.
    #[error("{0}")]
    Runtime(String),
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api {
            status: e.status,
            code: e.code,
            message: e.message,
        }
    }
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
