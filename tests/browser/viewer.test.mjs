// The viewer in a real browser: Debian's Chromium (software WebGL) driven by playwright-core,
// against the real `pocaduck-edge serve --www dist/www` over a freshly built sample, served
// both as an edge-layout dataset and as a table on a loopback vastdb-emulator.
//
// Needs: the debug binaries (`cargo build -p pocaduck-edge -p vastdb-emulator`), the site
// (`scripts/build-www.sh`) and Chromium (`scripts/ensure-chromium.sh`);
// `scripts/test-browser.sh` does all three and runs this file. Overrides: POCADUCK_EDGE_BIN,
// VASTDB_EMULATOR_BIN, POCADUCK_EDGE_WWW, CHROMIUM_BIN.
// Screenshots go to artifacts/viewer-<mode>.png and artifacts/viewer-<mode>-<shading>.png.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { PNG } from "pngjs";

import { CHROMIUM, CHROMIUM_ARGS, launchChromium } from "../support/chromium.mjs";
import { binary, serve } from "../support/server.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = binary();
const WWW = process.env.POCADUCK_EDGE_WWW || join(ROOT, "dist", "www");
const ARTIFACTS = join(ROOT, "artifacts");
const DATASET = "hemibrain-da1";
/** The same sample as a VastDB table (`serve --vastdb-emulator`). */
const VAST_DATASET = `${DATASET}-vastdb`;
/** The viewer's clear colour (viewer.js BACKGROUND). */
const BACKGROUND = [0x10, 0x13, 0x17];
const TWO_53 = 2n ** 53n;
/** The sample's `--coarse-points`: labels above 4 × this many points get a stored coarse
 * level (of more than this many points), which a `first` of at most this many reads. */
const COARSE_POINTS = 8192;

/** Chromium as the suite launches it, with WebGL on SwiftShader (software): Chromium asks for
 * this flag since it stopped falling back to it silently. */
const BROWSER_ARGS = [...CHROMIUM_ARGS, "--enable-unsafe-swiftshader"];

let scratch; // temp dir: the sample and the browser profile
let server; // { base, stop }
let context; // the browser (a persistent context over a fresh profile)
/** API facts: { label: point_count } and the labels chosen for the tests. */
const facts = { counts: new Map(), small: null, second: null, huge: null, justAbove53: null, largest: null, manifest: null };

// ---------------------------------------------------------------------------------------
// Server and browser

/** GET `path` of the server's API as JSON (bounded wait). */
async function api(path) {
  const r = await fetch(server.base + path, { signal: AbortSignal.timeout(30_000) });
  assert.equal(r.status, 200, `GET ${path}`);
  return r.json();
}

