//! `Server-Timing`: where a request's time went.

/// Accumulated milliseconds per phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timing {
    /// Index and footer look-ups.
    pub index: f64,
    /// Byte fetches from the store.
    pub fetch: f64,
    /// Parquet decoding.
    pub decode: f64,
    /// Encoding the response.
    pub encode: f64,
    /// Bytes fetched from the store.
    pub bytes_fetched: u64,
    /// Requests made to the store.
    pub requests: u64,
    /// Index pages found in the dataset's cache.
    pub cache_hits: u64,
    /// Index pages read from the store, not found in the cache.
    pub cache_misses: u64,
}

impl Timing {
    /// The `Server-Timing` header value.
    pub fn header(&self) -> String {
        format!(
            "index;dur={:.3}, fetch;dur={:.3};desc=\"{} requests, {} bytes\", decode;dur={:.3}, encode;dur={:.3}",
            self.index, self.fetch, self.requests, self.bytes_fetched, self.decode, self.encode
        )
    }
}
