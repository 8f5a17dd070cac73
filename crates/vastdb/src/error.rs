//! The one error type of the protocol crate.

/// What went wrong while building a request or reading a reply.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint is not an `http://` or `https://` URL with a host.
    #[error("invalid VastDB endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: String,
    },
    /// A bucket, schema, table or column name the protocol cannot carry.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A column type the query encoder or reply assembler does not handle.
    #[error("unsupported column type for {column:?}: {data_type}")]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its Arrow type, rendered.
        data_type: String,
    },
    /// A query names a column that is not in the table's schema.
    #[error("unknown column {0:?}")]
    UnknownColumn(String),
    /// A predicate literal does not fit the column it is compared with.
    #[error("literal {literal} does not fit column {column:?} of type {data_type}")]
    LiteralType {
        /// The column.
        column: String,
        /// Its Arrow type, rendered.
        data_type: String,
        /// The literal, rendered.
        literal: String,
    },
    /// SigV4 signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A flatbuffer body or reply that does not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// An Arrow IPC message inside a reply that does not decode.
    #[error("malformed Arrow IPC in sub-split {sub_split}: {source}")]
    Ipc {
        /// The sub-split (stream id) it came on.
        sub_split: u32,
        /// The Arrow error.
        source: arrow_schema::ArrowError,
    },
    /// The server reported a failed query stream (`0xFFFFFFFD`).
    #[error("VastDB query failed on the server (error code {code})")]
    QueryFailed {
        /// The server's error code.
        code: u64,
    },
    /// The reply ended in the middle of a chunk or an IPC stream.
    #[error("truncated query reply: {0}")]
    Truncated(String),
    /// The reply carries more than the decoder accepts (a message or a round too large).
    #[error("query reply exceeds a limit: {0}")]
    LimitExceeded(String),
    /// A query's resume point that names no row of the query's sub-splits.
    #[error("invalid resume point: {0}")]
    InvalidResume(String),
    /// A query that does not finish: too many requests, or requests that make no progress.
    #[error("query did not complete: {0}")]
    NoProgress(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
