/**
 * pocaduck-edge: neuron point clouds for browsers, Web Workers and Node ≥ 18.
 *
 * Labels are uint64 and many exceed 2^53: they come back as decimal strings and
 * `BigUint64Array`s, never as JS numbers. Points come back exact (`BigInt64Array`, N × D
 * row-major) and ready to render (`Float32Array`, N × 3, minus a float64 `origin`).
 */

/** A label: a `bigint`, a decimal string, or a `number` that is a safe integer. */
export type LabelLike = bigint | string | number;

/** Where a load's time and bytes went. */
export interface Timing {
  /** Requests made for this call (index pages, data ranges and the footers of files read
   * for the first time; not the one-off manifest). */
  requests: number;
  /** Waits on the network, one after the other, for this call: requests made together
   * count once (serverless: the index page, then the data ranges with any footers). */
  roundTrips: number;
  /** Bytes received for this call. */
  bytesFetched: number;
  /** Milliseconds waiting for the network. */
  fetchMs: number;
  /** Milliseconds decoding into typed arrays. */
  decodeMs: number;
  /** Milliseconds from call to result. */
  totalMs: number;
}

/** Progress of one load, reported after each fetched chunk. */
export interface Progress {
  /** Bytes received so far. */
  bytesLoaded: number;
  /** Bytes this load will fetch, when known beforehand (serverless mode), else `undefined`. */
  bytesTotal?: number;
}

/** Inclusive integer bounds, exact. */
export interface BBox {
  min: BigInt64Array;
  max: BigInt64Array;
}

/** One label's points. */
export interface Points {
  /** The label, as a decimal string. */
  label: string;
  /** Number of points N. */
  count: number;
  /** Values per point D. */
  dims: number;
  /** N × D int64 coordinates, row-major, exact. */
  int64: BigInt64Array;
  /** N × 3 positions for rendering: the first three dims minus `origin`, as float32. */
  positions: Float32Array;
  /** The integer centre of the points' bounds, per axis (3 values). */
  origin: Float64Array;
  /** Bounds of the returned points, or `null` when there are none. */
  bbox: BBox | null;
  /** Where the time went (shared by the labels of one `getPointsMany`). */
  timing: Timing;
}

/**
 * Which outputs to build (both by default); a skipped one is an empty array. Either may be
 * a caller's array to write into instead of a new one (a viewer re-using its buffers): the
 * runs are written one after another from its start, each `Points` getting a view of its
 * part; an array too short for the answer is a `RangeError`, before anything is written.
 */
export interface Outputs {
  /** Build `int64` (default true), or write it into this array (N × D values per run). */
  int64?: boolean | BigInt64Array;
  /** Build `positions` and `origin` (default true), or write positions into this array (N × 3 per run). */
  positions?: boolean | Float32Array;
}

/** Options of a points load. */
export interface PointsOptions extends Outputs {
  /** Point order: `"xyz"`, PoCADuck's (the only order). */
  order?: "xyz";
  /** Keep only points inside these inclusive bounds of the first dims: `[min[], max[]]`. */
  bbox?: [ArrayLike<number | bigint>, ArrayLike<number | bigint>];
  /** At most this many points per label, evenly spread over its order (a level of detail). */
  limit?: number;
  /** Cancels the load: the promise rejects with an `AbortError` and nothing is kept. */
  signal?: AbortSignal;
  /** Called as bytes arrive. */
  onProgress?: (progress: Progress) => void;
}

/** A block of PoCADuck's and how many of the label's points it holds. */
export interface Block {
  blockId: string;
  pointCount: number;
}

/** A page of labels. */
export interface LabelPage {
  /** Labels as decimal strings, ascending. */
  labels: string[];
  /** The same labels, exact. */
  values: BigUint64Array;
  /** Pass as `after` for the next page; `null` on the last page. */
  nextAfter: string | null;
}

/** Summary of a dataset. */
export interface DatasetInfo {
  name: string;
  dims: string[];
  labelCount: number;
  pointCount: number;
  attribution?: string;
}

