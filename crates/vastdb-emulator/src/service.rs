//! The HTTP side: one handler that checks the signature, reads the command word and answers
//! as a VastDB server does, plus `POST /_emulator/fault` to inject faults into later queries
//! and writes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arrow_ipc::writer::StreamWriter;
use arrow_schema::Schema;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pocaduck_edge_vastdb::fbs::tabular;
use pocaduck_edge_vastdb::{frame, query, Credentials, Request, INVALID_ROW_ID};

use crate::auth::{verify, Denied};
use crate::scan::{plan, round, Scan};
use crate::store::{Refusal, Store};

/// The version the emulator reports: below 5.5, so the SDK asks `?sorted-columns` rather than
/// reading per-field metadata.
pub(crate) const SERVER: &str = "vast 5.4.0.0";

/// The longest a stall fault holds a reply open.
const STALL: Duration = Duration::from_secs(120);

/// A fault to inject into the next `?data` replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// 503 with `<Code>SlowDown</Code>` before the reply starts.
    SlowDown,
    /// The first round, then the failed marker with this code.
    Failed(u64),
    /// Half of the first round, then the connection is cut.
    Truncate,
    /// One keep-alive, then nothing until the client goes away (at most two minutes).
    Stall,
    /// The connection is cut before any byte of the body.
    Reset,
}

/// A kind of write a fault can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// `POST ?rows`.
    Insert,
    /// `PUT ?rows`.
    Update,
    /// `DELETE ?rows`.
    Delete,
}

impl Write {
    const ALL: [Self; 3] = [Self::Insert, Self::Update, Self::Delete];

    fn of(method: &Method) -> Option<Self> {
        match *method {
            Method::POST => Some(Self::Insert),
            Method::PUT => Some(Self::Update),
            Method::DELETE => Some(Self::Delete),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// The emulator's state.
pub(crate) struct Emulator {
    store: RwLock<Store>,
    credentials: Credentials,
    next_txid: AtomicU64,
    faults: Mutex<VecDeque<Fault>>,
    /// Per kind of write: how many to accept before one fails with 500 `InternalError`,
    /// when armed.
    failing_writes: Mutex<[Option<u64>; 3]>,
    queries: AtomicU64,
    /// Transactions begun and neither committed nor rolled back.
    open: Mutex<std::collections::BTreeSet<u64>>,
}

impl Emulator {
    /// An emulator over `store`, accepting requests signed with `credentials`.
    pub(crate) fn new(store: Store, credentials: Credentials) -> Self {
        Self {
            store: RwLock::new(store),
            credentials,
            next_txid: AtomicU64::new(4096),
            faults: Mutex::new(VecDeque::new()),
            failing_writes: Mutex::new([None; 3]),
            queries: AtomicU64::new(0),
            open: Mutex::new(std::collections::BTreeSet::new()),
        }
    }
}

/// The router: everything goes to [`handle`].
pub(crate) fn router(emulator: Arc<Emulator>) -> axum::Router {
    // VastDB takes request bodies of up to 5 MiB (inserts); leave room above that.
    axum::Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20))
        .with_state(emulator)
}

/// The request's `tabular-txid` (0 when absent).
fn txid_of(headers: &HeaderMap) -> u64 {
    headers
        .get("tabular-txid")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        escape(code),
        escape(message)
    );
    (status, body).into_response()
}

fn refusal(refusal: Refusal) -> Response {
    match refusal {
        Refusal::NotFound(m) => error(StatusCode::NOT_FOUND, "NoSuchKey", &m),
        Refusal::Conflict(m) => error(StatusCode::CONFLICT, "Conflict", &m),
        Refusal::BadRequest(m) => error(StatusCode::BAD_REQUEST, "InvalidArgument", &m),
    }
}

fn ok(body: impl Into<Body>) -> Response {
    Response::new(body.into())
}

async fn handle(
    State(emulator): State<Arc<Emulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut response = answer(&emulator, method, &uri, &headers, body).await;
    response
        .headers_mut()
        .insert("server", HeaderValue::from_static(SERVER));
    response
}

