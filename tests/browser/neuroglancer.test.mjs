// Neuroglancer itself, in Chromium: `neuroglancer.Viewer` (the package's own server and the
// web client it ships, tests/support/neuroglancer_viewer.py, from the test virtualenv) on a
// loopback port, with a state whose annotation layer is a dataset of `pocaduck-edge serve` as
// a precomputed annotation source, filtered by a linked segmentation layer with one selected
// segment (a label). The test waits until neuroglancer's request for that label's
// annotations has succeeded and the layer says it is ready, then keeps a screenshot; it
// fails on a page error or when no annotation request succeeded.
//
// Needs: the debug binary (`cargo build -p pocaduck-edge`), Chromium
// (`scripts/ensure-chromium.sh`) and the test virtualenv (`tests/python/setup_venv.sh`);
// `scripts/test-browser.sh` does all three and runs this file. Overrides: POCADUCK_EDGE_BIN,
// CHROMIUM_BIN. The screenshot goes to artifacts/neuroglancer.png.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { CHROMIUM, CHROMIUM_ARGS, launchChromium } from "../support/chromium.mjs";
import { binary, serve } from "../support/server.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = binary();
const PYTHON = join(ROOT, ".venv", "bin", "python");
const ARTIFACTS = join(ROOT, "artifacts");
const DATASET = "hemibrain-da1";
/** A label of the sample (a hemibrain body id). */
const LABEL = "722817260";
/** WebGL 2 on SwiftShader (software), which neuroglancer needs. */
const BROWSER_ARGS = [...CHROMIUM_ARGS, "--enable-unsafe-swiftshader"];

/** Starts neuroglancer's viewer with `state`; resolves to `{url, stop}` once it listens
 * (within 60 s). */
async function neuroglancerViewer(state) {
  const child = spawn(PYTHON, [join(ROOT, "tests", "support", "neuroglancer_viewer.py"), JSON.stringify(state)],
    { stdio: ["pipe", "pipe", "inherit"] });
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("neuroglancer's viewer did not listen within 60 s")), 60_000);
    child.once("exit", (code) => reject(new Error(`neuroglancer's viewer exited (${code})`)));
    createInterface({ input: child.stdout }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l);
    });
  });
  const m = /^listening on (http:\/\/127\.0\.0\.1:\d+\/\S+)$/.exec(line.trim());
  assert.ok(m, `unexpected first line ${JSON.stringify(line)}`);
  return {
    url: m[1],
    stop: async () => {
      process.removeListener("exit", kill);
      if (child.exitCode !== null) return;
      child.stdin.end();
      const timer = setTimeout(kill, 10_000);
      await new Promise((r) => child.once("exit", r));
      clearTimeout(timer);
    },
  };
}

let scratch, api, viewer, context;

before(async () => {
  for (const [what, path, fix] of [
    ["the pocaduck-edge binary", BIN, "cargo build -p pocaduck-edge"],
    ["the test virtualenv", PYTHON, "tests/python/setup_venv.sh"],
    ["Chromium", CHROMIUM, "bash scripts/ensure-chromium.sh"],
  ]) {
    assert.ok(existsSync(path), `${what} is missing at ${path}: run \`${fix}\` (scripts/test-browser.sh does)`);
  }
  scratch = mkdtempSync(join(tmpdir(), "pocaduck-edge-neuroglancer-"));
  const data = join(scratch, DATASET);
  const built = spawnSync(BIN, ["sample", data, "--voxel-nm", "256", "--coarse-points", "8192"],
    { stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 });
  assert.equal(built.status, 0, "pocaduck-edge sample failed");
  const started = await serve(["--data", data], { bin: BIN, env: { ...process.env, RUST_LOG: "warn" } });
  api = { base: started.url, stop: started.stop };
  context = await launchChromium(join(scratch, "profile"), { args: BROWSER_ARGS, viewport: { width: 800, height: 600 } });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  await viewer?.stop();
  await api?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test("neuroglancer shows a selected label's points from our annotation source", async () => {
  const source = `precomputed://${api.base}/v1/datasets/${DATASET}/neuroglancer`;
  const get = async (path) => (await fetch(api.base + path, { signal: AbortSignal.timeout(30_000) })).json();
  const info = await get(`/v1/datasets/${DATASET}/neuroglancer/info`);
  const label = await get(`/v1/datasets/${DATASET}/labels/${LABEL}`);
  const { min, max } = label.bbox;
  const state = {
    dimensions: info.dimensions,
    position: min.map((lo, i) => (lo + max[i]) / 2),
    projectionScale: Math.max(...max.map((hi, i) => hi - min[i])) * 1.2,
    layers: [
      { type: "segmentation", name: "neurons", source: [], segments: [LABEL] },
      {
        type: "annotation", name: "points", source,
        linkedSegmentationLayer: { segment: "neurons" }, filterBySegmentation: ["segment"],
        annotationColor: "#ffcc00",
      },
    ],
    layout: "3d",
  };
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  const annotationRequests = [];
  page.on("response", (r) => {
    if (r.url().includes("/neuroglancer/")) annotationRequests.push(r);
  });
  const segmentKey = `/neuroglancer/segment/${LABEL}`;
  const segmentResponse = page.waitForResponse((r) => r.url().endsWith(segmentKey) && r.status() === 200, { timeout: 60_000 });
  viewer = await neuroglancerViewer(state);
  await page.goto(viewer.url);
  const response = await segmentResponse.catch((e) => {
    const seen = annotationRequests.map((r) => `${r.status()} ${r.url()}`);
    throw new Error(`${e.message}; annotation requests: ${JSON.stringify(seen)}; ${problems.join("; ")}`);
  });
  const body = await response.body();
  // The label's points as neuroglancer received them: count, positions, ids.
  const count = Number(body.readBigUInt64LE(0));
  assert.equal(count, label.point_count);
  assert.equal(body.length, 8 + count * (12 + 8));
  // Neuroglancer's own state: the annotation layer has the label's chunk loaded.
  await page.waitForFunction(() => {
    const layer = window.viewer?.layerManager?.getLayerByName("points");
    return layer?.isReady?.() ?? false;
  }, null, { timeout: 60_000 });
  await page.waitForTimeout(2_000); // a few frames to draw the points
  const ok = annotationRequests.filter((r) => r.status() === 200).map((r) => new URL(r.url()).pathname);
  assert.ok(ok.some((p) => p.endsWith("/neuroglancer/info")), `no info request succeeded: ${ok}`);
  assert.ok(ok.some((p) => p.endsWith(segmentKey)), `no annotation request succeeded: ${ok}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, "neuroglancer.png") });
  assert.deepEqual(problems, []);
  await page.close();
});