before(async () => {
  for (const [what, path, fix] of [
    ["the pocaduck-edge binary", BIN, "cargo build -p pocaduck-edge"],
    ["the VastDB emulator", process.env.VASTDB_EMULATOR_BIN || join(dirname(BIN), "vastdb-emulator"), "cargo build -p vastdb-emulator"],
    ["the viewer site", join(WWW, "index.html"), "bash scripts/build-www.sh"],
    ["the wasm package", join(WWW, "pocaduck-edge", "pkg", "pocaduck_edge_wasm_bg.wasm"), "bash scripts/build-www.sh"],
    ["Chromium", CHROMIUM, "bash scripts/ensure-chromium.sh"],
  ]) {
    assert.ok(existsSync(path), `${what} is missing at ${path}: run \`${fix}\` (scripts/test-browser.sh does)`);
  }
  scratch = mkdtempSync(join(tmpdir(), "pocaduck-edge-browser-"));
  const data = join(scratch, DATASET);
  const built = spawnSync(BIN, ["sample", data, "--voxel-nm", "256", "--coarse-points", String(COARSE_POINTS)], { stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 });
  assert.equal(built.status, 0, "pocaduck-edge sample failed");

  // With the VastDB demo beside it: the sample also as a table on a loopback vastdb-emulator.
  const started = await serve(["--data", data, "--vastdb-emulator", "--www", WWW], {
    bin: BIN,
    env: { ...process.env, RUST_LOG: "warn" },
  });
  server = { base: started.url, stop: started.stop };

  // The labels to look at, from the API: two small ones ≤ 2^53, and ids above 2^53.
  const labels = [];
  let after = "";
  for (;;) {
    const page = await api(`/v1/datasets/${DATASET}/labels?limit=1000${after ? `&after=${after}` : ""}`);
    labels.push(...page.labels);
    if (page.next_after === null) break;
    after = page.next_after;
  }
  for (const label of labels) {
    const info = await api(`/v1/datasets/${DATASET}/labels/${label}`);
    assert.equal(info.label, label);
    facts.counts.set(label, info.point_count);
  }
  const bySize = [...labels].sort((a, b) => facts.counts.get(a) - facts.counts.get(b));
  const low = bySize.filter((l) => BigInt(l) <= TWO_53);
  [facts.small, facts.second] = low;
  facts.largest = bySize[bySize.length - 1];
  // Labels a JS number cannot hold: 2^53 + 1 itself, and the smallest label above it.
  facts.huge = bySize.find((l) => BigInt(l) > TWO_53 + 1n);
  facts.justAbove53 = labels.find((l) => BigInt(l) === TWO_53 + 1n) ?? labels.find((l) => BigInt(l) > TWO_53);
  assert.ok(facts.small && facts.second && facts.huge && facts.justAbove53, `labels ${labels}`);
  assert.notEqual(String(Number(facts.huge)), facts.huge, "the big label must not survive a JS number");

  facts.manifest = await api(`/v1/datasets/${DATASET}/files/manifest.json`);

  mkdirSync(ARTIFACTS, { recursive: true });
  context = await launchChromium(join(scratch, "profile"), { args: BROWSER_ARGS, viewport: { width: 1200, height: 800 } });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// Page helpers

/** A new page whose console errors and page errors are kept for failure messages. */
async function newPage() {
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(`console: ${m.text()}`);
  });
  return page;
}

function viewerUrl(params) {
  return `${server.base}/?${params}`;
}

/** Waits until the viewer settles (ready or error) and returns the state. */
async function settled(page, timeout = 120_000) {
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

/** Waits for `ready`; fails with the page's error box and console on anything else. */
async function ready(page) {
  const state = await settled(page);
  if (state !== "ready") {
    const shown = await page.locator("#error").textContent();
    assert.fail(`viewer state ${state}: ${shown}\n${page.problems.join("\n")}`);
  }
}

/** The HUD's exact values. */
async function hud(page) {
  return page.evaluate(() => {
    const value = (id) => document.querySelector(`[data-testid="${id}"]`).dataset.value;
    return {
      labels: Number(value("hud-labels")),
      points: Number(value("hud-points")),
      bytes: Number(value("hud-bytes")),
      roundTrips: Number(value("hud-round-trips")),
      fetchMs: Number(value("hud-fetch-ms")),
      decodeMs: Number(value("hud-decode-ms")),
    };
  });
}

/** The WebGL canvas as decoded PNG (HUD and overlays hidden). */
async function canvasPng(page) {
  return PNG.sync.read(
    await page.locator("#view").screenshot({
      style: "#hud, #error, #progress-box { visibility: hidden !important; }",
      animations: "disabled",
    }),
  );
}

/** Pixels of the WebGL canvas that differ from the background, and their luminances (0–255). */
async function litPixels(page) {
  const png = await canvasPng(page);
  let lit = 0;
  const luminance = [];
  for (let i = 0; i < png.data.length; i += 4) {
    const d = Math.max(
      Math.abs(png.data[i] - BACKGROUND[0]),
      Math.abs(png.data[i + 1] - BACKGROUND[1]),
      Math.abs(png.data[i + 2] - BACKGROUND[2]),
    );
    if (d > 40) {
      lit++;
      luminance.push(0.2126 * png.data[i] + 0.7152 * png.data[i + 1] + 0.0722 * png.data[i + 2]);
    }
  }
  return { lit, total: png.width * png.height, luminance };
}

/** The spread of luminance among lit pixels: the 95th percentile minus the 5th. */
function luminanceSpread(luminance) {
  const sorted = Float64Array.from(luminance).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return at(0.95) - at(0.05);
}

/** Canvas pixels within 3 of the colour `hex` ("#rrggbb") on every channel. */
async function pixelsOf(page, hex) {
  const want = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  const png = await canvasPng(page);
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (want.every((v, c) => Math.abs(png.data[i + c] - v) <= 3)) n++;
  }
  return n;
}

