import type { LabelLike, Outputs, Points, PointsOptions } from "./index.js";

/** Where a worker reads: a server's dataset (proxy) or an edge-layout folder (serverless). */
export type Source =
  | { baseUrl: string; dataset: string; token?: string; headers?: Record<string, string> }
  | { url: string; token?: string; headers?: Record<string, string> };

/**
 * Loads and decodes points in a module Web Worker; results arrive as transferred typed
 * arrays, so the main thread does no decoding and no copying. A caller's output array
 * (`Outputs`) is transferred to the worker with its whole buffer (detached here) and comes
 * back as the `Points`' views of that buffer; when the call fails, the rejection's error
 * carries the arrays back as `error.outputs` (`{int64?, positions?}`).
 */
export class PointsWorker {
  /** Starts the worker (`worker-main.js` beside this module unless `url` says otherwise). */
  constructor(url?: URL | string);
  getPoints(source: Source, label: LabelLike, options?: PointsOptions): Promise<Points>;
  getPointsMany(source: Source, labels: LabelLike[], options?: PointsOptions): Promise<Points[]>;
  /** Decodes in the worker; `bytes.buffer` is transferred (detached here). */
  decodeArrow(bytes: Uint8Array, outputs?: Outputs): Promise<Points[]>;
  /** Decodes in the worker; `bytes.buffer` is transferred (detached here). */
  decodeParquet(bytes: Uint8Array, outputs?: Outputs): Promise<Points[]>;
  /** Stops the worker; calls in flight reject. */
  terminate(): void;
}