async fn answer(
    emulator: &Arc<Emulator>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let path = uri.path();
    let raw_query = uri.query().unwrap_or("");
    if path == "/_emulator/fault" && method == Method::POST {
        return inject(emulator, raw_query);
    }
    if path == "/_emulator/stats" && method == Method::GET {
        let pending = emulator.faults.lock().expect("fault lock").len();
        let queries = emulator.queries.load(Ordering::Relaxed);
        let open = emulator.open.lock().expect("open lock").len();
        return ok(format!(
            "{{\"queries\":{queries},\"pending_faults\":{pending},\"open_transactions\":{open}}}"
        ));
    }
    let request = Request {
        method: method.clone(),
        path: path.to_owned(),
        query: raw_query.to_owned(),
        headers: Vec::new(),
        body: body.clone(),
    };
    let host = header("host").unwrap_or_default();
    if let Err(denied) = verify(
        &request,
        host,
        header("authorization"),
        header("x-amz-date"),
        &emulator.credentials,
    ) {
        return match denied {
            Denied::Missing(what) => error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                &format!("missing {what}"),
            ),
            Denied::UnknownKey => error(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "the access key is not known",
            ),
            Denied::Mismatch => error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "the request signature does not match",
            ),
        };
    }
    let command = raw_query.split('&').next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((&bucket, rest)) = segments.split_first() else {
        return match (command, &method) {
            ("transaction", &Method::POST) => {
                let txid = emulator.next_txid.fetch_add(1, Ordering::Relaxed);
                emulator.open.lock().expect("open lock").insert(txid);
                let mut response = ok(Body::empty());
                response
                    .headers_mut()
                    .insert("tabular-txid", HeaderValue::from(txid));
                response
            }
            ("transaction", &Method::PUT) => {
                emulator
                    .open
                    .lock()
                    .expect("open lock")
                    .remove(&txid_of(headers));
                let mut store = emulator.store.write().expect("store lock");
                match store.commit(txid_of(headers)) {
                    Ok(()) => ok(Body::empty()),
                    Err(r) => refusal(r),
                }
            }
            ("transaction", &Method::DELETE) => {
                emulator
                    .open
                    .lock()
                    .expect("open lock")
                    .remove(&txid_of(headers));
                emulator
                    .store
                    .write()
                    .expect("store lock")
                    .rollback(txid_of(headers));
                ok(Body::empty())
            }
            ("transaction", _) => ok(Body::empty()),
            _ => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", command),
        };
    };
    // Schema paths take every segment after the bucket; other commands end with the table.
    let schema_path = rest.join("/");
    let (table_schema, table) = match rest.split_last() {
        Some((table, schema)) if !schema.is_empty() => (schema.join("/"), *table),
        _ => (String::new(), ""),
    };
    match (command, method) {
        ("", Method::HEAD) => {
            let exists = emulator
                .store
                .read()
                .expect("store lock")
                .has_bucket(bucket);
            let status = if exists {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            (status, Body::empty()).into_response()
        }
        ("schema", Method::GET) => {
            let store = emulator.store.read().expect("store lock");
            match store.child_schemas(bucket, &schema_path) {
                Ok(names) => listing(
                    headers,
                    names.into_iter().map(|n| (n, 0)).collect(),
                    |entries| tabular::ListSchemasResponse {
                        bucket_name: Some(bucket.to_owned()),
                        schemas: Some(entries),
                    },
                ),
                Err(r) => refusal(r),
            }
        }
        ("schema", Method::POST) => {
            let mut store = emulator.store.write().expect("store lock");
            match store.create_schema(bucket, &schema_path) {
                Ok(()) => ok(Body::empty()),
                Err(r) => refusal(r),
            }
        }
        ("schema", Method::DELETE) => {
            let mut store = emulator.store.write().expect("store lock");
            match store.drop_schema(bucket, &schema_path) {
                Ok(()) => ok(Body::empty()),
                Err(r) => refusal(r),
            }
        }
        ("table", Method::GET) => {
            let store = emulator.store.read().expect("store lock");
            match store.tables_of(bucket, &schema_path) {
                Ok(tables) => {
                    let entries = tables.into_iter().map(|(n, t)| (n, t.num_rows())).collect();
                    listing(headers, entries, |entries| tabular::ListTablesResponse {
                        bucket_name: Some(bucket.to_owned()),
                        schema_name: Some(schema_path.clone()),
                        tables: Some(entries),
                    })
                }
                Err(r) => refusal(r),
            }
        }
        ("table", Method::POST) => {
            let schema = match read_schema_message(&body) {
                Ok(schema) => schema,
                Err(m) => return error(StatusCode::BAD_REQUEST, "InvalidArgument", &m),
            };
            let mut store = emulator.store.write().expect("store lock");
            match store.create_table(bucket, &table_schema, table, schema) {
                Ok(()) => ok(Body::empty()),
                Err(r) => refusal(r),
            }
        }
        ("table", Method::DELETE) => {
            let mut store = emulator.store.write().expect("store lock");
            match store.drop_table(bucket, &table_schema, table) {
                Ok(()) => ok(Body::empty()),
                Err(r) => refusal(r),
            }
        }
        ("column", Method::GET) | ("sorted-columns", Method::GET) => {
            let store = emulator.store.read().expect("store lock");
            match store.table(bucket, &table_schema, table, txid_of(headers)) {
                Ok(t) => {
                    let schema = if command == "column" {
                        t.schema.as_ref().clone()
                    } else {
                        Schema::empty()
                    };
                    let mut response = ok(ipc_stream(&schema, None));
                    let h = response.headers_mut();
                    h.insert("tabular-next-key", HeaderValue::from(0));
                    h.insert("tabular-is-truncated", HeaderValue::from_static("false"));
                    h.insert(
                        "tabular-list-count",
                        HeaderValue::from(schema.fields().len()),
                    );
                    response
                }
                Err(r) => refusal(r),
            }
        }
        ("stats", Method::GET) => {
            let store = emulator.store.read().expect("store lock");
            match store.table(bucket, &table_schema, table, txid_of(headers)) {
                Ok(t) => {
                    let rows = t.num_rows();
                    let size: usize = t
                        .batches
                        .iter()
                        .map(|c| c.batch.get_array_memory_size())
                        .sum();
                    let stats = tabular::GetTableStatsResponse {
                        num_rows: rows as i64,
                        size_in_bytes: size as i64,
                        vips: Some(Vec::new()),
                        ..Default::default()
                    };
                    ok(planus::Builder::new().finish(&stats, None).to_vec())
                }
                Err(r) => refusal(r),
            }
        }
        ("rows", method) if raw_query != "rows" => error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            &format!("{method} ?{raw_query} is not emulated"),
        ),
        ("rows", method) if Write::of(&method).is_some_and(|w| write_fails(emulator, w)) => {
            let write = Write::of(&method).expect("checked by the guard");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &format!("fault: the {} failed", write.name()),
            )
        }
        ("rows", Method::POST) => insert(
            emulator,
            txid_of(headers),
            bucket,
            &table_schema,
            table,
            &body,
        ),
        ("rows", method @ (Method::PUT | Method::DELETE)) => {
            let batch = match one_batch(&body) {
                Ok(batch) => batch,
                Err(m) => return error(StatusCode::BAD_REQUEST, "InvalidArgument", &m),
            };
            let mut store = emulator.store.write().expect("store lock");
            let txid = txid_of(headers);
            let done = if method == Method::PUT {
                store.update(txid, bucket, &table_schema, table, &batch)
            } else {
                store.delete(txid, bucket, &table_schema, table, &batch)
            };
            match done {
                Ok(()) => ok(Body::empty()),
                Err(r) => refusal(r),
            }
        }
        ("data", Method::GET) => select(emulator, headers, bucket, &table_schema, table, &body),
        (command, method) => error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            &format!("{method} ?{command} is not emulated"),
        ),
    }
}

