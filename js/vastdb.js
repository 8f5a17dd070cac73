// VastDB pass-through: VastDB's own reply pages, passed through by a server unchanged, read
// page after page and de-framed by a WebAssembly module of their own, which only a dataset
// opened with `{ vastdb: "pass-through" }` loads (index.js imports this file on first use).

import initWasm, { VastReplies, __wbg_reset_state } from "./pkg/pocaduck_edge_wasm_vastdb.js";
import { bodyChunks } from "./body.js";
import { wasmInput } from "./wasm-input.js";

let ready;
/** Loads the pass-through module once. */
function init() {
  ready ??= (async () => {
    const url = new URL("./pkg/pocaduck_edge_wasm_vastdb_bg.wasm", import.meta.url);
    await initWasm({ module_or_path: await wasmInput(url) });
  })();
  return ready;
}

/** Restarts the pass-through module after a trap (a fresh instance of the compiled module). */
export function restart() {
  __wbg_reset_state();
}

function base64Bytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * The rows of `labels` from their reply pages: `fetchPage(label, resume)` answers a page's
 * `Response` (from the start when `resume` is undefined); `meter` counts requests, bytes
 * and time; `decode(fn)` runs a wasm step, timing it and turning its errors into the
 * client's. Returns `{labels, counts, dims, values}`.
 */
export async function readReplies(labels, { fetchPage, meter, decode, limit, bbox, signal }) {
  await init();
  const replies = new VastReplies();
  let finished = false;
  try {
    for (const label of labels) {
      decode(() => replies.beginLabel(label));
      let resume;
      do {
        const t0 = performance.now();
        const response = await fetchPage(label, resume);
        const schema = response.headers.get("pocaduck-reply-schema");
        const subSplits = Number(response.headers.get("pocaduck-reply-sub-splits"));
        decode(() => replies.beginPage(base64Bytes(schema ?? ""), subSplits));
        for await (const chunk of bodyChunks(response, signal)) {
          meter.bytes(chunk.length);
          decode(() => replies.push(chunk));
        }
        meter.requests += 1;
        meter.roundTrips += 1;
        meter.fetchMs += performance.now() - t0;
        resume = decode(() => replies.endPage());
      } while (resume !== undefined);
    }
    finished = true;
    const rows = decode(() => replies.finish(limit, bbox));
    try {
      return { labels: rows.labels, counts: rows.counts, dims: rows.dims, values: rows.values };
    } finally {
      rows.free();
    }
  } finally {
    if (!finished) replies.free();
  }
}
