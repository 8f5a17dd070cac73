// The Worker against the native server, side by side in one run, on the same requests:
// `node bench/worker.mjs` (scripts/bench-worker.sh builds what it needs and runs it).
//
// Two labels: neuron 722817260 of the 64 nm sample (1,332,802 points), and label
// 18446744073709551614 of the 192 nm sample (3,001 points). Each sample is served by the
// release `pocaduck-edge serve` and by the Worker in workerd (miniflare, on a loopback port),
// each from the same places: the edge-layout files (the Worker from its R2 bucket, seeded
// with them) and a columnar VastDB table on a `vastdb-emulator`. For each label, in each
// answer format: the median wall time of a request whose body is read to its end, and the
// CPU time (user + system) the serving process spent per request, from its /proc counters
// around the timed requests. A VastDB table is also read by the npm client, re-framed
// (Parquet) and passed through (every page, de-framed by the client): the whole load, its
// decoding in this process, not the server's. Also the Worker's size, gzipped.
//
// workerd's CPU time includes the local R2 bucket's and miniflare's entry worker's, which
// run inside it. The floors show their share: a plain relay Worker (a few lines of JS) in a
// workerd of its own, streaming as many bytes of the same file from its R2 bucket, and
// relaying the same pass-through page fetched from the native server. The same
// Parquet answer read from a base URL (the native server's /files/) shows the Worker's own
// share, the native server's reading of the file then counted on its side.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { Miniflare } from "miniflare";

import { connect } from "../js/index.js";
import { binary, emulate, emulatorBinary, run, serve } from "../tests/support/server.mjs";
import { BUILD, startWorker, wranglerToml } from "../tests/support/worker.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = binary("release");
/** The labels, and the voxel size of the sample each is taken from. */
const LABELS = [
  { label: "722817260", voxelNm: 64 },
  { label: "18446744073709551614", voxelNm: 192 },
];
const RUNS = 15;
const KEYS = { accessKey: "AKIABENCHWORKER", secretKey: "bench-worker-secret" };
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/** The sample at `voxelNm`, built once under the user's cache. */
async function sample(voxelNm) {
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "pocaduck-edge", "bench-worker");
  const dir = join(cache, `sample-${voxelNm}nm`);
  if (!existsSync(join(dir, "manifest.json"))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(cache, { recursive: true });
    await run(["sample", tmp, "--voxel-nm", String(voxelNm)], { bin: BIN });
    renameSync(tmp, dir);
  }
  return dir;
}

/** CPU seconds (user + system) process `pid` has used. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

function pidOf(args) {
  return execFileSync("pgrep", args, { encoding: "utf8" }).trim().split("\n")[0];
}

async function drain(url) {
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  let bytes = 0;
  for await (const chunk of r.body) bytes += chunk.length;
  return bytes;
}

/** Median ms of RUNS loads after a warm-up, the bytes one load reads, and the CPU ms per
 * load of `pid`; `load` resolves to its bytes. */
async function measure(load, pid) {
  const bytes = await load();
  const times = [];
  const cpu0 = cpuSeconds(pid);
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await load();
    times.push(performance.now() - t);
  }
  const cpu = ((cpuSeconds(pid) - cpu0) * 1000) / RUNS;
  times.sort((a, b) => a - b);
  return { ms: times[RUNS >> 1], bytes, cpu };
}

/** A load of `label`'s points from a VastDB table through `base` by the npm client, in mode
 * `vastdb` ("pass-through" or "reframed"). */
function clientLoad(base, dataset, label, vastdb) {
  const d = connect(base).dataset(dataset, { vastdb });
  return async () => (await d.getPoints(label, { positions: false })).timing.bytesFetched;
}

/** The floor: a plain relay Worker streaming byte ranges of `dir`'s points file from R2, or
 * the answer of a URL it fetches. */
async function relayWorker(dir) {
  const { date, binding } = wranglerToml();
  const script = `export default {
    async fetch(request, env) {
      const q = new URL(request.url).searchParams;
      if (q.has("url")) return fetch(q.get("url"));
      const range = { offset: Number(q.get("offset")), length: Number(q.get("length")) };
      const object = await env.${binding}.get(q.get("key"), { range });
      return new Response(object.body);
    },
  };`;
  const mf = new Miniflare({ modules: true, script, compatibilityDate: date, r2Buckets: [binding], host: "127.0.0.1", port: 0 });
  const url = await mf.ready;
  const file = "points/part-00000.parquet";
  await (await mf.getR2Bucket(binding)).put(file, new Uint8Array(readFileSync(join(dir, file))));
  const pids = execFileSync("pgrep", ["-P", String(process.pid), "-x", "workerd"], { encoding: "utf8" }).trim().split("\n");
  return { url: url.origin, file, size: readFileSync(join(dir, file)).length, pids, dispose: () => mf.dispose() };
}

