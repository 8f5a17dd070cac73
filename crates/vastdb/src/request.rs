//! Requests of the tabular protocol: a method, a path under the endpoint, a command word with
//! its parameters, the `tabular-*` headers and a body. Builders for each call live here; the
//! query (`GET ?data`) is in [`crate::query`], signing in [`crate::sign`].

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use bytes::Bytes;
use http::Method;

use crate::error::{Error, Result};
use crate::fbs::tabular;

/// Value of `tabular-api-version-id` on every tabular request.
pub const API_VERSION: &str = "1";
/// Value of `tabular-client-name` on every tabular request.
pub const CLIENT_NAME: &str = "tabular-api";

/// A VastDB endpoint: `http[s]://host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Endpoint {
    /// Parses `http://host[:port]` or `https://host[:port]` (a trailing `/` is allowed; no path).
    pub fn parse(endpoint: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = endpoint.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => "http",
            Some("https") => "https",
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("an endpoint has no path or query"));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port: uri.port_u16(),
        })
    }

    /// The host as SigV4 signs it and as the `Host` header carries it: `host`, or `host:port`
    /// unless the port is absent or 80/443.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) if port != 80 && port != 443 => format!("{}:{port}", self.host),
            _ => self.host.clone(),
        }
    }

    /// The full URL of `request` at this endpoint.
    pub fn url(&self, request: &Request) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = if request.query.is_empty() {
            String::new()
        } else {
            format!("?{}", request.query)
        };
        format!(
            "{}://{}{port}{}{query}",
            self.scheme, self.host, request.path
        )
    }
}

/// One tabular request, unsigned until [`crate::sign::sign`] adds its SigV4 headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method (`GET ?data` carries a body).
    pub method: Method,
    /// The path: `/`, `/bucket`, `/bucket/schema` or `/bucket/schema/table`, unescaped.
    pub path: String,
    /// The query string without `?`: the command word, then `&k=v` sorted by key.
    pub query: String,
    /// Headers to send besides `Host` and `Content-Length`, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Bytes,
}

impl Request {
    fn new(method: Method, path: String, command: &str) -> Self {
        Self {
            method,
            path,
            query: command.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A request inside transaction `txid` (0 to begin one): the common tabular headers.
    fn tabular(method: Method, path: String, command: &str, txid: u64) -> Self {
        let mut request = Self::new(method, path, command);
        request.header("tabular-txid", txid.to_string());
        request.header("tabular-api-version-id", API_VERSION);
        request.header("tabular-client-name", CLIENT_NAME);
        request
    }

    pub(crate) fn header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_owned(), value.into()));
    }

    /// The value of header `name` (ASCII case-insensitive), if present.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A table's place: bucket, schema path (`parent/child` for nested schemas) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePath {
    bucket: String,
    schema: String,
    table: String,
}

impl TablePath {
    /// Checks the three names (see [`check_name`]).
    pub fn new(bucket: &str, schema: &str, table: &str) -> Result<Self> {
        check_name(bucket, false)?;
        check_name(schema, true)?;
        check_name(table, false)?;
        Ok(Self {
            bucket: bucket.to_owned(),
            schema: schema.to_owned(),
            table: table.to_owned(),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The schema path.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// `/bucket/schema/table`.
    pub fn path(&self) -> String {
        format!("/{}/{}/{}", self.bucket, self.schema, self.table)
    }
}

impl std::fmt::Display for TablePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.bucket, self.schema, self.table)
    }
}

/// Refuses names the protocol cannot carry unescaped: the SDK puts names into the path as
/// they are, so only `[A-Za-z0-9_.~-]` (and `/` between the parts of a schema path) is safe.
pub fn check_name(name: &str, nested: bool) -> Result<()> {
    let invalid = |reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let parts: Vec<&str> = if nested {
        name.split('/').collect()
    } else {
        vec![name]
    };
    for part in parts {
        if part.is_empty() {
            return Err(invalid("empty name or path segment"));
        }
        if part == "." || part == ".." {
            return Err(invalid("`.` and `..` are not names"));
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'~' | b'-'))
        {
            return Err(invalid("only A-Z, a-z, 0-9 and _ . ~ - are allowed"));
        }
    }
    Ok(())
}