/// A listing reply: entries filtered by exact name or prefix, paged by `tabular-max-keys`
/// from the offset in `tabular-next-key`.
fn listing<T: planus::WriteAsOffset<T>>(
    headers: &HeaderMap,
    entries: Vec<(String, u64)>,
    build: impl FnOnce(Vec<tabular::ObjectDetails>) -> T,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let matching: Vec<(String, u64)> = entries
        .into_iter()
        .filter(|(name, _)| {
            match (
                header("tabular-name-exact-match"),
                header("tabular-name-prefix"),
            ) {
                (Some(exact), _) => name == exact,
                (None, Some(prefix)) => name.starts_with(prefix),
                (None, None) => true,
            }
        })
        .collect();
    let count = matching.len();
    let offset: usize = header("tabular-next-key")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let max_keys: usize = header("tabular-max-keys")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1000);
    let page: Vec<tabular::ObjectDetails> = matching
        .into_iter()
        .enumerate()
        .skip(offset)
        .take(max_keys)
        .map(|(i, (name, rows))| tabular::ObjectDetails {
            name: Some(name),
            properties: Some(String::new()),
            handle: Some((i + 1).to_string()),
            num_rows: rows,
            ..Default::default()
        })
        .collect();
    let next = offset + page.len();
    let truncated = next < count;
    let body = planus::Builder::new().finish(build(page), None).to_vec();
    let mut response = ok(body);
    let h = response.headers_mut();
    h.insert("tabular-next-key", HeaderValue::from(next));
    h.insert(
        "tabular-is-truncated",
        HeaderValue::from_static(if truncated { "true" } else { "false" }),
    );
    h.insert("tabular-list-count", HeaderValue::from(count));
    response
}

