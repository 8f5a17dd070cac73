// Where our decoders spend their time: V8's sampling profiler (node:inspector) over repeated
// decodeParquet / decodeArrow calls, self time by function (wasm functions by name in a
// build that keeps its names section: `scripts/build-wasm.sh --profiling DIR`, then
// `--package DIR`; the shipped pkg/ has none). decode.mjs uses `profileCalls`; alone:
//   node bench/js/profile-decode.mjs ANSWER.parquet|ANSWER.arrow [--package DIR] [--runs 20] [--output int64|float32] [--top 25]
// with an answer from `pocaduck-edge serve`, e.g.
//   curl -o a.parquet 'http://127.0.0.1:8080/v1/datasets/DS/labels/LABEL/points?format=parquet'

import { readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * Calls `fn` `runs` times under the sampling profiler. Returns `{ msPerCall, top: [{name,
 * where, percent}] }`: self time per function, largest first.
 */
export async function profileCalls(fn, { runs = 10, top = 10 } = {}) {
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) await fn();
    const msPerCall = (performance.now() - t0) / runs;
    const { profile } = await session.post("Profiler.stop");
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    const dt = profile.timeDeltas;
    for (let i = 0; i < profile.samples.length; i++) {
      const f = byId.get(profile.samples[i]).callFrame;
      const where = f.url ? f.url.replace(/^.*\//, "").replace(/-[0-9a-f]{6,}$/, "") : "";
      // Rust symbols: drop the hash suffix and crate disambiguators.
      const name = (f.functionName || "(anonymous)").replace(/::h[0-9a-f]{16}$/, "").replace(/\[[0-9a-f]{16}\]/g, "");
      const key = `${name}\u0000${where}`;
      self.set(key, (self.get(key) ?? 0) + (dt[i + 1] ?? 0));
    }
    const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
    return {
      msPerCall,
      top: [...self]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([k, v]) => {
          const [name, where] = k.split("\u0000");
          return { name, where, percent: (100 * v) / total };
        }),
    };
  } finally {
    await session.post("Profiler.disable").catch(() => {});
    session.disconnect();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: opts, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      package: { type: "string" },
      runs: { type: "string", default: "20" },
      output: { type: "string", default: "float32" },
      top: { type: "string", default: "25" },
    },
  });
  if (positionals.length !== 1) {
    console.error("usage: node bench/js/profile-decode.mjs ANSWER.parquet|ANSWER.arrow [--package DIR] [--runs N] [--output int64|float32] [--top N]");
    process.exit(2);
  }
  const index = opts.package ? pathToFileURL(`${opts.package}/index.js`).href : "../../js/index.js";
  const { decodeArrow, decodeParquet, init } = await import(index);
  const bytes = new Uint8Array(readFileSync(positionals[0]));
  const decode = positionals[0].endsWith(".parquet") ? decodeParquet : decodeArrow;
  const want = opts.output === "int64" ? { positions: false } : { int64: false };
  await init();
  let count = 0;
  for (let i = 0; i < 3; i++) count = (await decode(bytes, want))[0].count; // warm-up
  const { msPerCall, top } = await profileCalls(() => decode(bytes, want), { runs: Number(opts.runs), top: Number(opts.top) });
  console.log(`${decode.name}(${JSON.stringify(want)}): ${count} points, ${msPerCall.toFixed(1)} ms per call (${(count / msPerCall / 1000).toFixed(1)} M points/s)`);
  console.log("self %   function");
  for (const t of top) console.log(`${t.percent.toFixed(1).padStart(6)}   ${t.name}  [${t.where}]`);
}
