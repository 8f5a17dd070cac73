// The Worker (crates/worker, built by scripts/build-worker.sh) in the real Workers runtime,
// workerd through miniflare, on a loopback port: its R2 bucket seeded from dataset folders,
// its vars and secrets given as `wrangler.toml` and `.dev.vars` give them, its console kept.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import { Miniflare } from "miniflare";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Where scripts/build-worker.sh writes the Worker. */
export const BUILD = join(ROOT, "crates/worker/build");

/** wrangler.toml's compatibility date and R2 bucket, so the tests run what a deploy runs. */
export function wranglerToml() {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  const [, binding, bucket] = /^\[\[r2_buckets\]\]\s*\nbinding\s*=\s*"([^"]+)"\s*\nbucket_name\s*=\s*"([^"]+)"/m.exec(toml) ?? [];
  if (!date || !binding) throw new Error("wrangler.toml names no compatibility_date or R2 bucket");
  return { date, binding, bucket };
}

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/**
 * Starts the Worker with `vars` (its [vars] and secrets, as strings) and its R2 bucket
 * holding each folder of `seed` (`{prefix: dir}`) under its prefix, or, with `persistTo`,
 * the bucket `wrangler … --local --persist-to persistTo` wrote. Resolves to `{url, binding,
 * bucket, logs, restart, dispose}`: `bucket` is the R2 bucket, `logs` holds what the Worker
 * wrote to its console so far, `restart()` starts the Worker anew and resolves to its URL.
 */
export async function startWorker({ vars = {}, seed = {}, persistTo } = {}) {
  const { date, binding, bucket: bucketName } = wranglerToml();
  const r2 = persistTo ? { r2Buckets: { [binding]: bucketName }, r2Persist: join(persistTo, "v3/r2") } : { r2Buckets: [binding] };
  const logs = [];
  const keep = (stream) => stream.on("data", (chunk) => logs.push(...String(chunk).split("\n").filter(Boolean)));
  const options = {
    modules: true,
    modulesRoot: BUILD,
    scriptPath: join(BUILD, "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: date,
    ...r2,
    bindings: vars,
    host: "127.0.0.1",
    port: 0,
    handleRuntimeStdio(stdout, stderr) {
      keep(stdout);
      keep(stderr);
    },
  };
  const mf = new Miniflare(options);
  try {
    const url = await mf.ready;
    const bucket = await mf.getR2Bucket(binding);
    for (const [prefix, dir] of Object.entries(seed)) {
      // A fresh array: miniflare's proxy refuses a Node Buffer that is a view into a shared pool.
      for (const file of files(dir)) await bucket.put(`${prefix}/${relative(dir, file)}`, new Uint8Array(readFileSync(file)));
    }
    // A restart is a new isolate, with none of the last one's memory; the cache stays.
    const restart = async () => new URL(await mf.setOptions(options) ?? (await mf.ready)).origin;
    return { url: url.origin, binding, bucket, logs, restart, dispose: () => mf.dispose() };
  } catch (e) {
    // workerd must not outlive a Worker that failed to start.
    await mf.dispose().catch(() => {});
    throw new Error(`the Worker did not start: ${e.message}\n${logs.join("\n")}`);
  }
}