/** One dataset, through the proxy or straight from its files. */
export interface Dataset {
  readonly name: string;
  /** `"proxy"` or `"serverless"`. */
  readonly mode: "proxy" | "serverless";
  info(): Promise<DatasetInfo>;
  getLabels(options?: { after?: LabelLike; limit?: number; signal?: AbortSignal }): Promise<LabelPage>;
  getPointCount(label: LabelLike, options?: { signal?: AbortSignal }): Promise<number>;
  getBlocksForLabel(label: LabelLike, options?: { signal?: AbortSignal }): Promise<Block[]>;
  getPoints(label: LabelLike, options?: PointsOptions): Promise<Points>;
  getPointsMany(labels: LabelLike[], options?: PointsOptions): Promise<Points[]>;
}

/** Options of `connect` and `openDataset`. */
export interface ClientOptions {
  /** Sent as `Authorization: Bearer <token>` (a dataset that needs a credential:
   * docs/security.md). A signed URL needs no option: pass it as the URL. */
  token?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Requests in flight at once per client (default and maximum 6). */
  concurrency?: number;
}

/** How a dataset is read through a server. */
export interface DatasetOptions {
  /**
   * For a VastDB table: `"reframed"` (default) reads the server's own answer, VastDB's reply
   * re-framed into one Parquet file; `"pass-through"` reads VastDB's reply pages as VastDB
   * sent them (the server only signs and forwards), one request per page, de-framed here by
   * a second WebAssembly module loaded on first use. Both give the same points.
   */
  vastdb?: "reframed" | "pass-through";
}

/** A pocaduck-edge server (the native server or the Worker). */
export interface Client {
  readonly baseUrl: string;
  /** Datasets the server offers. */
  datasets(options?: { signal?: AbortSignal }): Promise<(DatasetInfo & { status: string; backend: string })[]>;
  /** One dataset, read through the server: one round trip per load. */
  dataset(name: string, options?: DatasetOptions): Dataset;
}

/** The decoded points of a whole Arrow or Parquet answer, one entry per label. */
export type Decoded = Points[];

/** Why a call failed: an HTTP status and the server's error code, or a local check. */
export class PocaduckError extends Error {
  /** The server's code (`not_found`, `dataset_unavailable`, `unauthorized` (401: no
   * credential), `forbidden` (403: a token or signed URL that does not grant it), …), or the
   * client's own: `http` (an error answer without a JSON body; `unauthorized` and
   * `forbidden` for a 401 and a 403 without one), `etag_changed`, `bad_manifest`,
   * `bad_file`, `short_read`, `decode`, `worker`. */
  readonly code: string;
  /** The HTTP status, when a server answered. */
  readonly status?: number;
  /** The server's id of the request (its `X-Request-Id`), when it gave one: the key to its
   * log, where a 5xx answer's details are. */
  readonly requestId?: string;
}

/** Loads the WebAssembly module (called for you by every other function; idempotent). */
export function init(wasm?: BufferSource | WebAssembly.Module | URL | string): Promise<void>;
/** A client of the pocaduck-edge server at `baseUrl` (e.g. `https://host` or `/`). A query
 * on `baseUrl` (a signed URL's `expires`, `kid`, `prefix` and `sig`) goes on every request. */
export function connect(baseUrl: string, options?: ClientOptions): Client;
/** An edge-layout dataset read straight from a bucket or static host (its folder URL). A
 * query on `url` (a signed URL's parameters, for a server's `…/files/`) goes on every request. */
export function openDataset(url: string, options?: ClientOptions & { name?: string }): Promise<Dataset>;
/** Decodes an Arrow IPC stream of points in either of the API's shapes: `label: uint64,
 * points: fixed_size_list<int64>[D]`, or (`shape=columns`) one int32/int64 column per dim
 * after a `label` column, or without one when the schema metadata `pocaduck_edge:label` names
 * the answer's one label. */
export function decodeArrow(bytes: Uint8Array | ArrayBuffer, outputs?: Outputs): Promise<Decoded>;
/** Decodes a Parquet file of points (`label` and one int32/int64 column per dim). */
export function decodeParquet(bytes: Uint8Array | ArrayBuffer, outputs?: Outputs): Promise<Decoded>;
/** A label in canonical form (decimal string); throws `TypeError` for anything that is not a u64. */
export function labelString(label: LabelLike): string;
