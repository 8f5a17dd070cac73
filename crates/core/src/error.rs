//! The one error type of this crate.

/// What went wrong while reading, writing or planning an edge-layout dataset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A label given as text is not a decimal `u64`.
    #[error("label {text:?} is not an unsigned 64-bit integer ({reason})")]
    BadLabel {
        /// The text as given.
        text: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The manifest is not an edge-layout manifest this crate reads.
    #[error("manifest: {0}")]
    Manifest(String),
    /// An index page is malformed.
    #[error("label index page: {0}")]
    Index(String),
    /// Bytes of the dataset do not match the hash the layout records for them: they changed
    /// since the manifest was written, or are corrupt.
    #[error("{what} does not match its recorded hash: changed or corrupt")]
    Corrupt {
        /// What was checked: a file, an index page, a footer or a row group.
        what: String,
    },
    /// A Parquet file of the dataset could not be decoded.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The file's path inside the dataset.
        path: String,
        /// The decoder's error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow IPC message is malformed (checked before arrow-ipc reads it).
    #[error("arrow: {0}")]
    Ipc(#[from] pocaduck_edge_ipc_check::Malformed),
    /// An Arrow buffer could not be built or encoded.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Input points are not a whole number of `dims`-wide rows, or dims differ.
    #[error("points: {0}")]
    Points(String),
    /// Writing the dataset failed.
    #[error("writing {path}: {message}")]
    Write {
        /// The file being written.
        path: String,
        /// What failed.
        message: String,
    },
    /// Labels were pushed out of order.
    #[error("labels must be pushed in strictly ascending order: {label} after {previous}")]
    LabelOrder {
        /// The label pushed.
        label: u64,
        /// The label before it.
        previous: u64,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
