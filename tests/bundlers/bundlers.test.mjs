// The npm package as an application gets it: packed by `npm pack` (only what `files`
// publishes), unpacked into a scratch app's node_modules, bundled by Vite and by webpack,
// served by the real `pocaduck-edge serve --www` over the sample, and run in Debian's
// Chromium. The app loads a label through the server, from a VastDB table passed through
// (the second wasm module, loaded by a dynamic import), straight from the files, and in the
// package's Web Worker, and decodes a Parquet answer it fetched itself.
//
// Needs: the debug binary, the wasm package (`scripts/build-wasm.sh`), Vite and webpack (npm
// dev dependencies) and Chromium (`scripts/ensure-chromium.sh`); `scripts/test-browser.sh`
// runs it.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { CHROMIUM, launchChromium } from "../support/chromium.mjs";
import { binary, serve } from "../support/server.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = binary();
const DATASET = "hemibrain-da1";
const BUNDLERS = ["vite", "webpack"];

/** The app: every way of loading a label, its results as JSON in `document.body.dataset`. */
const MAIN_JS = `
import { connect, decodeParquet, openDataset } from "pocaduck-edge";
import { PointsWorker } from "pocaduck-edge/worker";

const sum = (a) => a.reduce((s, v) => s + v, 0n).toString();

async function main() {
  const { dataset, label } = Object.fromEntries(new URLSearchParams(location.search));
  const proxy = await connect(location.origin).dataset(dataset).getPoints(label);
  const table = connect(location.origin).dataset(dataset + "-vastdb", { vastdb: "pass-through" });
  const passThrough = await table.getPoints(label);
  const files = await openDataset(location.origin + "/v1/datasets/" + dataset + "/files/");
  const serverless = await files.getPoints(label);
  const worker = new PointsWorker();
  const inWorker = await worker.getPoints({ baseUrl: location.origin, dataset }, label);
  worker.terminate();
  const answer = await fetch("/v1/datasets/" + dataset + "/labels/" + label + "/points?format=parquet");
  const [decoded] = await decodeParquet(new Uint8Array(await answer.arrayBuffer()));
  const summary = (p) => ({ label: p.label, count: p.count, sum: sum(p.int64), positions: p.positions.length });
  return {
    proxy: summary(proxy),
    passThrough: summary(passThrough),
    serverless: summary(serverless),
    worker: summary(inWorker),
    decoded: summary(decoded),
  };
}

main().then(
  (result) => (document.body.dataset.result = JSON.stringify(result)),
  (e) => (document.body.dataset.error = String(e && e.stack || e)),
);
`;

let scratch;
let server;
let context;