fn read_schema_message(body: &[u8]) -> Result<Schema, String> {
    let at = if body.get(..4) == Some(&[0xff; 4]) {
        8
    } else {
        4
    };
    let meta = body.get(at..).ok_or("a truncated schema message")?;
    let message = arrow_ipc::root_as_message(meta).map_err(|e| e.to_string())?;
    let schema = message
        .header_as_schema()
        .ok_or("the body is not a schema message")?;
    Ok(arrow_ipc::convert::fb_to_schema(schema))
}

fn ipc_stream(schema: &Schema, batch: Option<&arrow_array::RecordBatch>) -> Vec<u8> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema).expect("a valid schema");
    if let Some(batch) = batch {
        writer.write(batch).expect("a batch of this schema");
    }
    writer.into_inner().expect("writing to a Vec cannot fail")
}

fn insert(
    emulator: &Emulator,
    txid: u64,
    bucket: &str,
    schema: &str,
    table: &str,
    body: &[u8],
) -> Response {
    let reader = match arrow_ipc::reader::StreamReader::try_new(body, None) {
        Ok(reader) => reader,
        Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidArgument", &e.to_string()),
    };
    let mut ids = Vec::new();
    for batch in reader {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidArgument", &e.to_string()),
        };
        let mut store = emulator.store.write().expect("store lock");
        match store.insert(txid, bucket, schema, table, &batch) {
            Ok(range) => ids.extend(range),
            Err(r) => return refusal(r),
        }
    }
    let schema = Arc::new(Schema::new(vec![arrow_schema::Field::new(
        "$row_id",
        arrow_schema::DataType::UInt64,
        false,
    )]));
    let column = Arc::new(arrow_array::UInt64Array::from(ids));
    let batch =
        arrow_array::RecordBatch::try_new(schema.clone(), vec![column]).expect("one uint64 column");
    ok(ipc_stream(&schema, Some(&batch)))
}

/// The rows of an IPC stream body, as one batch.
fn one_batch(body: &[u8]) -> Result<arrow_array::RecordBatch, String> {
    let reader = arrow_ipc::reader::StreamReader::try_new(body, None)
        .map_err(|e| format!("the body is not an Arrow IPC stream: {e}"))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the body is not an Arrow IPC stream: {e}"))?;
    arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| e.to_string())
}

