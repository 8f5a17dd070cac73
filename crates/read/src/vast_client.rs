//! A VastDB client over the host's [`Upstream`]: signing with the host's clock, `503
//! SlowDown` retried with backoff, other errors kept as upstream failures with VastDB's code
//! and message, and queries driven to completion as a stream of record batches. The VastDB
//! backend and the loader both use it.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use futures::StreamExt;
use pocaduck_edge_vastdb::deframe::Limits as ReplyLimits;
use pocaduck_edge_vastdb::query::{self, Filter};
use pocaduck_edge_vastdb::reply::{
    parse_columns, parse_error, parse_row_ids, parse_schemas, parse_tables,
};
use pocaduck_edge_vastdb::request::{self, NameFilter, Page};
use pocaduck_edge_vastdb::{
    sign, Credentials, Endpoint, Event, QueryCursor, QuerySettings, ReplyDecoder, Request,
    TablePath,
};

use crate::error::ReadError;
use crate::store::Clock;
use crate::timing::Timing;
use crate::untrusted::decode_untrusted;
use crate::upstream::{ByteStream, PassOn, Task, Upstream, UpstreamError, UpstreamResponse};

/// Bytes of an upstream error body read for its message.
const ERROR_BODY_BYTES: usize = 64 << 10;
/// Bytes of a metadata reply (listings, column schemas) accepted.
const METADATA_BODY_BYTES: usize = 64 << 20;

/// A signed-request client of one VastDB endpoint.
pub struct VastClient {
    endpoint: Endpoint,
    credentials: Credentials,
    upstream: Arc<dyn Upstream>,
    clock: Arc<dyn Clock>,
    max_retries: u32,
}

impl VastClient {
    /// A client of `endpoint`; `max_retries` bounds SlowDown retries and re-sent cut replies.
    pub fn new(
        endpoint: Endpoint,
        credentials: Credentials,
        upstream: Arc<dyn Upstream>,
        clock: Arc<dyn Clock>,
        max_retries: u32,
    ) -> Self {
        Self {
            endpoint,
            credentials,
            upstream,
            clock,
            max_retries,
        }
    }

    /// The host's clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Signs and sends one request, retrying `503 SlowDown` (and a GET whose connection
    /// failed) with backoff; any other non-200 answer is an upstream failure carrying
    /// VastDB's code and message.
    pub async fn send(
        &self,
        request: &Request,
        timing: &mut Timing,
    ) -> Result<UpstreamResponse, ReadError> {
        self.send_marked(request, false, timing).await
    }

    /// [`VastClient::send`] for a reply whose body the caller only sends on unchanged: the
    /// upstream may keep the body to itself ([`HostBody`](crate::HostBody)).
    pub async fn send_passing_on(
        &self,
        request: &Request,
        timing: &mut Timing,
    ) -> Result<UpstreamResponse, ReadError> {
        self.send_marked(request, true, timing).await
    }