before(async () => {
  for (const [what, path, fix] of [
    ["the pocaduck-edge binary", BIN, "cargo build -p pocaduck-edge"],
    ["the wasm package", join(ROOT, "js", "pkg", "pocaduck_edge_wasm_bg.wasm"), "bash scripts/build-wasm.sh"],
    ["Vite", join(ROOT, "node_modules", "vite", "bin", "vite.js"), "npm ci"],
    ["webpack", join(ROOT, "node_modules", "webpack-cli", "bin", "cli.js"), "npm ci"],
    ["Chromium", CHROMIUM, "bash scripts/ensure-chromium.sh"],
  ]) {
    assert.ok(existsSync(path), `${what} is missing at ${path}: run \`${fix}\` (scripts/test-browser.sh does)`);
  }
  scratch = mkdtempSync(join(tmpdir(), "pocaduck-edge-vite-"));
  const sh = (cmd, args, cwd) => {
    const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, `${cmd} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };

  // The package as published, installed where an app's bundler resolves it.
  const [{ filename }] = JSON.parse(sh("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", scratch], join(ROOT, "js")));
  const app = join(scratch, "app");
  const installed = join(app, "node_modules", "pocaduck-edge");
  mkdirSync(installed, { recursive: true });
  sh("tar", ["-xzf", join(scratch, filename), "-C", installed, "--strip-components=1"], scratch);
  writeFileSync(join(app, "index.html"), '<!doctype html><title>app</title><script type="module" src="./main.js"></script>\n');
  writeFileSync(join(app, "main.js"), MAIN_JS);
  // The site: one folder per bundler.
  const site = join(scratch, "site");
  mkdirSync(site);
  writeFileSync(join(site, "index.html"), '<!doctype html><title>bundlers</title><a href="vite/">vite</a> <a href="webpack/">webpack</a>\n');
  const bin = (pkg, path) => join(ROOT, "node_modules", pkg, ...path.split("/"));
  sh(process.execPath, [bin("vite", "bin/vite.js"), "build", "--logLevel", "warn", "--base", "./", "--outDir", join(site, "vite")], app);
  writeFileSync(
    join(app, "webpack.config.mjs"),
    `export default { mode: "production", entry: "./main.js", output: { path: ${JSON.stringify(join(site, "webpack"))}, filename: "main.js" }, performance: { hints: false } };\n`,
  );
  sh(process.execPath, [bin("webpack-cli", "bin/cli.js"), "--config", join(app, "webpack.config.mjs")], app);
  writeFileSync(join(site, "webpack", "index.html"), '<!doctype html><title>app</title><script src="./main.js"></script>\n');
  for (const bundler of BUNDLERS) {
    const files = readdirSync(join(site, bundler), { recursive: true });
    // The main module, and the pass-through module its dynamic import loads.
    const wasm = files.filter((f) => f.endsWith(".wasm"));
    assert.equal(wasm.length, 2, `${bundler}: both wasm modules are assets of the build: ${files}`);
  }

  const data = join(scratch, DATASET);
  sh(BIN, ["sample", data, "--voxel-nm", "512"], scratch);
  // The sample, and the same sample as a table of a local VastDB emulator (read passed through).
  const args = ["--data", data, "--www", site, "--vastdb-emulator"];
  const started = await serve(args, { bin: BIN, env: { ...process.env, RUST_LOG: "warn" } });
  server = { base: started.url, stop: started.stop };
  context = await launchChromium(join(scratch, "profile"));
});

after(async () => {
  if (context) await context.close().catch(() => {});
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** What every way of loading `label` must give: the API's npy answer, summed. */
async function expected(label) {
  const npy = new Uint8Array(await (await fetch(`${server.base}/v1/datasets/${DATASET}/labels/${label}/points?format=npy`)).arrayBuffer());
  const values = new BigInt64Array(npy.slice(10 + (npy[8] | (npy[9] << 8))).buffer);
  return { label, count: values.length / 3, sum: values.reduce((s, v) => s + v, 0n).toString(), positions: values.length };
}

for (const bundler of BUNDLERS) {
  test(`a ${bundler} app loads and decodes a label every way the package offers`, { timeout: 120_000 }, async () => {
    const { labels } = await (await fetch(`${server.base}/v1/datasets/${DATASET}/labels?limit=1000`)).json();
    // A label a JS number cannot hold, so an exact round trip means the ids stayed strings.
    const label = labels.find((l) => BigInt(l) > 2n ** 53n + 1n);
    assert.ok(label, `a label above 2^53 in ${labels}`);
    const want = await expected(label);
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    try {
      await page.goto(`${server.base}/${bundler}/?dataset=${DATASET}&label=${label}`);
      await page.waitForFunction(() => document.body.dataset.result || document.body.dataset.error);
      const { result, error } = await page.evaluate(() => ({ ...document.body.dataset }));
      assert.equal(error, undefined, `the app failed: ${error}\n${errors.join("\n")}`);
      const got = JSON.parse(result);
      for (const way of ["proxy", "passThrough", "serverless", "worker", "decoded"]) assert.deepEqual(got[way], want, way);
    } finally {
      await page.close();
    }
  });
}
