// The viewer in Chromium (software WebGL, as the browser tests run it), for the sample's
// largest label: time to first points and to all points through the server and straight from
// the files, and the frame rate while the view turns, per shading, beside an empty scene.
// Two datasets: the bundled sample as `npm start` serves it (96 nm, `--coarse-points 65536`:
// its five neurons get a stored coarse level) and the same sample without coarse levels.
//
//   node bench/js/viewer.mjs [--runs 3] [--seconds 4]
//
// Needs the debug server and the site (scripts/bench-viewer.sh builds both). Prints the
// tables bench/README.md keeps.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { CHROMIUM_ARGS, launchChromium } from "../../tests/support/chromium.mjs";
import { binary, serve } from "../../tests/support/server.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const { values: args } = parseArgs({ options: { runs: { type: "string", default: "3" }, seconds: { type: "string", default: "4" } } });
const RUNS = Number(args.runs);
const SECONDS = Number(args.seconds);
const BIN = binary();
const WWW = process.env.POCADUCK_EDGE_WWW || join(ROOT, "dist", "www");
const BROWSER_ARGS = [...CHROMIUM_ARGS, "--enable-unsafe-swiftshader"];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const scratch = mkdtempSync(join(tmpdir(), "pocaduck-edge-bench-viewer-"));
let server;
try {
  const datasets = { "hemibrain-da1": ["--coarse-points", "65536"], "hemibrain-da1-no-coarse": ["--coarse-points", "0"] };
  for (const [name, extra] of Object.entries(datasets)) {
    const built = spawnSync(BIN, ["sample", join(scratch, name), "--voxel-nm", "96", ...extra], { stdio: ["ignore", "ignore", "inherit"] });
    if (built.status !== 0) throw new Error(`pocaduck-edge sample ${name} failed`);
  }
  server = await serve([...Object.keys(datasets).flatMap((name) => ["--data", join(scratch, name)]), "--www", WWW], {
    bin: BIN,
    env: { ...process.env, RUST_LOG: "warn" },
  });
  const base = server.url;
  const api = async (path) => (await fetch(base + path)).json();
  const { labels } = await api("/v1/datasets/hemibrain-da1/labels");
  const counts = await Promise.all(labels.map(async (l) => (await api(`/v1/datasets/hemibrain-da1/labels/${l}`)).point_count));
  const largest = labels[counts.indexOf(Math.max(...counts))];
  const count = Math.max(...counts);
  console.log(`largest label ${largest}: ${count.toLocaleString("en-US")} points; ${RUNS} fresh browsers per row, medians`);

  /** Opens `query` in a fresh browser (no HTTP cache), waits for ready, runs `then(page)`. */
  async function visit(query, then) {
    const profile = mkdtempSync(join(scratch, "profile-"));
    const context = await launchChromium(profile, { args: BROWSER_ARGS, viewport: { width: 1200, height: 800 } });
    try {
      const page = await context.newPage();
      const problems = [];
      page.on("pageerror", (e) => problems.push(e.message));
      await page.goto(`${base}/?${query}`);
      await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 120_000 });
      const state = await page.evaluate(() => document.body.dataset.state);
      if (state !== "ready" || problems.length) throw new Error(`${query}: ${state} ${problems.join("; ")}`);
      return await then(page);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  }
  const hud = (page, id) => page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`).dataset.value, id);

  console.log("\n| dataset | mode | \`first\` | points drawn first | time to first points / all points | bytes fetched |");
  console.log("|---|---|---:|---:|---:|---:|");
  for (const dataset of Object.keys(datasets)) {
    for (const mode of ["proxy", "serverless"]) {
      for (const first of [65536, 0]) {
        const runs = [];
        for (let i = 0; i < RUNS; i++) {
          runs.push(
            await visit(`dataset=${dataset}&mode=${mode}&labels=${largest}&first=${first}`, async (page) => ({
              first: Number(await hud(page, "hud-first-ms")),
              all: Number(await hud(page, "hud-all-ms")),
              bytes: Number(await hud(page, "hud-bytes")),
              points: Number(await hud(page, "hud-points")),
            })),
          );
        }
        if (runs.some((r) => r.points !== count)) throw new Error(`${dataset} ${mode}: drew ${runs.map((r) => r.points)} of ${count}`);
        const firstCount = first === 0 ? count : first;
        console.log(
          `| ${dataset} | ${mode} | \`first=${first}\` | ${firstCount.toLocaleString("en-US")} | ${median(runs.map((r) => r.first)).toFixed(0)} ms / ${median(runs.map((r) => r.all)).toFixed(0)} ms | ${(median(runs.map((r) => r.bytes)) / 1024).toFixed(0)} KiB |`,
        );
      }
    }
  }

  console.log(`\n| scene | shading | frame rate while turning (\`r\`, ${SECONDS} s) | points drawn while turning |`);
  console.log("|---|---|---:|---:|");
  for (const [scene, labelsParam] of [["empty", ""], [`label ${largest}`, largest]]) {
    for (const shading of ["edl", "depth", "flat"]) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) {
        runs.push(
          await visit(`dataset=hemibrain-da1&mode=proxy&labels=${labelsParam}&shading=${shading}`, async (page) => {
            await page.keyboard.press("r");
            await page.waitForTimeout(SECONDS * 1000);
            return { fps: Number(await hud(page, "hud-fps")), drawn: Number(await hud(page, "hud-points")) };
          }),
        );
      }
      console.log(`| ${scene} | ${shading} | ${median(runs.map((r) => r.fps))} fps | ${median(runs.map((r) => r.drawn)).toLocaleString("en-US")} |`);
    }
  }
} finally {
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
}