/** The swatch colour of each shown label: { label: "#rrggbb" }. */
function colours(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#selected li")].map((li) => [li.dataset.label, li.dataset.colour])));
}

/** The HUD value `id` as text ("" when unset). */
function hudValue(page, id) {
  return page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`).dataset.value, id);
}

function selectedLabels(page) {
  return page.evaluate(() => [...document.querySelectorAll("#selected li")].map((li) => li.querySelector(".id").textContent));
}

function urlLabels(page) {
  return new URL(page.url()).searchParams.get("labels").split(",").filter(Boolean);
}

function filesUrl() {
  return `${server.base}/v1/datasets/${DATASET}/files/`;
}

function describeRequest(r) {
  return `${r.method()} ${r.url()} ${r.headers().range ?? ""}`;
}

/**
 * What a serverless request reads, from the manifest: "manifest", "footer" (a file's footer
 * range exactly), "index" (an index page's range exactly) or "data" (a bounded range of a
 * points file before its footer). Anything else fails the test.
 */
function classify(r) {
  assert.equal(r.method(), "GET", describeRequest(r));
  const path = r.url().slice(filesUrl().length);
  if (path === "manifest.json") return "manifest";
  const m = /^bytes=(\d+)-(\d+)$/.exec(r.headers().range ?? "");
  assert.ok(m, `a bounded range: ${describeRequest(r)}`);
  const [from, to] = [Number(m[1]), Number(m[2])];
  const index = facts.manifest.label_index;
  if (path === index.file.path) {
    assert.ok(index.pages.some((p) => p.range.offset === from && p.range.offset + p.range.length - 1 === to), describeRequest(r));
    return "index";
  }
  const file = [...facts.manifest.files, ...(facts.manifest.coarse ?? [])].find((f) => f.path === path);
  assert.ok(file, `a file of the manifest: ${describeRequest(r)}`);
  if (from === file.footer.offset && to === file.footer.offset + file.footer.length - 1) return "footer";
  assert.ok(from <= to && to < file.footer.offset, `row groups before the footer: ${describeRequest(r)}`);
  return "data";
}

/** Adds a label through the text box, as a person would. */
async function addLabel(page, label) {
  await page.locator('[data-testid="label-input"]').fill(label);
  await page.locator('[data-testid="label-add"]').click();
}

// ---------------------------------------------------------------------------------------
// Tests

for (const mode of ["proxy", "serverless"]) {
  describe(`${mode} mode`, () => {
    test("renders a label, with the API's point count in the HUD", { timeout: 180_000 }, async () => {
      const page = await newPage();
      try {
        await page.goto(viewerUrl(`dataset=${DATASET}&mode=${mode}&labels=${facts.small}`));
        await ready(page);
        const h = await hud(page);
        assert.equal(h.labels, 1);
        assert.equal(h.points, facts.counts.get(facts.small));
        assert.ok(h.bytes > 0 && h.roundTrips >= 1, JSON.stringify(h));
        assert.equal(await page.locator("#hud-mode").textContent(), mode === "proxy" ? "proxy (server)" : "serverless (files)");
        assert.deepEqual(await selectedLabels(page), [facts.small]);
        assert.equal(await page.locator("#progress-box").isHidden(), true, "no progress bar once loaded");
        const { lit, total } = await litPixels(page);
        assert.ok(lit > 200, `only ${lit} lit pixels of ${total}`);
        assert.ok(lit < total * 0.8, `${lit} of ${total} pixels lit: not framed`);
        await page.screenshot({ path: join(ARTIFACTS, `viewer-${mode}.png`) });
      } finally {
        await page.close();
      }
    });

    test("round trips per label; the URL keeps the labels and a reload restores them", { timeout: 180_000 }, async () => {
      const page = await newPage();
      try {
        const requests = [];
        page.on("request", (r) => requests.push(r));
        // One load per label (`first=0`): coarse to fine has a test of its own.
        await page.goto(viewerUrl(`dataset=${DATASET}&mode=${mode}&first=0&labels=${facts.small}`));
        await ready(page);
        const first = await hud(page);
        const api = requests.filter((r) => new URL(r.url()).pathname.startsWith("/v1/"));
        const apiMade = api.map(describeRequest).join("\n");
        if (mode === "serverless") {
          // Straight from the files: the manifest once, then the label costs its index page
          // and one coalesced range of row groups, with beside it the footer of that file
          // (read once); no other file's footer.
          const files = api.filter((r) => r.url().startsWith(filesUrl()));
          assert.deepEqual(api.filter((r) => !files.includes(r)).map((r) => new URL(r.url()).pathname), ["/v1/datasets"], apiMade);
          assert.deepEqual(files.map(classify).sort(), ["data", "footer", "index", "manifest"], apiMade);
          const [data, footer] = ["data", "footer"].map((k) => files.find((r) => classify(r) === k).url());
          assert.equal(data, footer, `the footer is the data's file's: ${apiMade}`);
          // The label list read the index page first: the load's data and footer come together.
          assert.equal(first.roundTrips, 1, apiMade);
        } else {
          // Through the server: one round trip for the label's points.
          assert.equal(api.filter((r) => /\/labels\/\d+\/points/.test(r.url())).length, 1, apiMade);
        }

        // A second label in the same page: only its own data (the index page is cached).
        requests.length = 0;
        await addLabel(page, facts.second);
        await ready(page);
        const both = await hud(page);
        assert.equal(both.labels, 2);
        assert.equal(both.points, facts.counts.get(facts.small) + facts.counts.get(facts.second));
        assert.deepEqual(urlLabels(page), [facts.small, facts.second]);
        const made = requests.map(describeRequest).join("\n");
        assert.equal(requests.length, 1, made);
        if (mode === "serverless") {
          assert.equal(classify(requests[0]), "data", made);
        } else {
          assert.ok(requests[0].url().startsWith(`${server.base}/v1/datasets/${DATASET}/labels/${facts.second}/points`), made);
        }
        assert.equal(both.roundTrips - first.roundTrips, requests.length, "the HUD counts the round trips made");

        await page.reload();
        await ready(page);
        assert.deepEqual(await selectedLabels(page), [facts.small, facts.second]);
        assert.equal((await hud(page)).points, both.points);
        assert.equal(new URL(page.url()).searchParams.get("mode"), mode);
      } finally {
        await page.close();
      }
    });

    test("labels above 2^53 keep their exact ids", { timeout: 180_000 }, async () => {
      const page = await newPage();
      try {
        await page.goto(viewerUrl(`dataset=${DATASET}&mode=${mode}&labels=`));
        await ready(page);
        assert.equal((await hud(page)).points, 0);
        assert.equal((await litPixels(page)).lit, 0, "nothing drawn for no labels");
        // Typed into the text box; 2^53 + 1 would silently become 2^53 as a JS number.
        for (const label of [facts.huge, facts.justAbove53]) {
          await addLabel(page, label);
          await ready(page);
        }
        assert.deepEqual(urlLabels(page), [facts.huge, facts.justAbove53]);
        assert.deepEqual(await selectedLabels(page), [facts.huge, facts.justAbove53]);
        assert.equal(await page.evaluate(() => document.body.dataset.labels), `${facts.huge},${facts.justAbove53}`);
        const h = await hud(page);
        assert.equal(h.points, facts.counts.get(facts.huge) + facts.counts.get(facts.justAbove53));
        assert.ok((await litPixels(page)).lit > 0);
      } finally {
        await page.close();
      }
    });

    test("coarse to fine: the stored level is drawn first, then every point", { timeout: 180_000 }, async () => {
      const label = facts.largest;
      const count = facts.counts.get(label);
      assert.ok(count > 4 * COARSE_POINTS, `${label} has ${count} points: no coarse level`);
      const page = await newPage();
      try {
        // The load of every point waits until the test has seen the first points drawn.
        let release;
        const released = new Promise((resolve) => (release = resolve));
        const held = [];
        const full = (url) =>
          mode === "proxy"
            ? url.pathname.endsWith(`/labels/${label}/points`) && !url.searchParams.has("limit")
            : url.pathname.includes(`/datasets/${DATASET}/files/points/`);
        await page.route(full, async (route) => {
          held.push(route.request().url());
          await released;
          await route.continue();
        });
        const coarseRequests = [];
        page.on("request", (r) => {
          if (r.url().includes("/files/coarse/") || /[?&]limit=/.test(r.url())) coarseRequests.push(r.url());
        });
        await page.goto(viewerUrl(`dataset=${DATASET}&mode=${mode}&labels=${label}&first=${COARSE_POINTS}`));
        await page.waitForFunction(
          (n) => document.querySelector('[data-testid="hud-points"]').dataset.value === String(n),
          COARSE_POINTS,
          { timeout: 120_000 },
        );
        assert.equal(await page.evaluate(() => document.body.dataset.state), "loading");
        assert.ok(Number(await hudValue(page, "hud-first-ms")) > 0, "the time to first points shows");
        assert.equal(await hudValue(page, "hud-all-ms"), "", "no time to all points yet");
        assert.ok((await litPixels(page)).lit > 100, "the first points are on the canvas");
        assert.match(await page.locator(`#selected li[data-label="${label}"] .count`).textContent(), /^8,192…$/);
        assert.ok(coarseRequests.length > 0, "the first points came from a limit (proxy) or the coarse file (serverless)");
        if (mode === "serverless") {
          assert.ok(coarseRequests.every((u) => u.includes("/files/coarse/")), coarseRequests.join("\n"));
        }
        assert.ok(held.length > 0, "the load of every point started");

        release();
        await ready(page);
        const h = await hud(page);
        assert.equal(h.points, count);
        assert.equal(h.labels, 1);
        const [first, all] = [Number(await hudValue(page, "hud-first-ms")), Number(await hudValue(page, "hud-all-ms"))];
        assert.ok(first > 0 && all > first, `first ${first} ms, all ${all} ms`);
        assert.match(await page.locator(`#selected li[data-label="${label}"] .count`).textContent(), /^[\d,]+$/);
        assert.deepEqual(page.problems, []);
      } finally {
        await page.close();
      }
    });

    test("depth shows: eye-dome lighting and depth shading vary a label's luminance, flat does not", { timeout: 180_000 }, async () => {
      const page = await newPage();
      try {
        const spreads = {};
        for (const shading of ["flat", "edl", "depth"]) {
          await page.goto(viewerUrl(`dataset=${DATASET}&mode=${mode}&labels=${facts.largest}&shading=${shading}`));
          await ready(page);
          assert.equal(await page.locator('[data-testid="shading"]').inputValue(), shading);
          const { lit, luminance } = await litPixels(page);
          assert.ok(lit > 200, `${shading}: only ${lit} lit pixels`);
          spreads[shading] = luminanceSpread(luminance);
          await page.locator("#stage").screenshot({ path: join(ARTIFACTS, `viewer-${mode}-${shading}.png`) });
        }
        assert.ok(spreads.flat < 5, `flat: one colour, luminance spread ${spreads.flat}`);
        assert.ok(spreads.edl > 30, `eye-dome lighting: luminance spread ${spreads.edl}`);
        assert.ok(spreads.depth > 30, `depth: luminance spread ${spreads.depth}`);
        // The key steps through the shadings, and the URL follows.
        await page.keyboard.press("e");
        assert.equal(new URL(page.url()).searchParams.get("shading"), "flat");
        await page.keyboard.press("e");
        assert.equal(new URL(page.url()).searchParams.get("shading"), null, "eye-dome lighting is the default");
        assert.deepEqual(page.problems, []);
      } finally {
        await page.close();
      }
    });
  });
}