/** Every answer of `label` from the native server and the Worker over the sample `dir`. */
async function benchLabel(label, dir) {
  const name = basename(dir);
  const work = join(ROOT, ".wrangler", "bench-worker");
  rmSync(work, { recursive: true, force: true });
  const emulator = await emulate(join(work, "emulator"), { ...KEYS, bin: emulatorBinary("release") });
  const env = { ...process.env, VASTDB_ACCESS_KEY: KEYS.accessKey, VASTDB_SECRET_KEY: KEYS.secretKey };
  const table = ["--bucket", "pocaduck", "--schema", "bench", "--table", "vast", "--layout", "columnar"];
  await run(["vastdb", "load", dir, "--endpoint", emulator.url, ...table], { bin: BIN, env });
  const vastFlags = ["--vastdb-endpoint", emulator.url, "--vastdb-bucket", "pocaduck", "--vastdb-schema", "bench", "--vastdb-table", "vast", "--vastdb-layout", "columnar"];
  const native = await serve(["--data", dir, ...vastFlags], { bin: BIN, env: { ...env, RUST_LOG: "warn" } });
  const nativePid = pidOf(["-n", "-f", `${BIN} serve`]);
  const relay = await relayWorker(dir);
  const worker = await startWorker({
    vars: {
      DATASETS: `r2://DATA/${name}, web=${native.url}/v1/datasets/${name}/files/`,
      VASTDB_ENDPOINT: emulator.url,
      VASTDB_BUCKET: "pocaduck",
      VASTDB_SCHEMA: "bench",
      VASTDB_TABLE: "vast",
      VASTDB_LAYOUT: "columnar",
      VASTDB_ACCESS_KEY: KEYS.accessKey,
      VASTDB_SECRET_KEY: KEYS.secretKey,
    },
    seed: { [name]: dir },
  });
  const workerdPid = execFileSync("pgrep", ["-P", String(process.pid), "-x", "workerd"], { encoding: "utf8" })
    .trim()
    .split("\n")
    .find((pid) => !relay.pids.includes(pid));
  const rows = [];
  try {
    const info = await (await fetch(`${native.url}/v1/datasets/${name}/labels/${label}`)).json();
    // The answer, the Worker's dataset, and the native server's that answers alike.
    for (const [what, dataset, nativeDataset, query] of [
      ["Parquet (stored row groups)", name, name, "format=parquet"],
      ["Parquet (stored row groups), the Worker reading a base URL", "web", name, "format=parquet"],
      ["Arrow rows", name, name, "format=arrow"],
      ["Arrow columns", name, name, "format=arrow&shape=columns"],
      ["VastDB, re-framed (Arrow columns)", "vast", "vast", "format=arrow&shape=columns"],
      ["VastDB, re-framed (the npm client's load: Parquet)", "vast", "vast", "reframed"],
      ["VastDB, passed through (the npm client's load: every page, de-framed)", "vast", "vast", "pass-through"],
    ]) {
      const points = (d) => `/v1/datasets/${d}/labels/${label}/points?${query}`;
      const client = query === "reframed" || query === "pass-through";
      const [n, w] = client
        ? [await measure(clientLoad(native.url, nativeDataset, label, query), nativePid), await measure(clientLoad(worker.url, dataset, label, query), workerdPid)]
        : [await measure(() => drain(native.url + points(nativeDataset)), nativePid), await measure(() => drain(worker.url + points(dataset)), workerdPid)];
      if (n.bytes !== w.bytes) throw new Error(`${what} of ${label}: ${n.bytes} bytes natively, ${w.bytes} from the Worker`);
      rows.push({ label, points: info.point_count, what, n, w });
      console.error(`[worker-bench] ${label} ${what}: native ${n.ms.toFixed(1)} ms, Worker ${w.ms.toFixed(1)} ms`);
    }
    // The floor: as many bytes as the Parquet answer, relayed from R2 by a few lines of JS.
    const parquetBytes = rows[0].n.bytes;
    const length = Math.min(parquetBytes, relay.size);
    const floor = await measure(() => drain(`${relay.url}/?key=${relay.file}&offset=0&length=${length}`), relay.pids[0]);
    rows.push({ label, points: info.point_count, what: "floor: a plain JS relay Worker, as many bytes from R2", n: null, w: floor });
    // The floor of pass-through: the same reply page, fetched from the native server by a
    // plain JS relay Worker (the native server makes VastDB's GET with a body).
    const page = `${native.url}/v1/datasets/vast/labels/${label}/vastdb-reply`;
    const relayed = await measure(() => drain(`${relay.url}/?url=${encodeURIComponent(page)}`), relay.pids[0]);
    rows.push({ label, points: info.point_count, what: "floor: a plain JS relay Worker, the pass-through page fetched", n: null, w: relayed });
  } finally {
    await worker.dispose();
    await relay.dispose();
    await native.stop();
    await emulator.stop();
  }
  return rows;
}

const rows = [];
for (const { label, voxelNm } of LABELS) rows.push(...(await benchLabel(label, await sample(voxelNm))));
const gzipped = ["index.js", "index_bg.wasm"].map((f) => gzipSync(readFileSync(join(BUILD, f)), { level: 9 }).length);
const fmt = (x) => x.toFixed(1);
console.log(`machine: ${process.arch}, 2 cores; Node ${process.version}; ${new Date().toISOString().slice(0, 16)} UTC; medians of ${RUNS} requests after a warm-up\n`);
console.log("| label | points | answer | bytes | native ms | Worker ms | Worker / native | native CPU ms per request | workerd CPU ms per request |");
console.log("|---|---:|---|---:|---:|---:|---:|---:|---:|");
for (const { label, points, what, n, w } of rows) {
  const native = n ? [fmt(n.ms), `${(w.ms / n.ms).toFixed(2)}×`, fmt(n.cpu)] : ["", "", ""];
  console.log(`| ${label} | ${points.toLocaleString("en")} | ${what} | ${w.bytes.toLocaleString("en")} | ${native[0]} | ${fmt(w.ms)} | ${native[1]} | ${native[2]} | ${fmt(w.cpu)} |`);
}
console.log(`\nThe Worker gzipped: ${gzipped.reduce((a, b) => a + b).toLocaleString("en")} bytes (index.js ${gzipped[0].toLocaleString("en")}, index_bg.wasm ${gzipped[1].toLocaleString("en")})`);
