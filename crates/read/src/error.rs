//! What can go wrong while reading, by category. Hosts choose a status from the category
//! (the proxy's `ApiError` does, in one place); the fields carry the details for logs.

use crate::upstream::UpstreamError;

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No such dataset, label or file.
    #[error("{what} not found")]
    NotFound {
        /// What was asked for, e.g. `label 5 in dataset hemibrain`.
        what: String,
    },
    /// The request cannot be read as asked (a malformed filter, name or table path).
    #[error("bad request: {message}")]
    BadRequest {
        /// What is wrong with it.
        message: String,
    },
    /// The dataset cannot be served: its manifest, index or data is missing, short or
    /// corrupt, or its store failed.
    #[error("dataset {dataset} is unavailable: {detail}")]
    Unavailable {
        /// The dataset's name.
        dataset: String,
        /// What failed (may name files, paths and store messages).
        detail: String,
    },
    /// The upstream (VastDB) answered with an error, broke off, or sent what does not decode.
    #[error("the upstream failed: {detail}")]
    UpstreamFailed {
        /// What it answered or what broke (may name the request, bucket, schema and table).
        detail: String,
    },
    /// The upstream did not answer, or send its next bytes, in time.
    #[error("the upstream timed out: {detail}")]
    TimedOut {
        /// What was being waited for.
        detail: String,
    },
    /// Over a limit.
    #[error("too large: {message}")]
    TooLarge {
        /// Which limit, and by how much.
        message: String,
    },
    /// A fault of ours: a broken invariant, or a request we built that could not be signed.
    #[error("internal error: {detail}")]
    Internal {
        /// What broke.
        detail: String,
    },
}

impl ReadError {
    /// [`ReadError::BadRequest`] saying `message`.
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        Self::BadRequest {
            message: message.to_string(),
        }
    }

    /// [`ReadError::Unavailable`] of dataset `dataset`, because of `detail`.
    pub fn unavailable(dataset: &str, detail: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            dataset: dataset.to_owned(),
            detail: detail.to_string(),
        }
    }

    /// [`ReadError::UpstreamFailed`] because of `detail`.
    pub fn upstream(detail: impl std::fmt::Display) -> Self {
        Self::UpstreamFailed {
            detail: detail.to_string(),
        }
    }

    /// [`ReadError::Internal`] because of `detail`.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal {
            detail: detail.to_string(),
        }
    }
}

impl From<UpstreamError> for ReadError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Timeout(detail) => Self::TimedOut { detail },
            UpstreamError::Connection(m) => Self::upstream(format!("connection failed: {m}")),
        }
    }
}