/// Which child names a listing returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameFilter {
    /// Exactly this name (`tabular-name-exact-match`).
    Exact(String),
    /// Names starting with this prefix, `""` for all (`tabular-name-prefix`).
    Prefix(String),
}

/// A page of a listing: at most `max_keys` entries after continuation key `next_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Page size (`tabular-max-keys`).
    pub max_keys: u32,
    /// Continuation key from the previous page's `tabular-next-key`, 0 for the first.
    pub next_key: u64,
}

fn listing_headers(request: &mut Request, filter: &NameFilter, page: Page) {
    request.header("tabular-max-keys", page.max_keys.to_string());
    request.header("tabular-next-key", page.next_key.to_string());
    match filter {
        NameFilter::Exact(name) => request.header("tabular-name-exact-match", name.clone()),
        NameFilter::Prefix(prefix) => request.header("tabular-name-prefix", prefix.clone()),
    }
    request.header("tabular-list-count-only", "False");
}

/// `GET /?transaction` with `tabular-get-vast-version: true`: the version probe. The reply's
/// `Server: vast A.B.C.D` header gives the version (see [`crate::reply::parse_server_version`]).
pub fn version_probe() -> Request {
    let mut request = Request::new(Method::GET, "/".to_owned(), "transaction");
    request.header("tabular-get-vast-version", "true");
    request
}

/// `POST /?transaction`: begins a transaction; the reply's `tabular-txid` header is its id.
pub fn begin_transaction() -> Request {
    Request::tabular(Method::POST, "/".to_owned(), "transaction", 0)
}

/// `PUT /?transaction`: commits transaction `txid`.
pub fn commit_transaction(txid: u64) -> Request {
    Request::tabular(Method::PUT, "/".to_owned(), "transaction", txid)
}

/// `DELETE /?transaction`: rolls transaction `txid` back.
pub fn rollback_transaction(txid: u64) -> Request {
    Request::tabular(Method::DELETE, "/".to_owned(), "transaction", txid)
}

/// `HEAD /bucket`: 200 when the bucket exists, 404 otherwise.
pub fn head_bucket(bucket: &str) -> Result<Request> {
    check_name(bucket, false)?;
    Ok(Request::new(Method::HEAD, format!("/{bucket}"), ""))
}

/// `GET /bucket[/parent]?schema`: the schemas directly under `parent` (the bucket's root when
/// `None`). The reply body is a `ListSchemasResponse` (see [`crate::reply::parse_schemas`]).
pub fn list_schemas(
    txid: u64,
    bucket: &str,
    parent: Option<&str>,
    filter: &NameFilter,
    page: Page,
) -> Result<Request> {
    check_name(bucket, false)?;
    let path = match parent {
        Some(parent) => {
            check_name(parent, true)?;
            format!("/{bucket}/{parent}")
        }
        None => format!("/{bucket}"),
    };
    let mut request = Request::tabular(Method::GET, path, "schema", txid);
    listing_headers(&mut request, filter, page);
    Ok(request)
}

/// `POST /bucket/schema?schema`: creates a schema (its parent must exist).
pub fn create_schema(txid: u64, bucket: &str, schema: &str) -> Result<Request> {
    check_name(bucket, false)?;
    check_name(schema, true)?;
    let mut request = Request::tabular(Method::POST, format!("/{bucket}/{schema}"), "schema", txid);
    let mut builder = planus::Builder::new();
    let body = tabular::CreateSchemaRequest {
        properties: Some(String::new()),
    };
    request.body = Bytes::copy_from_slice(builder.finish(&body, None));
    Ok(request)
}

