// Loads and decodes point clouds in a module Web Worker, so the main thread only receives
// finished typed arrays (moved, not copied). Types: worker.d.ts.

import { PocaduckError, labelString } from "./index.js";
import { checkOutputs, outputBuffers } from "./outputs.js";

function unique(buffers) {
  return [...new Set(buffers)];
}

/** A Web Worker that loads and decodes points. */
export class PointsWorker {
  constructor(url) {
    // Written out in full, `new Worker(new URL(…, import.meta.url), …)` is the form bundlers
    // (Vite, webpack) recognise and bundle as a worker.
    this.worker =
      url === undefined
        ? new Worker(new URL("./worker-main.js", import.meta.url), { type: "module" })
        : new Worker(url, { type: "module" });
    this.next = 0;
    this.pending = new Map();
    this.worker.onmessage = ({ data }) => {
      const call = this.pending.get(data.id);
      if (!call) return;
      if (data.progress) {
        call.onProgress?.(data.progress);
        return;
      }
      this.pending.delete(data.id);
      if (data.error) {
        const { name, message, code, status, requestId } = data.error;
        const error = name === "TypeError" ? new TypeError(message)
          : name === "RangeError" ? new RangeError(message)
          : name === "AbortError" ? new DOMException(message, "AbortError")
          : new PocaduckError(message, code ?? "worker", status, requestId);
        // The caller's output arrays, moved back from the worker.
        if (data.outputs?.int64 || data.outputs?.positions) error.outputs = data.outputs;
        call.reject(error);
      } else call.resolve(data.points);
    };
    this.worker.onerror = (event) => {
      // An ErrorEvent carries the worker's error; a script that failed to load, a bare Event.
      const why = event.message || `its script did not load (${event.type})`;
      for (const call of this.pending.values()) call.reject(new PocaduckError(`worker failed: ${why}`, "worker"));
      this.pending.clear();
    };
  }

  call(message, transfer = [], { signal, onProgress } = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new DOMException("aborted", "AbortError"));
        return;
      }
      signal?.addEventListener("abort", () => this.worker.postMessage({ id, op: "abort" }), { once: true });
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, ...message }, transfer);
    });
  }

  /**
   * Points of labels of a dataset: `{baseUrl, dataset}` (proxy) or `{url}` (serverless). A
   * caller's output array moves to the worker with its buffer and comes back as the
   * `Points`' views.
   */
  getPointsMany(source, labels, options = {}) {
    const { signal, onProgress, ...rest } = options;
    checkOutputs(rest);
    const message = { op: "getPoints", source, labels: labels.map(labelString), options: rest };
    return this.call(message, outputBuffers(rest), { signal, onProgress });
  }

  /** One label's points. */
  async getPoints(source, label, options = {}) {
    return (await this.getPointsMany(source, [label], options))[0];
  }

  /** Decodes an Arrow IPC stream in the worker; `bytes`' buffer is moved there. */
  decodeArrow(bytes, outputs = {}) {
    checkOutputs(outputs);
    return this.call({ op: "decodeArrow", bytes, outputs }, unique([bytes.buffer, ...outputBuffers(outputs)]));
  }

  /** Decodes a Parquet file in the worker; `bytes`' buffer is moved there. */
  decodeParquet(bytes, outputs = {}) {
    checkOutputs(outputs);
    return this.call({ op: "decodeParquet", bytes, outputs }, unique([bytes.buffer, ...outputBuffers(outputs)]));
  }

  /** Stops the worker; calls in flight reject. */
  terminate() {
    this.worker.terminate();
    for (const call of this.pending.values()) call.reject(new PocaduckError("worker terminated", "worker"));
    this.pending.clear();
  }
}
