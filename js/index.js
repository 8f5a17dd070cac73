// pocaduck-edge: neuron point clouds for browsers, Web Workers and Node ≥ 18.
// The JS half does the IO (fetch, bounded ranges, concurrency, cancellation, progress,
// ETag checks); the wasm half (pkg/, built from crates/wasm) plans reads and decodes.
// Types: index.d.ts.

import initWasm, {
  EdgeReader,
  __wbg_reset_state as resetWasmState,
  decodeArrow as wasmDecodeArrow,
  decodeParquet as wasmDecodeParquet,
  decodeRows as wasmDecodeRows,
} from "./pkg/pocaduck_edge_wasm.js";
import { bodyChunks, wholeBody } from "./body.js";
import { checkOutputs, outputSlots } from "./outputs.js";
import { wasmInput } from "./wasm-input.js";

const U64_MAX = (1n << 64n) - 1n;
/** Requests in flight per client, as browsers allow per origin over HTTP/1.1. */
const MAX_CONCURRENCY = 6;

/** Why a call failed: an HTTP status and the server's error code, or a local check. */
export class PocaduckError extends Error {
  constructor(message, code, status, requestId) {
    super(message);
    this.name = "PocaduckError";
    this.code = code;
    if (status !== undefined) this.status = status;
    if (requestId !== undefined) this.requestId = requestId;
  }
}

/**
 * How many times the module was restarted after a trap: objects made before (an
 * `openDataset`'s reader) are remade when this moves on.
 */
let wasmGeneration = 0;

/** Restarts the WebAssembly module: a fresh instance of the compiled module. */
function restartWasm() {
  resetWasmState();
  wasmGeneration += 1;
}

/**
 * A wasm call's failure `e` as a `PocaduckError` of `code`, its message after `what`. A trap
 * (`WebAssembly.RuntimeError`: the module aborts on a Rust panic, such as a dependency's
 * assertion on malformed bytes) leaves the instance's memory half-changed, so `restart`
 * replaces it and the next call runs on a fresh one.
 */
function wasmFailure(e, code, what = "", restart = restartWasm) {
  if (e instanceof PocaduckError) return e;
  if (e instanceof WebAssembly.RuntimeError) {
    restart();
    return new PocaduckError(
      `${what}malformed bytes stopped the WebAssembly decoder (${e.message}); it was restarted for the next call`,
      code,
    );
  }
  return new PocaduckError(`${what}${e?.message ?? e}`, code);
}

let ready;
/** Loads the WebAssembly module once; every other call awaits it. */
export function init(wasm) {
  ready ??= (async () => {
    const url = new URL("./pkg/pocaduck_edge_wasm_bg.wasm", import.meta.url);
    await initWasm({ module_or_path: await wasmInput(url, wasm) });
  })();
  return ready;
}

/** A label in canonical form (decimal string); a `TypeError` for anything not a u64. */
export function labelString(label) {
  let value;
  if (typeof label === "bigint") {
    value = label;
  } else if (typeof label === "string") {
    if (!/^[0-9]{1,20}$/.test(label)) {
      throw new TypeError(`label ${JSON.stringify(label)} is not a decimal unsigned 64-bit integer`);
    }
    value = BigInt(label);
  } else if (typeof label === "number") {
    if (!Number.isSafeInteger(label)) {
      throw new TypeError(
        `label ${label} is not a safe integer: pass labels above 2^53 as a bigint or a decimal string`,
      );
    }
    value = BigInt(label);
  } else {
    throw new TypeError(`a label must be a bigint, a decimal string or a safe integer, not ${typeof label}`);
  }
  if (value < 0n || value > U64_MAX) {
    throw new TypeError(`label ${value} is outside the unsigned 64-bit range`);
  }
  return value.toString();
}

/** Runs at most `max` tasks at once. */
class Limiter {
  constructor(max) {
    this.free = max;
    this.waiting = [];
  }
  async run(task) {
    if (this.free === 0) await new Promise((go) => this.waiting.push(go));
    else this.free -= 1;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    }
  }
}