/// `DELETE /bucket/schema?schema`: drops an empty schema.
pub fn drop_schema(txid: u64, bucket: &str, schema: &str) -> Result<Request> {
    check_name(bucket, false)?;
    check_name(schema, true)?;
    Ok(Request::tabular(
        Method::DELETE,
        format!("/{bucket}/{schema}"),
        "schema",
        txid,
    ))
}

/// `GET /bucket/schema?table`: the tables of a schema, with their row counts when
/// `include_stats`. The reply body is a `ListTablesResponse`.
pub fn list_tables(
    txid: u64,
    bucket: &str,
    schema: &str,
    filter: &NameFilter,
    page: Page,
    include_stats: bool,
) -> Result<Request> {
    check_name(bucket, false)?;
    check_name(schema, true)?;
    let mut request = Request::tabular(Method::GET, format!("/{bucket}/{schema}"), "table", txid);
    listing_headers(&mut request, filter, page);
    request.header("tabular-include-list-stats", python_bool(include_stats));
    Ok(request)
}

/// `POST /bucket/schema/table?table`: creates a table; the body is the IPC schema message.
pub fn create_table(txid: u64, table: &TablePath, schema: &Schema) -> Result<Request> {
    for field in schema.fields() {
        if field.name().is_empty() || field.name().starts_with('$') {
            return Err(Error::InvalidName {
                name: field.name().clone(),
                reason: "column names are non-empty and do not start with `$`",
            });
        }
    }
    let mut request = Request::tabular(Method::POST, table.path(), "table", txid);
    request.body = crate::ipc::schema_message(schema);
    Ok(request)
}

/// `DELETE /bucket/schema/table?table`: drops a table.
pub fn drop_table(txid: u64, table: &TablePath) -> Request {
    Request::tabular(Method::DELETE, table.path(), "table", txid)
}

/// `GET /bucket/schema/table?column`: the table's columns as an Arrow IPC schema
/// (see [`crate::reply::parse_columns`]).
pub fn list_columns(txid: u64, table: &TablePath, page: Page) -> Request {
    let mut request = Request::tabular(Method::GET, table.path(), "column", txid);
    listing_headers(&mut request, &NameFilter::Prefix(String::new()), page);
    request
}

/// `GET /bucket/schema/table?stats`: a `GetTableStatsResponse` (see
/// [`crate::reply::parse_table_stats`]).
pub fn table_stats(txid: u64, table: &TablePath) -> Request {
    Request::tabular(Method::GET, table.path(), "stats", txid)
}

/// `POST /bucket/schema/table?rows`: inserts one record batch (columns matched by name). The
/// reply carries the new rows' ids (see [`crate::reply::parse_row_ids`]).
pub fn insert_rows(txid: u64, table: &TablePath, batch: &RecordBatch) -> Result<Request> {
    let mut request = Request::tabular(Method::POST, table.path(), "rows", txid);
    request.body = crate::ipc::stream(batch)?;
    Ok(request)
}

/// Booleans in request headers are Python's `str(bool)`.
pub(crate) fn python_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_authority_drops_default_ports() {
        let cases = [
            ("http://127.0.0.1:18090", "127.0.0.1:18090"),
            ("http://vast.example:80", "vast.example"),
            ("https://vast.example:443/", "vast.example"),
            ("https://vast.example", "vast.example"),
        ];
        for (endpoint, authority) in cases {
            assert_eq!(Endpoint::parse(endpoint).unwrap().authority(), authority);
        }
    }

    #[test]
    fn endpoint_refuses_what_is_not_a_base_url() {
        for bad in [
            "",
            "vast.example",
            "ftp://vast.example",
            "http://h/x",
            "http://h/?a",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(Error::InvalidEndpoint { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_that_would_need_escaping_are_refused() {
        for bad in ["", "a b", "a/b", "..", "a%2F", "ü", "a?b"] {
            assert!(check_name(bad, false).is_err(), "{bad:?}");
        }
        assert!(check_name("parent/child", true).is_ok());
        assert!(check_name("parent//child", true).is_err());
        assert!(check_name("pocaduck_v1.2-x~", false).is_ok());
    }
}
