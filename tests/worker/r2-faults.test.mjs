// The Worker over R2 objects that go missing, rot, are cut short or are replaced by another
// version of the dataset while it serves, in the real Workers runtime (workerd, through
// miniflare) and its local R2. Each answer is the right one or a clear 503, never other
// points, and a replaced dataset is served whole in its new version within a bounded time.
//
// Needs: the Worker (`scripts/build-worker.sh`) and the debug binaries; scripts/test.sh runs
// it.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";

import { run } from "../support/server.mjs";
import { BUILD, startWorker } from "../support/worker.mjs";

/** Each fault's dataset, a prefix of its own in the bucket, so no cache is shared. */
const PREFIXES = ["missing", "flipped", "truncated", "swapped", "v1", "v2"];
/** The manifest's time to live in the Worker's cache (crates/worker/src/cache.rs), and how
 * long a loaded dataset is served before its manifest is read again, seconds. */
const MANIFEST_SECS = 60;

let work;
let worker;
let v1;
let v2;

before(async () => {
  assert.ok(existsSync(join(BUILD, "index.js")), `no Worker in ${BUILD}: run \`bash scripts/build-worker.sh\``);
  work = await mkdtemp(join(tmpdir(), "pocaduck-edge-r2-faults-"));
  // Two versions of one dataset: the same labels at two voxel sizes, so other points.
  v1 = join(work, "v1");
  v2 = join(work, "v2");
  await run(["sample", v1, "--voxel-nm", "256"]);
  await run(["sample", v2, "--voxel-nm", "320"]);
  const seed = Object.fromEntries(PREFIXES.map((p) => [p, p === "v2" ? v2 : v1]));
  worker = await startWorker({ vars: { DATASETS: PREFIXES.map((p) => `r2://DATA/${p}`).join(", "), CORS_ORIGINS: "*" }, seed });
});

after(async () => {
  await worker?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** The dataset's points files, as bucket keys under `prefix` with their bytes in `dir`. */
function pointsFiles(prefix, dir) {
  return files(join(dir, "points")).map((path) => ({ key: `${prefix}/${relative(dir, path)}`, bytes: readFileSync(path) }));
}

async function get(path) {
  const r = await fetch(worker.url + path);
  return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
}

async function labels(dataset) {
  const r = await get(`/v1/datasets/${dataset}/labels?limit=1000`);
  assert.equal(r.status, 200, r.bytes.toString());
  return JSON.parse(r.bytes).labels;
}

const points = (dataset, label) => get(`/v1/datasets/${dataset}/labels/${label}/points?format=npy`);

/** Each label's npy answer from the untouched dataset `dataset`. */
async function answers(dataset) {
  const out = new Map();
  for (const label of await labels(dataset)) {
    const r = await points(dataset, label);
    assert.equal(r.status, 200, r.bytes.toString());
    out.set(label, r.bytes);
  }
  return out;
}

/**
 * Asks every label of `dataset` for its points: each answer is the untouched dataset's
 * (`good`) or a 503 `dataset_unavailable`; resolves to the labels refused.
 */
async function rightOrRefused(dataset, good) {
  const refused = [];
  for (const [label, bytes] of good) {
    const r = await points(dataset, label);
    if (r.status === 503) {
      assert.equal(JSON.parse(r.bytes).error.code, "dataset_unavailable", `label ${label}: ${r.bytes}`);
      refused.push(label);
    } else {
      assert.equal(r.status, 200, `label ${label}: ${r.bytes}`);
      assert.ok(r.bytes.equals(bytes), `label ${label}: other points than the dataset's`);
    }
  }
  return refused;
}

test("a points file missing from R2 makes the dataset a 503, its log naming the file, and nothing else", async () => {
  const good = await answers("v1");
  const [gone] = pointsFiles("missing", v1);
  await worker.bucket.delete(gone.key);
  const listing = await get("/v1/datasets/missing/labels");
  assert.equal(listing.status, 503, listing.bytes.toString());
  const { error } = JSON.parse(listing.bytes);
  assert.equal(error.code, "dataset_unavailable");
  assert.equal(error.message, "dataset missing is unavailable");
  // The answer keeps the store's words to the log.
  const file = gone.key.slice("missing/".length);
  assert.ok(worker.logs.some((line) => line.includes("dataset_unavailable") && line.includes(file)), worker.logs.slice(-5).join("\n"));
  assert.deepEqual(await rightOrRefused("missing", good), [...good.keys()]);
  // The other datasets of the bucket are served.
  assert.equal((await labels("v1")).length, good.size);
});

test("a points file with a flipped byte, or cut short, is refused where it changed and read where it did not", async () => {
  const good = await answers("v1");
  for (const [prefix, change] of [
    ["flipped", (bytes) => {
      const changed = Buffer.from(bytes);
      changed[Math.floor(changed.length / 2)] ^= 0x20;
      return changed;
    }],
    ["truncated", (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2))],
  ]) {
    for (const { key, bytes } of pointsFiles(prefix, v1)) await worker.bucket.put(key, new Uint8Array(change(bytes)));
    const refused = await rightOrRefused(prefix, good);
    assert.ok(refused.length > 0, `${prefix}: no label was refused`);
  }
});

test("a dataset replaced in R2 while served gives each answer whole in one version, then the new one", { timeout: 240_000 }, async () => {
  const old = await answers("swapped");
  const fresh = await answers("v2");
  assert.deepEqual([...old.keys()], [...fresh.keys()], "the same labels in both versions");
  assert.ok([...old.keys()].some((l) => !old.get(l).equals(fresh.get(l))), "the versions differ");
  // The new version's objects over the old ones, points files first, as a copy would.
  const keys = files(v2).map((path) => relative(v2, path)).sort((a, b) => (a === "manifest.json") - (b === "manifest.json"));
  for (const key of keys) await worker.bucket.put(`swapped/${key}`, new Uint8Array(readFileSync(join(v2, key))));
  // The Worker reads the manifest again a minute after loading it, through the cache,
  // which keeps it a minute more: two minutes at most, and a margin.
  const bound = 2 * MANIFEST_SECS + 30;
  const deadline = Date.now() + bound * 1000;
  const seen = { old: 0, fresh: 0, refused: 0 };
  for (;;) {
    let allFresh = true;
    for (const [label, bytes] of fresh) {
      const r = await points("swapped", label);
      if (r.status === 503) {
        assert.equal(JSON.parse(r.bytes).error.code, "dataset_unavailable", `label ${label}: ${r.bytes}`);
        seen.refused++;
        allFresh = false;
        continue;
      }
      assert.equal(r.status, 200, `label ${label}: ${r.bytes}`);
      if (r.bytes.equals(bytes)) {
        seen.fresh++;
      } else {
        assert.ok(r.bytes.equals(old.get(label)), `label ${label}: neither version's points`);
        seen.old++;
        allFresh = false;
      }
    }
    if (allFresh) break;
    assert.ok(Date.now() < deadline, `the new version not served whole within ${bound} s: ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
});