function clientSettings(options = {}) {
  if (typeof (options.fetch ?? globalThis.fetch) !== "function") throw new TypeError("no fetch: pass options.fetch");
  // Called unbound: browsers refuse a fetch whose `this` is not the global object.
  const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const headers = { ...(options.headers ?? {}) };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const concurrency = Math.min(MAX_CONCURRENCY, Math.max(1, options.concurrency ?? MAX_CONCURRENCY));
  return { fetch: fetchImpl, headers, limiter: new Limiter(concurrency) };
}

/** The server's `{error: {code, message, request_id}}`, or the status text. */
async function httpError(response, what) {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  let code = response.status === 401 ? "unauthorized" : response.status === 403 ? "forbidden" : "http";
  let message = `${what}: HTTP ${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body?.error?.message) {
      code = body.error.code ?? code;
      message = `${what}: ${body.error.message}`;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new PocaduckError(message, code, response.status, requestId);
}

/** Reads a body whole, reporting each chunk's size; an abort of `signal` ends it at once. */
async function readBody(response, onBytes, signal) {
  if (!onBytes) return wholeBody(response, signal);
  const chunks = [];
  let length = 0;
  for await (const chunk of bodyChunks(response, signal)) {
    chunks.push(chunk);
    length += chunk.length;
    onBytes(chunk.length);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Counts a call's requests, bytes and time. */
class Meter {
  constructor(onProgress, bytesTotal) {
    this.started = performance.now();
    this.requests = 0;
    this.roundTrips = 0;
    this.bytesFetched = 0;
    this.fetchMs = 0;
    this.decodeMs = 0;
    this.onProgress = onProgress;
    this.bytesTotal = bytesTotal;
  }
  bytes(n) {
    this.bytesFetched += n;
    this.onProgress?.({ bytesLoaded: this.bytesFetched, bytesTotal: this.bytesTotal });
  }
  timing() {
    return {
      requests: this.requests,
      roundTrips: this.roundTrips,
      bytesFetched: this.bytesFetched,
      fetchMs: this.fetchMs,
      decodeMs: this.decodeMs,
      totalMs: performance.now() - this.started,
    };
  }
}

function joinUrl(base, path) {
  return base.replace(/\/*$/, "/") + path.replace(/^\/+/, "");
}

/**
 * A base URL and the query it carries, e.g. a signed URL's `expires`, `kid`, `prefix` and
 * `sig`: `{base, query}`, the base ending in `/`. The query goes on every request made
 * from the base (`withQuery`).
 */
function splitQuery(url) {
  const [base, ...rest] = String(url).split("#")[0].split("?");
  return { base: base.replace(/\/*$/, "/"), query: rest.join("?") };
}

/** `url` with `query` (the base URL's) appended to its own. */
function withQuery(url, query) {
  if (!query) return url;
  return `${url}${url.includes("?") ? "&" : "?"}${query}`;
}

function bboxParam(bbox) {
  if (!bbox) return undefined;
  const [min, max] = bbox;
  if (!min || !max || min.length !== max.length || min.length === 0) {
    throw new TypeError("bbox must be [min[], max[]] of equal, non-zero length");
  }
  return BigInt64Array.from([...min, ...max], (v) => BigInt(v));
}

function limitParam(limit) {
  if (limit === undefined) return undefined;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new TypeError(`limit ${limit} is not a non-negative integer`);
  }
  return BigInt(limit);
}

/**
 * Turns run `i` of a wasm `Decoded` into a `Points`; `want` may skip either output, and
 * `slots` (from `outputSlots`) holds the caller's views to write into, at index `at`.
 */
function pointsOf(decoded, i, label, timing, want, slots, at) {
  const dims = decoded.dims;
  // The exact values first: a pass over them also finds the bounds the positions need.
  let int64;
  if (want.int64 === false) int64 = new BigInt64Array(0);
  else if (slots.int64) decoded.int64Into(i, (int64 = slots.int64[at]));
  else int64 = decoded.int64(i);
  let positions, origin, flatBox;
  if (want.positions === false) {
    [positions, origin, flatBox] = [new Float32Array(0), new Float64Array(3), decoded.bbox(i)];
  } else if (slots.positions) {
    positions = slots.positions[at];
    [origin, flatBox] = decoded.renderInto(i, positions);
  } else {
    [positions, origin, flatBox] = decoded.render(i);
  }
  return {
    label,
    count: decoded.count(i),
    dims,
    int64,
    positions,
    origin,
    bbox: flatBox.length ? { min: flatBox.slice(0, dims), max: flatBox.slice(dims) } : null,
    timing,
  };
}

function emptyPoints(label, dims, timing, slots, at) {
  return {
    label,
    count: 0,
    dims,
    int64: slots.int64?.[at] ?? new BigInt64Array(0),
    positions: slots.positions?.[at] ?? new Float32Array(0),
    origin: new Float64Array(3),
    bbox: null,
    timing,
  };
}

/** Every run of a decoded answer, freeing the wasm memory. */
function allPoints(decoded, timing, want) {
  try {
    const labels = decoded.labels();
    const slots = outputSlots(want, Array.from(labels, (_, i) => decoded.count(i)), decoded.dims);
    return Array.from(labels, (label, i) => pointsOf(decoded, i, label.toString(), timing, want, slots, i));
  } finally {
    decoded.free();
  }
}

/** The points of `labels`, in that order, from a decoded answer (a label without a run has none). */
function pointsFor(decoded, labels, meter, want) {
  try {
    const runs = new Map();
    decoded.labels().forEach((l, i) => runs.set(l.toString(), i));
    const t0 = performance.now();
    const run = labels.map((label) => runs.get(label));
    const slots = outputSlots(want, run.map((i) => (i === undefined ? 0 : decoded.count(i))), decoded.dims);
    const out = labels.map((label, at) => {
      const i = run[at];
      return i === undefined
        ? emptyPoints(label, decoded.dims, null, slots, at)
        : pointsOf(decoded, i, label, null, want, slots, at);
    });
    meter.decodeMs += performance.now() - t0;
    const shared = meter.timing();
    for (const p of out) p.timing = shared;
    return out;
  } finally {
    decoded.free();
  }
}

function asBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError("expected a Uint8Array or an ArrayBuffer");
}

/**
 * Runs a wasm decode, adding its time to `meter.decodeMs`; a failure is a `decode` error
 * (after a trap, `restart` restarts the module that trapped).
 */
function timedDecode(meter, decode, restart = restartWasm) {
  const t0 = performance.now();
  try {
    return decode();
  } catch (e) {
    throw wasmFailure(e, "decode", "", restart);
  } finally {
    meter.decodeMs += performance.now() - t0;
  }
}

/** Runs a wasm decoder over bytes the caller fetched: one `Points` per label run. */
async function decodeWhole(decoder, bytes, want) {
  checkOutputs(want);
  await init();
  const t0 = performance.now();
  const input = asBytes(bytes);
  const timing = { requests: 0, roundTrips: 0, bytesFetched: 0, fetchMs: 0, decodeMs: 0, totalMs: 0 };
  const decoded = timedDecode(timing, () => decoder(input));
  const points = allPoints(decoded, timing, want);
  timing.decodeMs = timing.totalMs = performance.now() - t0;
  return points;
}

/** Decodes an Arrow IPC stream of points into one `Points` per label run. */
export function decodeArrow(bytes, want = {}) {
  return decodeWhole(wasmDecodeArrow, bytes, want);
}

/** Decodes a Parquet file of points into one `Points` per label run. */
export function decodeParquet(bytes, want = {}) {
  return decodeWhole(wasmDecodeParquet, bytes, want);
}

/** A client of a pocaduck-edge server. */
export function connect(baseUrl, options = {}) {
  const { base, query: signed } = splitQuery(baseUrl);
  const settings = clientSettings(options);
  const api = (path) => withQuery(joinUrl(base, `v1/${path}`), signed);

  async function request(url, what, { signal, method = "GET", body, meter } = {}) {
    return settings.limiter.run(async () => {
      const t0 = performance.now();
      const headers = { ...settings.headers };
      // text/plain keeps a POST a simple request: no CORS preflight.
      if (body !== undefined) headers["Content-Type"] = "text/plain;charset=UTF-8";
      const response = await settings.fetch(url, { method, headers, body, signal });
      if (!response.ok) throw await httpError(response, what);
      const bytes = await readBody(response, meter && ((n) => meter.bytes(n)), signal);
      if (meter) {
        meter.requests += 1;
        meter.roundTrips += 1;
        meter.fetchMs += performance.now() - t0;
      }
      return bytes;
    });
  }

  async function json(url, what, signal) {
    const bytes = await request(url, what, { signal });
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  function dataset(name, { vastdb = "reframed" } = {}) {
    if (vastdb !== "reframed" && vastdb !== "pass-through") {
      throw new TypeError(`vastdb must be "reframed" or "pass-through", not ${JSON.stringify(vastdb)}`);
    }
    const ds = `datasets/${encodeURIComponent(name)}`;
    const pointsQuery = (options) => {
      const q = new URLSearchParams({ format: "parquet" });
      if (options.order !== undefined) q.set("order", options.order);
      const box = bboxParam(options.bbox);
      if (box) q.set("bbox", Array.from(box).join(","));
      const limit = limitParam(options.limit);
      if (limit !== undefined) q.set("limit", limit.toString());
      return q.toString();
    };
    /** The points of `labels` from VastDB's own reply pages, de-framed here. */
    async function passThrough(labels, options) {
      checkOutputs(options);
      await init();
      const { readReplies, restart } = await import("./vastdb.js");
      const meter = new Meter(options.onProgress);
      const box = bboxParam(options.bbox);
      const rows = await readReplies(labels, {
        fetchPage: (label, resume) =>
          settings.limiter.run(async () => {
            const query = resume === undefined ? "" : `?resume=${encodeURIComponent(resume)}`;
            const url = api(`${ds}/labels/${label}/vastdb-reply${query}`);
            const response = await settings.fetch(url, { headers: settings.headers, signal: options.signal });
            if (!response.ok) throw await httpError(response, `label ${label}`);
            return response;
          }),
        meter,
        decode: (step) => timedDecode(meter, step, restart),
        limit: limitParam(options.limit),
        bbox: box,
        signal: options.signal,
      });
      const decoded = timedDecode(meter, () => wasmDecodeRows(rows.labels, rows.counts, rows.dims, rows.values));
      return pointsFor(decoded, labels, meter, options);
    }
    async function load(labels, url, requestOptions, options) {
      if (vastdb === "pass-through") return passThrough(labels, options);
      checkOutputs(options);
      await init();
      const meter = new Meter(options.onProgress);
      const bytes = await request(url, `points of ${labels.length === 1 ? `label ${labels[0]}` : `${labels.length} labels`}`, {
        ...requestOptions,
        signal: options.signal,
        meter,
      });
      options.signal?.throwIfAborted();
      const decoded = timedDecode(meter, () => wasmDecodeParquet(bytes));
      return pointsFor(decoded, labels, meter, options);
    }
    return {
      name,
      mode: "proxy",
      async info() {
        const s = await json(api(ds), `dataset ${name}`);
        return { name: s.name, dims: s.dims, labelCount: s.label_count, pointCount: s.point_count, attribution: s.attribution };
      },
      async getLabels({ after, limit, signal } = {}) {
        const q = new URLSearchParams();
        if (after != null) q.set("after", labelString(after));
        if (limit !== undefined) q.set("limit", String(limit));
        const page = await json(api(`${ds}/labels?${q}`), `labels of ${name}`, signal);
        return { labels: page.labels, values: BigUint64Array.from(page.labels, BigInt), nextAfter: page.next_after ?? null };
      },
      async getPointCount(label, { signal } = {}) {
        const l = labelString(label);
        return (await json(api(`${ds}/labels/${l}`), `label ${l}`, signal)).point_count;
      },
      async getBlocksForLabel(label, { signal } = {}) {
        const l = labelString(label);
        const info = await json(api(`${ds}/labels/${l}`), `label ${l}`, signal);
        return info.blocks.map((b) => ({ blockId: b.block_id, pointCount: b.point_count }));
      },
      async getPoints(label, options = {}) {
        const l = labelString(label);
        const url = api(`${ds}/labels/${l}/points?${pointsQuery(options)}`);
        return (await load([l], url, {}, options))[0];
      },
      async getPointsMany(labels, options = {}) {
        const ls = labels.map(labelString);
        if (ls.length === 0) return [];
        const url = api(`${ds}/points?${pointsQuery(options)}`);
        return load(ls, url, { method: "POST", body: JSON.stringify({ labels: ls }) }, options);
      },
    };
  }

  return {
    baseUrl: base,
    async datasets({ signal } = {}) {
      const list = await json(api("datasets"), "datasets", signal);
      return list.datasets.map((d) => ({
        name: d.name,
        status: d.status,
        backend: d.backend,
        dims: d.dims,
        labelCount: d.label_count,
        pointCount: d.point_count,
        error: d.error,
      }));
    },
    dataset,
  };
}

/** An edge-layout dataset read straight from its folder: the manifest once, then per load
 * an index page and one coalesced data range (with, the first time a file is read, its
 * footer, fetched alongside the data). */
export async function openDataset(url, options = {}) {
  await init();
  const { base, query: signed } = splitQuery(url);
  const settings = clientSettings(options);
  const etags = new Map();
  // The dataset's name: given, or the folder's (a server's …/datasets/{name}/files/ too).
  const name = options.name ?? decodeURIComponent(base.replace(/\/files\/$/, "/").split("/").filter(Boolean).pop() ?? base);

  /** Bytes `start..end` of `path` (a bounded range: no suffix ranges, no preflight). */
  async function range(path, start, end, { signal, meter } = {}) {
    return settings.limiter.run(async () => {
      const t0 = performance.now();
      const headers = { ...settings.headers, Range: `bytes=${start}-${end - 1}` };
      const response = await settings.fetch(withQuery(joinUrl(base, path), signed), { headers, signal });
      if (!response.ok) throw await httpError(response, `${path} bytes ${start}-${end - 1}`);
      checkEtag(path, response);
      let bytes = await readBody(response, meter && ((n) => meter.bytes(n)), signal);
      if (response.status === 200 && bytes.length > end - start) bytes = bytes.subarray(start, end);
      if (bytes.length !== end - start) {
        throw new PocaduckError(`${path}: asked ${end - start} bytes at ${start}, got ${bytes.length}`, "short_read");
      }
      if (meter) {
        meter.requests += 1;
        meter.fetchMs += performance.now() - t0;
      }
      return bytes;
    });
  }

  function checkEtag(path, response) {
    const etag = response.headers.get("ETag");
    if (!etag) return;
    const known = etags.get(path);
    if (known === undefined) etags.set(path, etag);
    else if (known !== etag) {
      throw new PocaduckError(
        `${path} changed while the dataset was open (ETag ${known} became ${etag}): open it again`,
        "etag_changed",
      );
    }
  }

  const manifestResponse = await settings.fetch(withQuery(joinUrl(base, "manifest.json"), signed), {
    headers: settings.headers,
    signal: options.signal,
  });
  if (!manifestResponse.ok) throw await httpError(manifestResponse, `${base}manifest.json`);
  checkEtag("manifest.json", manifestResponse);
  const manifestBytes = new Uint8Array(await manifestResponse.arrayBuffer());
  let reader, readerGeneration;
  try {
    [reader, readerGeneration] = [new EdgeReader(manifestBytes), wasmGeneration];
  } catch (e) {
    throw wasmFailure(e, "bad_manifest", `${base}manifest.json: `);
  }
  const manifest = JSON.parse(reader.manifest());

  /**
   * Remakes the reader when a trap restarted the module since it was made (its footers and
   * pages are loaded again as they are needed).
   */
  function renewReader() {
    if (readerGeneration === wasmGeneration) return;
    [reader, readerGeneration] = [new EdgeReader(manifestBytes), wasmGeneration];
    footerLoads.clear();
  }

  /** Footer loads by file, so loads that need the same footer fetch it once. */
  const footerLoads = new Map();

  /**
   * Loads the footer `request` names (from `footerFor` or `planPoints`), once: a load that
   * needs a footer another load is fetching waits for it, and fetches it itself if that
   * other load was aborted (a few times at most).
   */
  async function loadFooter(request, ctx) {
    for (let attempt = 1; ; attempt++) {
      let loading = footerLoads.get(request.file);
      if (!loading) {
        loading = (async () => {
          const bytes = await range(request.path, request.start, request.end, ctx);
          try {
            reader.setFooter(request.file, bytes);
          } catch (e) {
            throw wasmFailure(e, "bad_file", `${request.path}: `);
          }
        })();
        // A failed or aborted fetch is forgotten, so a later load fetches the footer anew.
        const mine = loading;
        mine.catch(() => footerLoads.get(request.file) === mine && footerLoads.delete(request.file));
        footerLoads.set(request.file, mine);
      }
      try {
        return await loading;
      } catch (e) {
        if (e?.name !== "AbortError" || ctx.signal?.aborted || attempt >= 3) throw e;
      }
    }
  }

  async function loadPage(request, ctx) {
    const bytes = await range(request.path, request.start, request.end, ctx);
    try {
      reader.setPage(request.page, bytes);
    } catch (e) {
      throw wasmFailure(e, "bad_file", `${request.path}: `);
    }
  }

  /** Loads the index pages of `labels`; a label no page can hold, or its page lacks, is a 404-like error. */
  async function entries(labels, ctx) {
    renewReader();
    const wanted = new Map();
    for (const l of labels) {
      const page = reader.pageFor(l);
      if (page === undefined) throw notFound(l);
      if (page !== null) wanted.set(page.page, page);
    }
    await Promise.all([...wanted.values()].map((p) => loadPage(p, ctx)));
    if (wanted.size > 0 && ctx.meter) ctx.meter.roundTrips += 1;
    return labels.map((l) => {
      const info = reader.entryInfo(l);
      if (info === undefined) throw notFound(l);
      return info;
    });
  }

  function notFound(label) {
    return new PocaduckError(`label ${label} is not in dataset ${name}`, "not_found", 404);
  }


  async function load(labels, options) {
    checkOutputs(options);
    const box = bboxParam(options.bbox);
    const limit = limitParam(options.limit);
    if (options.order !== undefined && options.order !== "xyz") {
      throw new TypeError(`order ${JSON.stringify(options.order)} is not xyz (the only order)`);
    }
    const meter = new Meter(options.onProgress);
    const ctx = { signal: options.signal, meter };
    await entries(labels, ctx);
    const plan = reader.planPoints(labels, limit);
    const ownFooters = plan.footers.filter((r) => !footerLoads.has(r.file));
    meter.bytesTotal = meter.bytesFetched + plan.bytes + ownFooters.reduce((n, r) => n + r.end - r.start, 0);
    // The index entries locate the data: the footers of files not read before come alongside.
    const [parts] = await Promise.all([
      Promise.all(plan.requests.map((r) => range(r.path, r.start, r.end, ctx))),
      Promise.all(plan.footers.map((r) => loadFooter(r, ctx))),
    ]);
    if (plan.requests.length > 0) meter.roundTrips += 1;
    options.signal?.throwIfAborted();
    const decoded = timedDecode(meter, () =>
      reader.decodePoints(
        labels,
        Uint32Array.from(plan.requests, (r) => r.file),
        BigUint64Array.from(plan.requests, (r) => BigInt(r.start)),
        parts,
        limit,
        box,
      ),
    );
    return pointsFor(decoded, labels, meter, options);
  }

  return {
    name,
    mode: "serverless",
    async info() {
      return {
        name,
        dims: manifest.dims,
        labelCount: manifest.label_count,
        pointCount: manifest.point_count,
        attribution: manifest.attribution,
      };
    },
    async getLabels({ after, limit = 1000, signal } = {}) {
      if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError(`limit ${limit} is not a positive integer`);
      const a = after == null ? undefined : labelString(after);
      renewReader();
      for (;;) {
        const step = reader.labelsAfter(a, limit);
        if (step.needPage) {
          await loadPage(step.needPage, { signal });
          continue;
        }
        const { labels, nextAfter } = step.labels;
        return { labels, values: BigUint64Array.from(labels, BigInt), nextAfter: nextAfter ?? null };
      }
    },
    async getPointCount(label, { signal } = {}) {
      const [info] = await entries([labelString(label)], { signal });
      return info.pointCount;
    },
    async getBlocksForLabel(label, { signal } = {}) {
      const l = labelString(label);
      await entries([l], { signal });
      const footer = reader.footerFor(-1);
      if (footer) await loadFooter(footer, { signal });
      const r = reader.planBlocks(l);
      if (!r) return [];
      return reader.decodeBlocks(l, await range(r.path, r.start, r.end, { signal }));
    },
    async getPoints(label, options = {}) {
      return (await load([labelString(label)], options))[0];
    },
    async getPointsMany(labels, options = {}) {
      const ls = labels.map(labelString);
      return ls.length === 0 ? [] : load(ls, options);
    },
  };
}
