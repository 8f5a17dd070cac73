// The Worker against the native server, side by side in one run, on the same requests:
// `node bench/worker.mjs` (scripts/bench-worker.sh builds what it needs and runs it).
//
// The 64 nm sample (its neuron 722817260 has 1,332,802 points) is served by the release
// `pocaduck-edge serve` and by the Worker in workerd (miniflare, on a loopback port), each
// from the same places: the edge-layout files (the Worker from its R2 bucket, seeded with
// them) and a columnar VastDB table on a `vastdb-emulator`. For the big label and the
// smallest one, in each answer format: the median wall time of a request whose body is read
// to its end, and the CPU time (user + system) the serving process spent per request, from
// its /proc counters around the timed requests. Also the Worker's size, gzipped.
//
// workerd's CPU time includes the local R2 bucket's, which miniflare runs inside it; the
// same Parquet answer read from a base URL (the native server's /files/) shows the Worker's
// own share, the native server's reading of the file then counted on its side.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { binary, emulate, emulatorBinary, run, serve } from "../tests/support/server.mjs";
import { BUILD, startWorker } from "../tests/support/worker.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = binary("release");
const NEURON = "722817260";
const RUNS = 15;
const KEYS = { accessKey: "AKIABENCHWORKER", secretKey: "bench-worker-secret" };
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/** The 64 nm sample, built once under the user's cache. */
async function sample() {
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "pocaduck-edge", "bench-worker");
  const dir = join(cache, "sample-64nm");
  if (!existsSync(join(dir, "manifest.json"))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(cache, { recursive: true });
    await run(["sample", tmp, "--voxel-nm", "64"], { bin: BIN });
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

/** Median ms of RUNS requests after a warm-up, the bytes, and the CPU ms per request of `pid`. */
async function measure(url, pid) {
  const bytes = await drain(url);
  const times = [];
  const cpu0 = cpuSeconds(pid);
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await drain(url);
    times.push(performance.now() - t);
  }
  const cpu = ((cpuSeconds(pid) - cpu0) * 1000) / RUNS;
  times.sort((a, b) => a - b);
  return { ms: times[RUNS >> 1], bytes, cpu };
}

const dir = await sample();
const name = "sample-64nm";
const work = join(ROOT, ".wrangler", "bench-worker");
rmSync(work, { recursive: true, force: true });
const emulator = await emulate(join(work, "emulator"), { ...KEYS, bin: emulatorBinary("release") });
const env = { ...process.env, VASTDB_ACCESS_KEY: KEYS.accessKey, VASTDB_SECRET_KEY: KEYS.secretKey };
const table = ["--bucket", "pocaduck", "--schema", "bench", "--table", "vast", "--layout", "columnar"];
await run(["vastdb", "load", dir, "--endpoint", emulator.url, ...table], { bin: BIN, env });
const vastFlags = ["--vastdb-endpoint", emulator.url, "--vastdb-bucket", "pocaduck", "--vastdb-schema", "bench", "--vastdb-table", "vast", "--vastdb-layout", "columnar"];
const native = await serve(["--data", dir, ...vastFlags], { bin: BIN, env: { ...env, RUST_LOG: "warn" } });
const nativePid = pidOf(["-n", "-f", `${BIN} serve`]);
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
const workerdPid = pidOf(["-P", String(process.pid), "-x", "workerd"]);

try {
  const { labels } = await (await fetch(`${native.url}/v1/datasets/${name}/labels?limit=1000`)).json();
  const counts = new Map();
  for (const l of labels) counts.set(l, (await (await fetch(`${native.url}/v1/datasets/${name}/labels/${l}`)).json()).point_count);
  const smallest = labels.reduce((a, b) => (counts.get(b) < counts.get(a) ? b : a));
  const rows = [];
  for (const label of [NEURON, smallest]) {
    // The answer, the Worker's dataset, and the native server's that answers alike.
    for (const [what, dataset, nativeDataset, query] of [
      ["Parquet (stored row groups)", name, name, "format=parquet"],
      ["Parquet (stored row groups), the Worker reading a base URL", "web", name, "format=parquet"],
      ["Arrow rows", name, name, "format=arrow"],
      ["Arrow columns", name, name, "format=arrow&shape=columns"],
      ["VastDB, re-framed (Arrow columns)", "vast", "vast", "format=arrow&shape=columns"],
    ]) {
      const points = (d) => `/v1/datasets/${d}/labels/${label}/points?${query}`;
      const path = points(dataset);
      const n = await measure(native.url + points(nativeDataset), nativePid);
      const w = await measure(worker.url + path, workerdPid);
      if (n.bytes !== w.bytes) throw new Error(`${path}: ${n.bytes} bytes natively, ${w.bytes} from the Worker`);
      rows.push({ label, points: counts.get(label), what, n, w });
      console.error(`[worker-bench] ${label} ${what}: native ${n.ms.toFixed(1)} ms, Worker ${w.ms.toFixed(1)} ms`);
    }
  }
  const gzipped = ["index.js", "index_bg.wasm"].map((f) => gzipSync(readFileSync(join(BUILD, f)), { level: 9 }).length);
  const fmt = (x) => x.toFixed(1);
  console.log(`machine: ${process.arch}, 2 cores; Node ${process.version}; ${new Date().toISOString().slice(0, 16)} UTC; medians of ${RUNS} requests after a warm-up\n`);
  console.log("| label | points | answer | bytes | native ms | Worker ms | Worker / native | native CPU ms per request | workerd CPU ms per request |");
  console.log("|---|---:|---|---:|---:|---:|---:|---:|---:|");
  for (const { label, points, what, n, w } of rows) {
    console.log(`| ${label} | ${points.toLocaleString("en")} | ${what} | ${n.bytes.toLocaleString("en")} | ${fmt(n.ms)} | ${fmt(w.ms)} | ${(w.ms / n.ms).toFixed(2)}× | ${fmt(n.cpu)} | ${fmt(w.cpu)} |`);
  }
  console.log(`\nThe Worker gzipped: ${gzipped.reduce((a, b) => a + b).toLocaleString("en")} bytes (index.js ${gzipped[0].toLocaleString("en")}, index_bg.wasm ${gzipped[1].toLocaleString("en")})`);
} finally {
  await worker.dispose();
  await native.stop();
  await emulator.stop();
}