    async fn send_marked(
        &self,
        request: &Request,
        pass_on: bool,
        timing: &mut Timing,
    ) -> Result<UpstreamResponse, ReadError> {
        let url = self.endpoint.url(request);
        let mut attempt = 0;
        loop {
            let mut signed = request.clone();
            sign(
                &mut signed,
                &self.endpoint,
                &self.credentials,
                self.clock.unix_seconds(),
            )
            .map_err(ReadError::internal)?;
            timing.requests += 1;
            let t0 = self.clock.now_ms();
            let is_get = signed.method == http::Method::GET;
            let mut outgoing = http_request(&url, signed)?;
            if pass_on {
                outgoing.extensions_mut().insert(PassOn);
            }
            let response = match self.upstream.send(outgoing).await {
                Ok(response) => response,
                // A GET (a query or a listing) is safe to send again: a pooled connection that
                // the server closed meanwhile must not fail the request.
                Err(UpstreamError::Connection(_)) if is_get && attempt < self.max_retries => {
                    self.back_off(&mut attempt).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            timing.fetch += self.clock.now_ms() - t0;
            if response.status() == http::StatusCode::OK {
                return Ok(response);
            }
            let status = response.status().as_u16();
            let body = read_prefix(response.into_body(), ERROR_BODY_BYTES).await;
            let (code, message) = parse_error(&body);
            let code = code.unwrap_or_default();
            if status == 503 && code == "SlowDown" && attempt < self.max_retries {
                self.back_off(&mut attempt).await;
                continue;
            }
            return Err(ReadError::upstream(format!(
                "VastDB answered {status} {code}: {} ({} {}?{})",
                message.unwrap_or_default(),
                request.method,
                request.path,
                request.query
            )));
        }
    }

    /// Waits before retry number `attempt` (100 ms, doubling up to 6.4 s) and counts it.
    async fn back_off(&self, attempt: &mut u32) {
        self.upstream.sleep(100 << (*attempt).min(6)).await;
        *attempt += 1;
    }

    /// Sends a small request and reads its whole reply: the body and any `tabular-txid`.
    pub async fn call(
        &self,
        request: Request,
        timing: &mut Timing,
    ) -> Result<(Bytes, Option<u64>), ReadError> {
        let response = self.send(&request, timing).await?;
        let txid = response
            .headers()
            .get("tabular-txid")
            .and_then(|t| t.to_str().ok()?.parse().ok());
        let body = read_prefix(response.into_body(), METADATA_BODY_BYTES).await;
        Ok((body, txid))
    }

    /// Begins a transaction.
    pub async fn begin(&self, timing: &mut Timing) -> Result<u64, ReadError> {
        match self.call(request::begin_transaction(), timing).await? {
            (_, Some(txid)) => Ok(txid),
            _ => Err(ReadError::upstream(
                "VastDB began a transaction without a tabular-txid",
            )),
        }
    }

    /// Commits transaction `txid`.
    pub async fn commit(&self, txid: u64, timing: &mut Timing) -> Result<(), ReadError> {
        self.call(request::commit_transaction(txid), timing)
            .await
            .map(drop)
    }

    /// Rolls transaction `txid` back.
    pub async fn rollback(&self, txid: u64, timing: &mut Timing) -> Result<(), ReadError> {
        self.call(request::rollback_transaction(txid), timing)
            .await
            .map(drop)
    }

    /// Runs `task` in the background through the host's [`Upstream::spawn`], or hands it
    /// back when the host cannot.
    pub fn spawn(&self, task: Task) -> Option<Task> {
        self.upstream.spawn(task)
    }

    /// Rolls transaction `txid` back in the background: for a reader dropped before its
    /// end, which cannot wait. Where the host cannot run it, VastDB ends the transaction at
    /// its own timeout.
    pub fn roll_back_later(self: &Arc<Self>, txid: u64) {
        let client = Arc::clone(self);
        let unrun = self.spawn(Box::pin(async move {
            let _ = client.rollback(txid, &mut Timing::default()).await;
        }));
        drop(unrun);
    }

    /// The columns of `table` (in transaction `txid`).
    pub async fn columns(
        &self,
        txid: u64,
        table: &TablePath,
        timing: &mut Timing,
    ) -> Result<Schema, ReadError> {
        let page = Page {
            max_keys: 10_000,
            next_key: 0,
        };
        let (body, _) = self
            .call(request::list_columns(txid, table, page), timing)
            .await?;
        decode_untrusted(|| parse_columns(&body)).map_err(ReadError::upstream)
    }

    /// Whether `schema` exists in `bucket` (a nested schema's parent must exist).
    pub async fn schema_exists(
        &self,
        txid: u64,
        bucket: &str,
        schema: &str,
        timing: &mut Timing,
    ) -> Result<bool, ReadError> {
        let (parent, name) = match schema.rsplit_once('/') {
            Some((parent, name)) => (Some(parent), name),
            None => (None, schema),
        };
        let filter = NameFilter::Exact(name.to_owned());
        let page = Page {
            max_keys: 1,
            next_key: 0,
        };
        let request = request::list_schemas(txid, bucket, parent, &filter, page)
            .map_err(ReadError::bad_request)?;
        let (body, _) = self.call(request, timing).await?;
        let entries = parse_schemas(&body).map_err(ReadError::upstream)?;
        Ok(entries.iter().any(|e| e.name == name))
    }

    /// Whether `table` exists.
    pub async fn table_exists(
        &self,
        txid: u64,
        table: &TablePath,
        timing: &mut Timing,
    ) -> Result<bool, ReadError> {
        let filter = NameFilter::Exact(table.table().to_owned());
        let page = Page {
            max_keys: 1000,
            next_key: 0,
        };
        let request =
            request::list_tables(txid, table.bucket(), table.schema(), &filter, page, false)
                .map_err(ReadError::bad_request)?;
        let (body, _) = self.call(request, timing).await?;
        let entries = parse_tables(&body).map_err(ReadError::upstream)?;
        Ok(entries.iter().any(|e| e.name == table.table()))
    }

    /// Inserts `batch` and returns the new rows' ids.
    pub async fn insert(
        &self,
        txid: u64,
        table: &TablePath,
        batch: &RecordBatch,
        timing: &mut Timing,
    ) -> Result<Vec<u64>, ReadError> {
        let request = request::insert_rows(txid, table, batch).map_err(ReadError::internal)?;
        let (body, _) = self.call(request, timing).await?;
        decode_untrusted(|| parse_row_ids(&body)).map_err(ReadError::upstream)
    }

    /// Starts `SELECT columns FROM table WHERE filter` in transaction `txid` (the caller
    /// commits); its batches come from [`QueryRun::next`].
    pub fn query(
        self: &Arc<Self>,
        txid: u64,
        table: &TablePath,
        table_schema: &Schema,
        columns: &[&str],
        filter: &Filter,
        settings: QuerySettings,
    ) -> Result<QueryRun, ReadError> {
        let encoded =
            query::encode(table_schema, columns, filter).map_err(ReadError::bad_request)?;
        Ok(QueryRun {
            client: Arc::clone(self),
            txid,
            schema: encoded.response_schema.clone(),
            cursor: QueryCursor::new(table.clone(), encoded.body, settings),
            decoder: None,
            body: None,
            ready: VecDeque::new(),
            round: Vec::new(),
            cuts: 0,
            done: false,
            commit_at_end: false,
        })
    }
}

/// `request` as an HTTP request to `url`.
fn http_request(url: &str, request: Request) -> Result<http::Request<Bytes>, ReadError> {
    let mut builder = http::Request::builder().method(request.method).uri(url);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(request.body).map_err(ReadError::internal)
}

async fn read_prefix(mut body: ByteStream, limit: usize) -> Bytes {
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        let room = limit - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Bytes::from(out)
}

/// One query being read: requests re-sent until every sub-split is done, replies de-framed
/// as they arrive, a reply cut mid-way re-sent from the last complete round (bounded). A
/// [`QueryRun::committing`] run dropped before its end (an error, a client gone) rolls its
/// transaction back in the background.
pub struct QueryRun {
    client: Arc<VastClient>,
    txid: u64,
    schema: SchemaRef,
    cursor: QueryCursor,
    decoder: Option<ReplyDecoder>,
    body: Option<ByteStream>,
    /// Complete rounds not yet handed out, oldest first.
    ready: VecDeque<Vec<RecordBatch>>,
    /// Batches of the round being de-framed.
    round: Vec<RecordBatch>,
    cuts: u32,
    done: bool,
    commit_at_end: bool,
}

impl Drop for QueryRun {
    fn drop(&mut self) {
        if self.commit_at_end && !self.done {
            self.client.roll_back_later(self.txid);
        }
    }
}

impl QueryRun {
    /// Commits the query's transaction once every row has been read.
    pub fn committing(mut self) -> Self {
        self.commit_at_end = true;
        self
    }

    /// The next batch of rows, or `None` when every sub-split is done.
    pub async fn next(&mut self, timing: &mut Timing) -> Result<Option<RecordBatch>, ReadError> {
        loop {
            if let Some(round) = self.ready.front_mut() {
                if !round.is_empty() {
                    // A round holds a few batches: taking from its front is cheap.
                    return Ok(Some(round.remove(0)));
                }
                self.ready.pop_front();
                continue;
            }
            if !self.read_more(timing).await? {
                return Ok(None);
            }
        }
    }

    /// The batches of the next round of rows (one reply's worth of a sub-split, never empty),
    /// or `None` when every sub-split is done.
    pub async fn next_round(
        &mut self,
        timing: &mut Timing,
    ) -> Result<Option<Vec<RecordBatch>>, ReadError> {
        loop {
            if let Some(round) = self.ready.pop_front() {
                return Ok(Some(round));
            }
            if !self.read_more(timing).await? {
                return Ok(None);
            }
        }
    }

    /// Reads on until a round is ready (false once every sub-split is done). The rest of
    /// that round's reply is read and the next request sent before the round is handed out,
    /// so VastDB works on the next page while the caller handles this one; the rounds held
    /// are those of one reply.
    async fn read_more(&mut self, timing: &mut Timing) -> Result<bool, ReadError> {
        if !self.read_step(timing).await? {
            return Ok(false);
        }
        if !self.ready.is_empty() {
            while self.body.is_some() {
                self.read_step(timing).await?;
            }
            if !self.done {
                self.read_step(timing).await?;
            }
        }
        Ok(true)
    }

    /// Sends the next request or reads the next bytes of the reply; false once every
    /// sub-split is done.
    async fn read_step(&mut self, timing: &mut Timing) -> Result<bool, ReadError> {
        if self.done {
            return Ok(false);
        }
        let Some(body) = self.body.as_mut() else {
            match self.cursor.next_request(self.txid) {
                None => {
                    self.done = true;
                    if self.commit_at_end {
                        self.client.commit(self.txid, timing).await?;
                    }
                }
                Some(request) => {
                    self.body = Some(self.client.send(&request, timing).await?.into_body());
                    self.decoder = Some(
                        ReplyDecoder::new(
                            self.schema.clone(),
                            self.cursor.settings().num_sub_splits,
                            ReplyLimits::default(),
                        )
                        .map_err(ReadError::internal)?,
                    );
                }
            }
            return Ok(true);
        };
        let decoder = self.decoder.as_mut().expect("a decoder goes with a body");
        let clock = self.client.clock.clone();
        let t0 = clock.now_ms();
        let next = body.next().await;
        timing.fetch += clock.now_ms() - t0;
        match next {
            Some(Ok(bytes)) => {
                timing.bytes_fetched += bytes.len() as u64;
                let t1 = clock.now_ms();
                let mut events = Vec::new();
                if let Err(e) = decode_untrusted(|| decoder.push(&bytes, &mut events)) {
                    // The decoder may be half way through a message: it goes with its reply.
                    self.decoder = None;
                    self.body = None;
                    return Err(ReadError::upstream(e));
                }
                for event in events {
                    self.cursor.observe(&event).map_err(ReadError::upstream)?;
                    match event {
                        Event::Batch { batch, .. } => self.round.push(batch),
                        Event::RoundDone { .. } if !self.round.is_empty() => {
                            self.ready.push_back(std::mem::take(&mut self.round))
                        }
                        Event::RoundDone { .. } => {}
                    }
                }
                timing.decode += clock.now_ms() - t1;
            }
            Some(Err(UpstreamError::Timeout(m))) => {
                return Err(ReadError::TimedOut {
                    detail: format!("VastDB reply stalled: {m}"),
                })
            }
            Some(Err(UpstreamError::Connection(m))) => self.cut(&m)?,
            None => match decoder.finish() {
                Ok(_) => {
                    self.body = None;
                    self.cursor.end_reply().map_err(ReadError::upstream)?;
                }
                Err(e) => self.cut(&e.to_string())?,
            },
        }
        Ok(true)
    }

    /// A reply broke off: re-send from the last complete round, a bounded number of times.
    fn cut(&mut self, why: &str) -> Result<(), ReadError> {
        self.body = None;
        self.cuts += 1;
        if self.cuts > self.client.max_retries {
            return Err(ReadError::upstream(format!(
                "VastDB replies kept breaking off ({} times; last: {why})",
                self.cuts
            )));
        }
        Ok(())
    }
}