fn select(
    emulator: &Arc<Emulator>,
    headers: &HeaderMap,
    bucket: &str,
    schema: &str,
    table: &str,
    body: &[u8],
) -> Response {
    emulator.queries.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scan = match Scan::from_headers(header) {
        Ok(scan) => scan,
        Err(m) => return error(StatusCode::BAD_REQUEST, "InvalidArgument", &m),
    };
    let decoded = match query::decode(body) {
        Ok(decoded) => {
            tracing::debug!(?decoded, ?scan, "query");
            decoded
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidArgument", &e.to_string()),
    };
    {
        let store = emulator.store.read().expect("store lock");
        let table = match store.table(bucket, schema, table, txid_of(headers)) {
            Ok(table) => table,
            Err(r) => return refusal(r),
        };
        if let Err(m) = plan(&table, &decoded) {
            return error(StatusCode::BAD_REQUEST, "TabularUnsupportedColumnType", &m);
        }
    }
    let fault = emulator.faults.lock().expect("fault lock").pop_front();
    if fault == Some(Fault::SlowDown) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate",
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let emulator = Arc::clone(emulator);
    let (bucket, schema, table) = (bucket.to_owned(), schema.to_owned(), table.to_owned());
    let txid = txid_of(headers);
    tokio::task::spawn_blocking(move || {
        let table = (bucket.as_str(), schema.as_str(), table.as_str(), txid);
        stream_reply(&emulator, table, &decoded, &scan, fault, &tx)
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::new(Body::from_stream(stream))
}

/// Writes the reply round by round (one round per unfinished sub-split), honouring a fault.
fn stream_reply(
    emulator: &Emulator,
    (bucket, schema, table, txid): (&str, &str, &str, u64),
    decoded: &query::DecodedQuery,
    scan: &Scan,
    fault: Option<Fault>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let cut = || {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault: connection cut",
        ))
    };
    match fault {
        Some(Fault::Reset) => {
            let _ = tx.blocking_send(cut());
            return;
        }
        Some(Fault::Stall) => {
            let _ = tx.blocking_send(Ok(frame::keep_alive()));
            let deadline = std::time::Instant::now() + STALL;
            while !tx.is_closed() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = tx.blocking_send(cut());
            return;
        }
        _ => {}
    }
    for (sub_split, &start) in scan.starts.iter().enumerate() {
        if start == INVALID_ROW_ID {
            continue;
        }
        let outcome = {
            let store = emulator.store.read().expect("store lock");
            store
                .table(bucket, schema, table, txid)
                .map_err(|_| "the table was dropped".to_owned())
                .and_then(|t| {
                    let bound = plan(&t, decoded)?;
                    let (batches, next) = round(&t, &bound, scan, sub_split)?;
                    frame::round_pieces(sub_split as u32, next, &bound.schema, &batches)
                        .map_err(|e| e.to_string())
                })
        };
        let pieces = match outcome {
            Ok(pieces) => pieces,
            Err(message) => {
                tracing::warn!("query failed: {message}");
                let _ = tx.blocking_send(Ok(frame::failed(500)));
                return;
            }
        };
        match fault {
            Some(Fault::Truncate) => {
                let round: Vec<u8> = pieces.concat();
                let half = Bytes::copy_from_slice(&round[..round.len() / 2]);
                let _ = tx.blocking_send(Ok(half));
                let _ = tx.blocking_send(cut());
                return;
            }
            Some(Fault::Failed(code)) => {
                for piece in pieces {
                    let _ = tx.blocking_send(Ok(piece));
                }
                let _ = tx.blocking_send(Ok(frame::failed(code)));
                return;
            }
            _ => {
                for piece in pieces {
                    if tx.blocking_send(Ok(piece)).is_err() {
                        return; // the client went away
                    }
                }
            }
        }
    }
    let _ = tx.blocking_send(Ok(frame::completed()));
}

/// Whether an armed fault fires on this write (it fires once).
fn write_fails(emulator: &Emulator, write: Write) -> bool {
    let mut faults = emulator.failing_writes.lock().expect("fault lock");
    let armed = &mut faults[write as usize];
    match *armed {
        Some(0) => {
            *armed = None;
            true
        }
        Some(n) => {
            *armed = Some(n - 1);
            false
        }
        None => false,
    }
}

/// `GET /_emulator/stats` answers `{"queries": N, "pending_faults": M, "open_transactions":
/// T}`: transactions begun and neither committed nor rolled back.
/// `POST /_emulator/fault?kind=slowdown|failed|truncate|stall|reset[&count=N][&code=C]`:
/// the next N `?data` requests get the fault.
/// `POST /_emulator/fault?kind=insert|update|delete&after=N`: the write of that kind after
/// the next N fails with 500.
fn inject(emulator: &Emulator, query: &str) -> Response {
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    };
    let count: usize = param("count").and_then(|c| c.parse().ok()).unwrap_or(1);
    if let Some(write) = Write::ALL
        .into_iter()
        .find(|w| param("kind") == Some(w.name()))
    {
        let after = param("after").and_then(|c| c.parse().ok()).unwrap_or(0);
        emulator.failing_writes.lock().expect("fault lock")[write as usize] = Some(after);
        return ok(Body::empty());
    }
    let fault = match param("kind") {
        Some("slowdown") => Fault::SlowDown,
        Some("failed") => Fault::Failed(param("code").and_then(|c| c.parse().ok()).unwrap_or(1)),
        Some("truncate") => Fault::Truncate,
        Some("stall") => Fault::Stall,
        Some("reset") => Fault::Reset,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                &format!("unknown fault {other:?}"),
            )
        }
    };
    let mut faults = emulator.faults.lock().expect("fault lock");
    faults.extend(std::iter::repeat_n(fault, count.min(1000)));
    ok(Body::empty())
}
