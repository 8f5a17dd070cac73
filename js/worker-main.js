// The module Web Worker behind `PointsWorker` (worker.js): loads and decodes off the main
// thread and hands the typed arrays back as transferables.

import { connect, decodeArrow, decodeParquet, openDataset } from "./index.js";
import { outputBuffers } from "./outputs.js";

const datasets = new Map();
const running = new Map();

/** The dataset a message names, opened once per source. */
function dataset(source) {
  const key = JSON.stringify(source);
  if (!datasets.has(key)) {
    const options = { token: source.token, headers: source.headers };
    const opened = source.url
      ? openDataset(source.url, options)
      : Promise.resolve(connect(source.baseUrl, options).dataset(source.dataset));
    // A source that failed to open is opened again next time.
    opened.catch(() => datasets.delete(key));
    datasets.set(key, opened);
  }
  return datasets.get(key);
}

/** Every buffer of the points, each once (a caller's output array is shared by its runs). */
function transferables(points) {
  return [...new Set(points.flatMap((p) => [p.int64.buffer, p.positions.buffer, p.origin.buffer]))];
}

self.onmessage = async ({ data }) => {
  const { id, op } = data;
  if (op === "abort") {
    running.get(id)?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(id, controller);
  try {
    let points;
    if (op === "decodeArrow") points = await decodeArrow(data.bytes, data.outputs);
    else if (op === "decodeParquet") points = await decodeParquet(data.bytes, data.outputs);
    else if (op === "getPoints") {
      const options = {
        ...data.options,
        signal: controller.signal,
        onProgress: (progress) => self.postMessage({ id, progress }),
      };
      points = await (await dataset(data.source)).getPointsMany(data.labels, options);
    } else throw new TypeError(`unknown operation ${op}`);
    self.postMessage({ id, points }, transferables(points));
  } catch (e) {
    // The caller's output arrays go back with the error, so a failed load loses none.
    const given = op === "getPoints" ? data.options : data.outputs;
    const outputs = { int64: given?.int64, positions: given?.positions };
    self.postMessage({ id, error: { name: e.name, message: e.message, code: e.code, status: e.status, requestId: e.requestId }, outputs }, outputBuffers(outputs));
  } finally {
    running.delete(id);
  }
};
