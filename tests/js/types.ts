// Compiled with `tsc --noEmit` by the test command: the declarations describe the API as
// a TypeScript user calls it, and misuse is a compile error.

import { PocaduckError, connect, decodeArrow, labelString, openDataset } from "../../js/index.js";
import type { Dataset, LabelLike, Points, Progress } from "../../js/index.js";
import { PointsWorker } from "../../js/worker.js";

async function usage(): Promise<void> {
  const client = connect("http://127.0.0.1:8080", { token: "t", concurrency: 4 });
  const list = await client.datasets();
  const proxy: Dataset = client.dataset(list[0].name);
  const serverless: Dataset = await openDataset("https://bucket.example/ds/", { headers: { "x-a": "b" } });
  const page = await proxy.getLabels({ after: "9007199254740993", limit: 10 });
  const first: string = page.labels[0];
  const exact: bigint = page.values[0];
  const controller = new AbortController();
  const points: Points = await serverless.getPoints(exact, {
    limit: 1000,
    bbox: [[0, 0, 0], [10n, 10n, 10n]],
    signal: controller.signal,
    onProgress: (p: Progress) => p.bytesLoaded + (p.bytesTotal ?? 0),
    int64: false,
  });
  const x: bigint = points.int64[0];
  const px: number = points.positions[0] + points.origin[0];
  const waits: number = points.timing.roundTrips + points.timing.requests;
  const many: Points[] = await proxy.getPointsMany([first, 1n, 2], { order: "xyz" });
  const count: number = await proxy.getPointCount(labelString(many[0].label));
  const blocks = await proxy.getBlocksForLabel(first);
  const id: string = blocks[0].blockId;
  const decoded = await decodeArrow(new Uint8Array(8), { positions: false });
  const worker = new PointsWorker();
  const w: Points = await worker.getPoints({ baseUrl: "/", dataset: "d" }, "1");
  // A viewer re-using its buffers: the points are written into them.
  const reused: Points[] = await proxy.getPointsMany(["1", "2"], { positions: new Float32Array(1 << 20), int64: false });
  const viaWorker = await worker.decodeParquet(new Uint8Array(8), { int64: new BigInt64Array(30) });
  console.log(reused.length, viaWorker.length);
  worker.terminate();
  const label: LabelLike = 5n;
  console.log(x, px, waits, count, id, decoded.length, w.count, label);
  try {
    await proxy.getPoints(label);
  } catch (e) {
    if (e instanceof PocaduckError) console.log(e.code, e.status, e.requestId);
    // A dataset that needs a credential: 401 `unauthorized`, 403 `forbidden`.
    if (e instanceof PocaduckError && (e.status === 401 || e.code === "forbidden")) console.log(e.message);
  }
  // A URL signed for a prefix carries its credential itself.
  const signed: Dataset = connect("https://h.example/?expires=1&kid=k1&prefix=%2Fv1%2F&sig=x").dataset("d");
  console.log(signed.name);
  // @ts-expect-error: a label is never an object
  await proxy.getPoints({});
  // @ts-expect-error: positions are float32
  await proxy.getPoints(1n, { positions: new Float64Array(3) });
  // @ts-expect-error: only the xyz order exists
  await proxy.getPoints(1n, { order: "zyx" });
}
void usage;
