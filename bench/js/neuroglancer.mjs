// Neuroglancer in Chromium (software WebGL, as the browser tests run it) over our annotation
// source, for the 1.3M-point label: neuron 722817260 of the sample at 64 nm. Neuroglancer's
// own viewer (tests/support/neuroglancer_viewer.py) opens a state whose annotation layer is
// filtered by that one segment; the browser's own timing of the annotation requests (from
// the page's time origin) gives when the label's key arrived, and the layer's state when its
// points are drawn. Beside them, bytes on the wire per point of
// the key and of the label's Parquet answer.
//
//   node bench/js/neuroglancer.mjs [--runs 3]
//
// Needs the debug server, Chromium and the test virtualenv (scripts/bench-neuroglancer.sh
// makes all three). Prints the table bench/README.md keeps.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { CHROMIUM_ARGS, launchChromium } from "../../tests/support/chromium.mjs";
import { binary, serve } from "../../tests/support/server.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const { values: args } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
const RUNS = Number(args.runs);
const BIN = binary();
const PYTHON = join(ROOT, ".venv", "bin", "python");
const BROWSER_ARGS = [...CHROMIUM_ARGS, "--enable-unsafe-swiftshader"];
const DATASET = "hemibrain-da1";
const LABEL = "722817260";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** neuroglancer's viewer with `state`: resolves to `{url, stop}`. */
async function neuroglancerViewer(state) {
  const child = spawn(PYTHON, [join(ROOT, "tests", "support", "neuroglancer_viewer.py"), JSON.stringify(state)],
    { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("neuroglancer's viewer did not listen within 60 s")), 60_000);
    createInterface({ input: child.stdout }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l);
    });
  });
  return { url: line.trim().replace(/^listening on /, ""), stop: () => { child.stdin.end(); child.kill(); } };
}

const scratch = mkdtempSync(join(tmpdir(), "pocaduck-edge-bench-neuroglancer-"));
let server;
try {
  const data = join(scratch, DATASET);
  const built = spawnSync(BIN, ["sample", data, "--voxel-nm", "64"], { stdio: ["ignore", "ignore", "inherit"] });
  if (built.status !== 0) throw new Error("pocaduck-edge sample failed");
  server = await serve(["--data", data], { bin: BIN, env: { ...process.env, RUST_LOG: "warn" } });
  const base = `${server.url}/v1/datasets/${DATASET}`;
  const label = await (await fetch(`${base}/labels/${LABEL}`)).json();
  const count = label.point_count;
  const parquet = (await (await fetch(`${base}/labels/${LABEL}/points?format=parquet`)).arrayBuffer()).byteLength;
  const { min, max } = label.bbox;
  const state = {
    position: min.map((lo, i) => (lo + max[i]) / 2),
    projectionScale: Math.max(...max.map((hi, i) => hi - min[i])) * 1.2,
    layers: [
      { type: "segmentation", name: "labels", source: [], segments: [LABEL] },
      {
        type: "annotation", name: "points", source: `precomputed://${base}/neuroglancer`,
        linkedSegmentationLayer: { segment: "labels" }, filterBySegmentation: ["segment"],
      },
    ],
    layout: "3d",
  };
  console.log(`label ${LABEL}: ${count.toLocaleString("en-US")} points; ${RUNS} fresh browsers, medians`);

  const rows = { info: [], keyStart: [], keyFirstByte: [], keyEnd: [], drawn: [], keyBytes: [] };
  for (let run = 0; run < RUNS; run++) {
    const viewer = await neuroglancerViewer(state);
    const context = await launchChromium(mkdtempSync(join(scratch, "profile-")), { args: BROWSER_ARGS, viewport: { width: 1200, height: 800 } });
    try {
      const page = await context.newPage();
      const problems = [];
      page.on("pageerror", (e) => problems.push(e.message));
      const info = page.waitForResponse((r) => r.url().endsWith("/neuroglancer/info"), { timeout: 300_000 });
      const key = page.waitForResponse((r) => r.url().endsWith(`/neuroglancer/segment/${LABEL}`), { timeout: 300_000 });
      await page.goto(viewer.url);
      // Chunks are fetched by neuroglancer's Web Worker, whose requests the page's timeline
      // lacks: the browser's timing of each request, from the page's time origin.
      const origin = await page.evaluate(() => performance.timeOrigin);
      const timed = async (response) => {
        await response.finished();
        const t = response.request().timing();
        const start = t.startTime - origin;
        return { start, firstByte: start + t.responseStart, end: start + t.responseEnd };
      };
      const infoTiming = await timed(await info);
      const response = await key;
      const keyTiming = await timed(response);
      const sizes = await response.request().sizes();
      // The first frame after which the layer has the label's points drawn.
      const drawn = await page.evaluate(() => new Promise((resolve) => {
        const check = () => {
          const layer = window.viewer?.layerManager?.getLayerByName("points");
          if (layer?.isReady?.()) resolve(performance.now());
          else requestAnimationFrame(check);
        };
        check();
      }));
      if (problems.length) throw new Error(problems.join("; "));
      rows.info.push(infoTiming.end);
      rows.keyStart.push(keyTiming.start);
      rows.keyFirstByte.push(keyTiming.firstByte);
      rows.keyEnd.push(keyTiming.end);
      rows.drawn.push(drawn);
      rows.keyBytes.push(sizes.responseBodySize + sizes.responseHeadersSize);
    } finally {
      await context.close();
      viewer.stop();
    }
  }
  const ms = (xs) => `${median(xs).toFixed(0)} ms`;
  console.log("\n| from navigation start | median |\n|---|---:|");
  console.log(`| \`info\` received | ${ms(rows.info)} |`);
  console.log(`| the label's key asked | ${ms(rows.keyStart)} |`);
  console.log(`| the label's key: first byte | ${ms(rows.keyFirstByte)} |`);
  console.log(`| the label's key received (its first and all points: neuroglancer draws a key whole) | ${ms(rows.keyEnd)} |`);
  console.log(`| the points drawn (the layer ready) | ${ms(rows.drawn)} |`);
  const perPoint = (bytes) => (bytes / count).toFixed(2);
  console.log("\n| answer | bytes on the wire | bytes per point |\n|---|---:|---:|");
  console.log(`| \`neuroglancer/segment/${LABEL}\` | ${median(rows.keyBytes).toLocaleString("en-US")} | ${perPoint(median(rows.keyBytes))} |`);
  console.log(`| \`labels/${LABEL}/points?format=parquet\` (body) | ${parquet.toLocaleString("en-US")} | ${perPoint(parquet)} |`);
} finally {
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
}