test("labels keep their colours and the camera across reloads and shared URLs", { timeout: 180_000 }, async () => {
  const [a, b] = [facts.small, facts.huge];
  const page = await newPage();
  try {
    await page.goto(viewerUrl(`dataset=${DATASET}&mode=proxy&labels=${a},${b}&shading=flat`));
    await ready(page);
    const first = await colours(page);
    assert.match(first[a], /^#[0-9a-f]{6}$/);
    assert.match(first[b], /^#[0-9a-f]{6}$/);
    assert.notEqual(first[a], first[b]);
    // Drawn in those colours (flat shading draws a label's colour exactly).
    for (const label of [a, b]) assert.ok((await pixelsOf(page, first[label])) > 20, `no pixel of ${label}'s ${first[label]}`);

    // The camera moves with the mouse and goes in the URL.
    const framed = new URL(page.url()).searchParams.get("cam");
    assert.ok(framed, page.url());
    const box = await page.locator("#view").boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 150, box.y + box.height / 2 + 40, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction((cam) => new URL(location.href).searchParams.get("cam") !== cam, framed);
    const moved = new URL(page.url()).searchParams.get("cam");

    // Reloaded: the same colours and camera.
    await page.reload();
    await ready(page);
    assert.deepEqual(await colours(page), first);
    assert.equal(new URL(page.url()).searchParams.get("cam"), moved);

    // Shared, in the other order and the other mode: each label keeps its colour.
    const shared = new URL(page.url());
    shared.searchParams.set("labels", `${b},${a}`);
    shared.searchParams.set("mode", "serverless");
    const other = await newPage();
    try {
      await other.goto(shared.toString());
      await ready(other);
      assert.deepEqual(await colours(other), first);
      assert.equal(new URL(other.url()).searchParams.get("cam"), moved);
      // `f` frames the labels again.
      await other.keyboard.press("f");
      await other.waitForFunction((cam) => new URL(location.href).searchParams.get("cam") !== cam, moved);
      assert.deepEqual(other.problems, []);
    } finally {
      await other.close();
    }
    assert.deepEqual(page.problems, []);
  } finally {
    await page.close();
  }
});

test("a VastDB table is read through the server, never serverless", { timeout: 120_000 }, async () => {
  const listed = (await api("/v1/datasets")).datasets.find((d) => d.name === VAST_DATASET);
  assert.equal(listed?.backend, "vastdb");
  const info = await api(`/v1/datasets/${VAST_DATASET}/labels/${facts.huge}`);
  assert.equal(info.point_count, facts.counts.get(facts.huge));
  const page = await newPage();
  try {
    const requests = [];
    page.on("request", (r) => requests.push(r));
    // A shared link asking for serverless reads of a table: the viewer reads it through the server.
    await page.goto(viewerUrl(`dataset=${VAST_DATASET}&mode=serverless&labels=${facts.huge}`));
    await ready(page);
    assert.equal(new URL(page.url()).searchParams.get("mode"), "proxy");
    assert.equal(await page.locator("#mode-serverless").isDisabled(), true);
    assert.equal(await page.locator("#mode-proxy").isChecked(), true);
    assert.equal((await hud(page)).points, info.point_count);
    assert.deepEqual(await selectedLabels(page), [facts.huge]);
    assert.ok((await litPixels(page)).lit > 0);
    assert.ok(!requests.some((r) => r.url().includes("/files/")), requests.map(describeRequest).join("\n"));

    // Back to the edge dataset: serverless is offered again.
    await page.locator('[data-testid="dataset"]').selectOption(DATASET);
    await ready(page);
    assert.equal(await page.locator("#mode-serverless").isDisabled(), false);
    assert.equal(new URL(page.url()).searchParams.get("dataset"), DATASET);
  } finally {
    await page.close();
  }
});

test("\"open in neuroglancer\" names the shown labels and the dataset's annotation source", { timeout: 120_000 }, async () => {
  const page = await newPage();
  try {
    await page.goto(viewerUrl(`dataset=${DATASET}&labels=${facts.small},${facts.largest}`));
    await ready(page);
    const href = await page.locator('[data-testid="neuroglancer"]').getAttribute("href");
    const url = new URL(href);
    assert.equal(url.origin, "https://neuroglancer-demo.appspot.com");
    assert.ok(url.hash.startsWith("#!"));
    const state = JSON.parse(decodeURIComponent(url.hash.slice(2)));
    const [segmentation, annotations] = state.layers;
    assert.deepEqual(segmentation.segments, [facts.small, facts.largest]);
    const source = `${server.base}/v1/datasets/${DATASET}/neuroglancer`;
    assert.equal(annotations.source, `precomputed://${source}`);
    assert.deepEqual(annotations.linkedSegmentationLayer, { segment: segmentation.name });
    assert.deepEqual(annotations.filterBySegmentation, ["segment"]);
    // The source it names answers, with the labels as keys.
    const info = await (await fetch(`${source}/info`, { signal: AbortSignal.timeout(30_000) })).json();
    assert.equal(info["@type"], "neuroglancer_annotations_v1");
    const key = await fetch(`${source}/segment/${facts.largest}`, { signal: AbortSignal.timeout(60_000) });
    assert.equal(key.status, 200);
    assert.equal(Number(Buffer.from(await key.arrayBuffer()).readBigUInt64LE(0)), facts.counts.get(facts.largest));
  } finally {
    await page.close();
  }
});

test("errors show in the page", { timeout: 120_000 }, async () => {
  const page = await newPage();
  try {
    // A label the dataset lacks: 2^53 itself (what 2^53 + 1 becomes as a JS number).
    const missing = TWO_53.toString();
    assert.ok(!facts.counts.has(missing));
    await page.goto(viewerUrl(`dataset=${DATASET}&mode=proxy&labels=${facts.small},${missing}`));
    assert.equal(await settled(page), "error");
    assert.match(await page.locator("#error").textContent(), new RegExp(missing));
    assert.equal((await hud(page)).points, facts.counts.get(facts.small), "the other label still shows");

    await page.goto(viewerUrl(`dataset=no-such-dataset&mode=proxy&labels=1`));
    assert.equal(await settled(page), "error");
    assert.match(await page.locator("#error").textContent(), /no-such-dataset/);

    // A site without the package: the page says the viewer did not start.
    await page.route("**/pocaduck-edge/index.js", (route) => route.fulfill({ status: 404, body: "" }));
    await page.goto(viewerUrl(`dataset=${DATASET}&mode=proxy&labels=${facts.small}`));
    assert.equal(await settled(page), "error");
    assert.match(await page.locator("#error").textContent(), /did not start: could not load .*viewer\.js/);
  } finally {
    await page.close();
  }
});

test("the Web Worker helper loads and decodes off the main thread, in both modes", { timeout: 120_000 }, async () => {
  const label = facts.huge;
  const golden = await (await fetch(`${server.base}/v1/datasets/${DATASET}/labels/${label}/points?format=npy`)).arrayBuffer();
  const page = await newPage();
  try {
    await page.goto(`${server.base}/`);
    const results = await page.evaluate(
      async ({ dataset, label }) => {
        const { PointsWorker } = await import("/pocaduck-edge/worker.js");
        const worker = new PointsWorker();
        const sum = (a) => a.reduce((s, v) => s + v, 0n);
        const out = {};
        const sources = {
          proxy: { baseUrl: location.origin, dataset },
          serverless: { url: `${location.origin}/v1/datasets/${dataset}/files/` },
        };
        let positions;
        for (const [mode, source] of Object.entries(sources)) {
          let progress = 0;
          const p = await worker.getPoints(source, label, { onProgress: () => (progress += 1) });
          out[mode] = { count: p.count, label: p.label, sum: String(sum(p.int64)), positions: p.positions.length, progress };
          positions = p.positions;
        }
        // A caller's array moves to the worker and comes back holding the positions.
        const target = new Float32Array(positions.length + 4);
        const q = await worker.getPoints(sources.proxy, label, { positions: target, int64: false });
        out.into = {
          detached: target.length === 0,
          bufferBytes: q.positions.buffer.byteLength,
          same: q.positions.length === positions.length && q.positions.every((v, i) => v === positions[i]),
        };
        // A failed load gives the array back on its error.
        const lost = await worker.getPoints(sources.proxy, "5", { positions: q.positions }).then(() => null, (e) => e);
        out.failedInto = { code: lost.code, back: lost.outputs.positions.buffer.byteLength, detached: q.positions.length === 0 };
        const short = await worker.getPoints(sources.serverless, label, { positions: new Float32Array(6) }).then(() => null, (e) => e);
        out.shortInto = { name: short.name, back: short.outputs.positions.length };
        // Bytes handed to the worker are moved there (the caller's buffer is detached).
        const bytes = new Uint8Array(await (await fetch(`/v1/datasets/${dataset}/labels/${label}/points?format=parquet`)).arrayBuffer());
        const [decoded] = await worker.decodeParquet(bytes);
        out.decoded = { count: decoded.count, detached: bytes.byteLength === 0 };
        // A bad label is refused before anything reaches the worker.
        out.bad = await worker.getPoints(sources.proxy, "12x").then(() => "resolved", (e) => e.name);
        out.unknown = await worker.getPoints(sources.proxy, "5").then(() => "resolved", (e) => `${e.name} ${e.code} ${e.status}`);
        worker.terminate();
        return out;
      },
      { dataset: DATASET, label },
    );
    const header = new Uint8Array(golden);
    const headerLength = header[8] | (header[9] << 8);
    const exact = new BigInt64Array(golden.slice(10 + headerLength));
    const expectedSum = String(exact.reduce((s, v) => s + v, 0n));
    for (const mode of ["proxy", "serverless"]) {
      assert.equal(results[mode].label, label);
      assert.equal(results[mode].count, facts.counts.get(label));
      assert.equal(results[mode].sum, expectedSum, `${mode}: int64 differs from the npy answer`);
      assert.equal(results[mode].positions, facts.counts.get(label) * 3);
      assert.ok(results[mode].progress > 0, `${mode}: no progress reported`);
    }
    assert.deepEqual(results.decoded, { count: facts.counts.get(label), detached: true });
    assert.deepEqual(results.into, { detached: true, bufferBytes: (facts.counts.get(label) * 3 + 4) * 4, same: true });
    assert.deepEqual(results.failedInto, { code: "not_found", back: (facts.counts.get(label) * 3 + 4) * 4, detached: true });
    assert.deepEqual(results.shortInto, { name: "RangeError", back: 6 });
    assert.equal(results.bad, "TypeError");
    assert.equal(results.unknown, "PocaduckError not_found 404");
    assert.deepEqual(page.problems, []);
  } finally {
    await page.close();
  }
});
