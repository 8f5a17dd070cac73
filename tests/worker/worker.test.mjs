// The Worker in the real Workers runtime (workerd, through miniflare) on a loopback port,
// configured for the sample three ways: in its R2 bucket, behind a base URL (the native
// server's /files), and as a VastDB table on the emulator. Each answers as the native server
// does, passes the API conformance suite and serves the npm client; a missing or wrong
// setting or secret is a clear error that shows no key.
//
// Needs: the Worker (`scripts/build-worker.sh`) and the debug binaries; scripts/test.sh runs
// it.

import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

import { connect, openDataset } from "../../js/index.js";
import { emulate, run, serve } from "../support/server.mjs";
import { BUILD, startWorker, wranglerToml } from "../support/worker.mjs";
import { SECRET_HEX, hashToken, signedQuery } from "../support/access.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SAMPLE = "hemibrain-da1";
const KEYS = { accessKey: "AKIAWORKERTEST", secretKey: "SECRET-worker-never-shown" };
/** The sample, three ways, and the dataset of the native server that answers alike. */
const DATASETS = { r2: SAMPLE, url: "web", vast: "vast" };
const NATIVE = { r2: SAMPLE, url: SAMPLE, vast: "vast" };
const FORMATS = ["npy", "arrow", "parquet", "json"];

let work;
let native;
let emulator;
let worker;

/** The Worker's vars and secrets, with `changes` (an `undefined` value removes one). */
function vars(changes = {}) {
  const all = {
    DATASETS: `r2://DATA/${SAMPLE}, web=${native.url}/v1/datasets/${SAMPLE}/files/`,
    CORS_ORIGINS: "*",
    VASTDB_ENDPOINT: emulator.url,
    VASTDB_BUCKET: "pocaduck",
    VASTDB_SCHEMA: "worker",
    VASTDB_TABLE: "vast",
    VASTDB_ACCESS_KEY: KEYS.accessKey,
    VASTDB_SECRET_KEY: KEYS.secretKey,
    ...changes,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
}

before(async () => {
  assert.ok(existsSync(join(BUILD, "index.js")), `no Worker in ${BUILD}: run \`bash scripts/build-worker.sh\``);
  work = await mkdtemp(join(tmpdir(), "pocaduck-edge-worker-"));
  const sample = join(work, SAMPLE);
  await run(["sample", sample, "--voxel-nm", "256"]);
  emulator = await emulate(join(work, "emulator"), KEYS);
  const env = { ...process.env, VASTDB_ACCESS_KEY: KEYS.accessKey, VASTDB_SECRET_KEY: KEYS.secretKey };
  const load = ["vastdb", "load", sample, "--endpoint", emulator.url, "--bucket", "pocaduck", "--schema", "worker", "--table", "vast", "--layout", "pocaduck"];
  await run(load, { env });
  // The native server over the same dataset and table, to answer as the Worker must.
  const table = ["--vastdb-endpoint", emulator.url, "--vastdb-bucket", "pocaduck", "--vastdb-schema", "worker", "--vastdb-table", "vast"];
  native = await serve(["--data", sample, ...table], { env: { ...env, RUST_LOG: "warn" } });
  worker = await startWorker({ vars: vars(), seed: { [SAMPLE]: sample } });
});

after(async () => {
  await worker?.dispose();
  await emulator?.stop();
  await native?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Runs `command args…` to its end without blocking the event loop (a blocked loop stops
 * reading the Worker's log, and workerd then stalls on its full pipe); resolves to its
 * `{status, stdout, stderr}`.
 */
function runAside(command, args, { cwd, env, timeout }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function get(base, path) {
  const r = await fetch(base + path);
  return { status: r.status, headers: r.headers, bytes: new Uint8Array(await r.arrayBuffer()) };
}

/** Labels of the sample to compare: the first, one above 2^53, and the largest. */
async function labels() {
  const { labels } = await (await fetch(`${native.url}/v1/datasets/${SAMPLE}/labels?limit=1000`)).json();
  const counts = await Promise.all(
    labels.map(async (l) => [l, (await (await fetch(`${native.url}/v1/datasets/${SAMPLE}/labels/${l}`)).json()).point_count]),
  );
  const largest = counts.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  return [...new Set([labels[0], labels.find((l) => BigInt(l) > 2n ** 53n), largest])];
}

test("the Worker is at most 1 MB gzipped (the free plan allows 3 MB)", () => {
  const gzipped = ["index.js", "index_bg.wasm"].map((f) => gzipSync(readFileSync(join(BUILD, f)), { level: 9 }).length);
  const total = gzipped.reduce((a, b) => a + b);
  assert.ok(total <= 1_000_000, `${total} bytes gzipped (${gzipped.join(" + ")})`);
});

test("the Worker lists the sample three ways", async () => {
  const { datasets } = await (await fetch(`${worker.url}/v1/datasets`)).json();
  assert.deepEqual(datasets.map((d) => d.name).sort(), Object.values(DATASETS).sort());
});

for (const [how, dataset] of Object.entries(DATASETS)) {
  describe(`the sample ${how === "r2" ? "in R2" : how === "url" ? "behind a base URL" : "in VastDB"} (${dataset})`, () => {
    test("answers every format byte for byte as the native server", async () => {
      for (const label of await labels()) {
        for (const format of FORMATS) {
          const path = (d) => `/v1/datasets/${d}/labels/${label}/points?format=${format}`;
          const [ours, theirs] = await Promise.all([get(worker.url, path(dataset)), get(native.url, path(NATIVE[how]))]);
          assert.equal(ours.status, 200, `${format} of ${label}: ${new TextDecoder().decode(ours.bytes.slice(0, 300))}`);
          assert.equal(ours.headers.get("content-type"), theirs.headers.get("content-type"));
          assert.ok(Buffer.from(ours.bytes).equals(Buffer.from(theirs.bytes)), `${format} of ${label} differs`);
        }
      }
    });

    test("answers neuroglancer's info and keys byte for byte as the native server", async () => {
      const keys = ["info", "spatial/0/0_0_0", "by_id/1", "segment/1", "segment/x"];
      for (const label of await labels()) keys.push(`segment/${label}`);
      for (const key of keys) {
        const path = (d) => `/v1/datasets/${d}/neuroglancer/${key}`;
        const [ours, theirs] = await Promise.all([get(worker.url, path(dataset)), get(native.url, path(NATIVE[how]))]);
        assert.equal(ours.status, theirs.status, key);
        assert.equal(ours.headers.get("content-type"), theirs.headers.get("content-type"), key);
        assert.equal(ours.headers.get("etag"), theirs.headers.get("etag"), key);
        if (ours.status === 200) assert.ok(Buffer.from(ours.bytes).equals(Buffer.from(theirs.bytes)), `${key} differs`);
      }
    });

    test("passes the API conformance suite", { timeout: 900_000 }, async () => {
      // Run beside this process's event loop, which reads the Worker's log meanwhile.
      const r = await runAside("cargo", ["test", "--locked", "-q", "-p", "pocaduck-edge", "--test", "tests", "api::"], {
        cwd: ROOT,
        env: { ...process.env, POCADUCK_EDGE_BASE_URL: worker.url, POCADUCK_EDGE_DATASET: dataset },
        timeout: 900_000,
      });
      assert.equal(r.status, 0, `the suite failed against ${dataset}:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`);
      assert.match(r.stdout, /test result: ok\. [1-9]\d* passed/);
    });

    test("serves the npm client in every mode: through the API, from its files, VastDB passed through", async () => {
      const modes = how === "vast" ? ["proxy", "pass-through"] : ["proxy", "serverless"];
      for (const mode of modes) {
        const d =
          mode === "proxy"
            ? connect(worker.url).dataset(dataset)
            : mode === "pass-through"
              ? connect(worker.url).dataset(dataset, { vastdb: "pass-through" })
              : await openDataset(`${worker.url}/v1/datasets/${dataset}/files/`);
        for (const label of await labels()) {
          const npy = (await get(native.url, `/v1/datasets/${SAMPLE}/labels/${label}/points?format=npy`)).bytes;
          const golden = new BigInt64Array(npy.slice(10 + (npy[8] | (npy[9] << 8))).buffer);
          const p = await d.getPoints(label);
          assert.deepEqual(p.int64, golden, `${mode}: label ${label}`);
        }
      }
    });
  });
}

test("the Cache API keeps manifests, index pages and ranges: a new isolate serves a label R2 no longer holds", { timeout: 120_000 }, async () => {
  const sample = join(work, SAMPLE);
  const cached = await startWorker({ vars: vars({ DATASETS: "r2://DATA/cached" }), seed: { cached: sample } });
  try {
    const [first, second] = await labels();
    const path = (label) => `/v1/datasets/cached/labels/${label}/points?format=parquet`;
    const before = await get(cached.url, path(first));
    assert.equal(before.status, 200);
    // R2 loses the dataset; the Worker restarts with nothing in memory.
    const listed = await cached.bucket.list({ prefix: "cached/" });
    assert.ok(listed.objects.some((o) => o.key === "cached/manifest.json"), "the dataset was in R2");
    await cached.bucket.delete(listed.objects.map((o) => o.key));
    const url = await cached.restart();
    const after = await get(url, path(first));
    assert.equal(after.status, 200, new TextDecoder().decode(after.bytes));
    assert.ok(Buffer.from(after.bytes).equals(Buffer.from(before.bytes)), "the same answer from the cache");
    // A label never read is not in the cache: R2 really is empty.
    const missing = await get(url, path(second));
    assert.equal(missing.status, 503, new TextDecoder().decode(missing.bytes));
  } finally {
    await cached.dispose();
  }
});

test("a pass-through page VastDB answers 503 SlowDown is asked for again, then passed on whole", async () => {
  const [label] = await labels();
  const path = (d) => `/v1/datasets/${d}/labels/${label}/vastdb-reply`;
  const queries = async () => (await (await fetch(`${emulator.url}/_emulator/stats`)).json()).queries;
  // Warm: the table's label list is read and kept.
  assert.equal((await get(worker.url, path("vast"))).status, 200);
  const q0 = await queries();
  assert.equal((await get(worker.url, path("vast"))).status, 200);
  const q1 = await queries();
  assert.equal(q1 - q0, 1, "a page is one query");
  const armed = await fetch(`${emulator.url}/_emulator/fault?kind=slowdown&count=1`, { method: "POST" });
  assert.equal(armed.status, 200);
  const ours = await get(worker.url, path("vast"));
  assert.equal(ours.status, 200, new TextDecoder().decode(ours.bytes.slice(0, 300)));
  assert.equal((await queries()) - q1, 2, "the page was asked for again after the SlowDown");
  const theirs = await get(native.url, path(NATIVE.vast));
  assert.ok(ours.bytes.length > 0 && Buffer.from(ours.bytes).equals(Buffer.from(theirs.bytes)), "the same page as natively");
});

test("a pass-through page's transaction is rolled back once the page is sent", async () => {
  const [label] = await labels();
  const open = async () => (await (await fetch(`${emulator.url}/_emulator/stats`)).json()).open_transactions;
  const before = await open();
  const page = await get(worker.url, `/v1/datasets/vast/labels/${label}/vastdb-reply`);
  assert.equal(page.status, 200);
  // The rollback runs after the answer (waitUntil): bounded polling for it.
  const deadline = Date.now() + 5_000;
  // Other tests' transactions may close meanwhile; this one's must not stay open.
  while ((await open()) > before && Date.now() < deadline) await new Promise((go) => setTimeout(go, 50));
  assert.ok((await open()) <= before, "the page's transaction was rolled back");
});

test("a pass-through page that stalls mid-body is cut after VASTDB_READ_TIMEOUT, and rolled back", { timeout: 60_000 }, async () => {
  const [label] = await labels();
  const open = async () => (await (await fetch(`${emulator.url}/_emulator/stats`)).json()).open_transactions;
  const impatient = await startWorker({ vars: vars({ DATASETS: undefined, VASTDB_READ_TIMEOUT: "1" }) });
  try {
    const path = `/v1/datasets/vast/labels/${label}/vastdb-reply`;
    const whole = await get(impatient.url, path);
    assert.equal(whole.status, 200);
    const before = await open();
    const armed = await fetch(`${emulator.url}/_emulator/fault?kind=stall&count=1`, { method: "POST" });
    assert.equal(armed.status, 200);
    const started = Date.now();
    const r = await fetch(impatient.url + path);
    assert.equal(r.status, 200);
    // The runtime either aborts the body or ends it early: either way short of the page,
    // which the client's de-framing tells (a page cut at a round resumes from that round).
    const got = await r.arrayBuffer().then((b) => b.byteLength, () => -1);
    const took = Date.now() - started;
    assert.ok(got < whole.bytes.length, `${got} of the page's ${whole.bytes.length} bytes`);
    assert.ok(took < 15_000, `cut after ${took} ms (the emulator holds a stall for 120 s)`);
    const deadline = Date.now() + 5_000;
    while ((await open()) > before && Date.now() < deadline) await new Promise((go) => setTimeout(go, 50));
    assert.ok((await open()) <= before, "the page's transaction was rolled back");
  } finally {
    await impatient.dispose();
  }
});

const stats = async () => (await fetch(`${emulator.url}/_emulator/stats`)).json();
const sleep = (ms) => new Promise((go) => setTimeout(go, ms));

/** Loads the sample into the emulator's table `table` with `options`. */
function loadSample(table, ...options) {
  const env = { ...process.env, VASTDB_ACCESS_KEY: KEYS.accessKey, VASTDB_SECRET_KEY: KEYS.secretKey };
  const at = ["--endpoint", emulator.url, "--bucket", "pocaduck", "--schema", "worker", "--table", table];
  return run(["vastdb", "load", join(work, SAMPLE), ...at, ...options], { env });
}

test("a client gone mid-way through a streamed VastDB answer leaves no transaction open", { timeout: 120_000 }, async () => {
  const [, , largest] = await labels();
  // A columnar table read 4096 rows a reply: a label streams in many replies of one
  // transaction. An answer budget of 8 MiB leaves no room for a batch of labels read by one
  // query (which would have read the label, and closed its transaction, before answering):
  // each label is read as it is sent.
  await loadSample("streamed", "--layout", "columnar");
  const table = { DATASETS: undefined, VASTDB_TABLE: "streamed", VASTDB_LAYOUT: "columnar", VASTDB_LIMIT_ROWS: "4096", MAX_ANSWER_BYTES: String(8 << 20) };
  const w = await startWorker({ vars: vars(table) });
  try {
    const { point_count: count } = await (await fetch(`${w.url}/v1/datasets/streamed/labels/${largest}`)).json();
    // Arrow rows, 32 bytes a point, far more than the sockets and the runtime buffer: the
    // answer waits on its client, its current label's transaction open.
    const times = Math.ceil(64e6 / (32 * count));
    const body = JSON.stringify({ labels: Array(times).fill(largest) });
    const open = async () => (await stats()).open_transactions;
    const before = await open();
    const leaving = new AbortController();
    const r = await fetch(`${w.url}/v1/datasets/streamed/points?format=arrow`, { method: "POST", body, signal: leaving.signal });
    assert.equal(r.status, 200);
    const { value } = await r.body.getReader().read();
    assert.ok(value.length > 0);
    await sleep(300);
    assert.ok((await open()) > before, "the answer in progress holds its transaction");
    leaving.abort();
    const deadline = Date.now() + 10_000;
    while ((await open()) > before && Date.now() < deadline) await sleep(50);
    assert.ok((await open()) <= before, "a transaction still open 10 s after its client went");
  } finally {
    await w.dispose();
  }
});

test("a streamed VastDB answer that fails before its head, its client gone, leaves no transaction open", { timeout: 120_000 }, async () => {
  const [, , largest] = await labels();
  // The table of the test above, its replies cut after 2 s without bytes.
  const table = { DATASETS: undefined, VASTDB_TABLE: "streamed", VASTDB_LAYOUT: "columnar", VASTDB_LIMIT_ROWS: "4096", VASTDB_READ_TIMEOUT: "2" };
  const w = await startWorker({ vars: vars(table) });
  try {
    assert.equal((await fetch(`${w.url}/v1/datasets/streamed/labels/${largest}`)).status, 200);
    const open = async () => (await stats()).open_transactions;
    const before = await open();
    assert.equal((await fetch(`${emulator.url}/_emulator/fault?kind=stall&count=1`, { method: "POST" })).status, 200);
    const leaving = new AbortController();
    const answer = fetch(`${w.url}/v1/datasets/streamed/labels/${largest}/points?format=arrow`, { signal: leaving.signal }).catch(() => null);
    // The label's first reply stalls, its transaction open; the client goes meanwhile.
    await sleep(500);
    assert.ok((await open()) > before, "the stalled query holds its transaction");
    leaving.abort();
    await answer;
    const deadline = Date.now() + 10_000;
    while ((await open()) > before && Date.now() < deadline) await sleep(50);
    assert.ok((await open()) <= before, "a transaction still open 10 s after its client went");
  } finally {
    await w.dispose();
  }
});

test("a stale label list is answered at once while one reading of it runs in the background; the list read then is served", { timeout: 120_000 }, async () => {
  const load = () => loadSample("growing", "--layout", "pocaduck", "--commit-mb", "0");
  // The table first holds the labels loaded before its load failed at an insert.
  assert.equal((await fetch(`${emulator.url}/_emulator/fault?kind=insert&after=1`, { method: "POST" })).status, 200);
  await assert.rejects(load());
  const w = await startWorker({ vars: vars({ DATASETS: undefined, VASTDB_TABLE: "growing", VASTDB_LABELS_TTL: "1", VASTDB_READ_TIMEOUT: "2" }) });
  try {
    /** The table's listing by the Worker, and how long it took. */
    const listing = async () => {
      const started = Date.now();
      const r = await fetch(`${w.url}/v1/datasets/growing/labels?limit=1000`);
      assert.equal(r.status, 200);
      const { labels } = await r.json();
      return { labels, took: Date.now() - started };
    };
    const { labels: first } = await listing();
    const { labels: all } = await (await fetch(`${native.url}/v1/datasets/vast/labels?limit=1000`)).json();
    assert.ok(first.length > 0 && first.length < all.length, `${first.length} of ${all.length} labels loaded`);
    await load(); // the rest of the sample, while the Worker keeps the list it read
    await sleep(1200);
    // The next reading of the list stalls: the requests that find the list stale are all
    // answered from it at once, and start one reading between them.
    const before = (await stats()).queries;
    assert.equal((await fetch(`${emulator.url}/_emulator/fault?kind=stall&count=1`, { method: "POST" })).status, 200);
    for (const { labels, took } of await Promise.all(Array.from({ length: 8 }, listing))) {
      assert.deepEqual(labels, first);
      assert.ok(took < 1000, `a stale listing took ${took} ms`);
    }
    const started = Date.now() + 2_000;
    while ((await stats()).queries === before && Date.now() < started) await sleep(20);
    await sleep(300);
    assert.equal((await stats()).queries - before, 1, "one reading of the list for eight requests");
    // Once that reading has failed (the read timeout), the next request starts another, and
    // a request after it gets the whole table's list; each is answered at once.
    const deadline = Date.now() + 15_000;
    let latest = first;
    while (latest.length < all.length && Date.now() < deadline) {
      const { labels, took } = await listing();
      assert.ok(took < 1000, `a stale listing took ${took} ms`);
      latest = labels;
      await sleep(200);
    }
    assert.deepEqual(latest, all, "the labels loaded meanwhile are listed");
  } finally {
    await w.dispose();
  }
});

/** The peak resident memory of the workerd this process started, in bytes. */
function workerdPeak() {
  const pids = execFileSync("pgrep", ["-P", String(process.pid), "-x", "workerd"], { encoding: "utf8" }).trim().split("\n");
  assert.equal(pids.length, 1, `one workerd: ${pids}`);
  const status = readFileSync(`/proc/${pids[0]}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)[1]) * 1024;
}

test("an answer larger than an isolate's 128 MB streams through in bounded memory", { timeout: 300_000 }, async () => {
  const [, , largest] = await labels();
  const { point_count: count } = await (await fetch(`${worker.url}/v1/datasets/${SAMPLE}/labels/${largest}`)).json();
  const post = async (times) => {
    const body = JSON.stringify({ labels: Array(times).fill(largest) });
    const r = await fetch(`${worker.url}/v1/datasets/${SAMPLE}/points?format=arrow`, { method: "POST", body });
    assert.equal(r.status, 200);
    let bytes = 0;
    for await (const chunk of r.body) bytes += chunk.length;
    return bytes;
  };
  // Arrow rows: 32 bytes a point (the label and three int64 coordinates).
  const times = Math.ceil(256e6 / (32 * count));
  // The first big answer settles the runtime's heaps; a three times bigger one must not
  // raise the peak further by more than the noise of its garbage collector.
  const first = await post(times);
  assert.ok(first > 256e6, `${first} bytes for ${times} × ${count} points`);
  const before = workerdPeak();
  const bytes = await post(3 * times);
  const grown = workerdPeak() - before;
  console.log(`workerd peak ${before} B, then +${grown} B over a ${bytes}-byte answer`);
  assert.ok(grown < 32e6, `workerd's peak grew by ${grown} bytes over a ${bytes}-byte answer (from ${before})`);
});

test("scripts/seed-r2.sh --local fills the bucket `wrangler dev` serves", { timeout: 120_000 }, async () => {
  const persist = join(work, "wrangler-state");
  const { bucket } = wranglerToml();
  const seed = spawnSync("bash", ["scripts/seed-r2.sh", join(work, SAMPLE), bucket, "--local", "--persist-to", persist], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(seed.status, 0, seed.stderr);
  const w = await startWorker({ vars: { DATASETS: `r2://DATA/${SAMPLE}` }, persistTo: persist });
  try {
    for (const path of [`/v1/datasets/${SAMPLE}/labels?limit=1000`, `/v1/datasets/${SAMPLE}/labels/722817260/points?format=npy`]) {
      const [ours, theirs] = await Promise.all([get(w.url, path), get(native.url, path)]);
      assert.equal(ours.status, 200, path);
      assert.ok(Buffer.from(ours.bytes).equals(Buffer.from(theirs.bytes)), path);
    }
  } finally {
    await w.dispose();
  }
});

// The access configuration as the `ACCESS` secret: the native rules (docs/security.md), with
// credentials made by node:crypto (tests/support/access.mjs).
describe("ACCESS", () => {
  const TOKEN = "worker-token-0123456789";
  const VIEWER = "https://viewer.lab.org";
  const config = () =>
    JSON.stringify({
      datasets: {
        [SAMPLE]: { tokens: [hashToken(TOKEN)], signing_keys: [{ id: "k1", secret_hex: SECRET_HEX }], cors: [VIEWER] },
        web: { access: "public" },
      },
      default: { tokens: [hashToken(TOKEN)] },
    });
  let guarded;
  before(async () => {
    guarded = await startWorker({ vars: vars({ ACCESS: config(), CORS_ORIGINS: undefined }), seed: { [SAMPLE]: join(work, SAMPLE) } });
  });
  after(async () => {
    await guarded?.dispose();
  });
  const names = async (init) => (await (await fetch(`${guarded.url}/v1/datasets`, init)).json()).datasets.map((d) => d.name).sort();

  test("an anonymous caller sees the public dataset alone; others, and datasets not served, are 401", async () => {
    assert.deepEqual(await names(), ["web"]);
    for (const name of [SAMPLE, "vast", "no-such-dataset"]) {
      const r = await fetch(`${guarded.url}/v1/datasets/${name}/labels`);
      assert.equal(r.status, 401, name);
      assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="pocaduck-edge"');
      assert.equal((await r.json()).error.code, "unauthorized");
    }
    assert.equal((await fetch(`${guarded.url}/v1/datasets/web/labels`)).status, 200);
  });

  test("a token reads its datasets, with each dataset's CORS", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.deepEqual(await names({ headers: auth }), [SAMPLE, "vast", "web"].sort());
    const viewer = await fetch(`${guarded.url}/v1/datasets/${SAMPLE}/labels`, { headers: { ...auth, origin: VIEWER } });
    assert.equal(viewer.status, 200);
    assert.equal(viewer.headers.get("access-control-allow-origin"), VIEWER);
    const other = await fetch(`${guarded.url}/v1/datasets/${SAMPLE}/labels`, { headers: { ...auth, origin: "https://evil.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const wrong = await fetch(`${guarded.url}/v1/datasets/${SAMPLE}/labels`, { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 403);
    assert.equal((await wrong.json()).error.code, "forbidden");
  });

  test("a signed prefix URL serves the npm client through the API and from the files", async () => {
    const query = signedQuery(SECRET_HEX, "k1", { prefix: `/v1/datasets/${SAMPLE}/`, expires: Math.floor(Date.now() / 1000) + 600 });
    const [label] = await labels();
    const expected = (await connect(native.url).dataset(SAMPLE).getPoints(label)).int64;
    const proxy = connect(`${guarded.url}/?${query}`).dataset(SAMPLE);
    assert.deepEqual((await proxy.getPoints(label)).int64, expected);
    const files = await openDataset(`${guarded.url}/v1/datasets/${SAMPLE}/files/?${query}`);
    assert.deepEqual((await files.getPoints(label)).int64, expected);
    await assert.rejects(connect(guarded.url).dataset(SAMPLE).getPoints(label), (e) => e.status === 401 && e.code === "unauthorized");
  });
});

describe("misconfigured", () => {
  /** A Worker with `changes` to the vars, its answer to `path`, and its console. */
  async function answer(changes, path) {
    const w = await startWorker({ vars: vars(changes) });
    try {
      const r = await fetch(w.url + path, { headers: { origin: "https://viewer.example" } });
      const text = await r.text();
      return { status: r.status, headers: r.headers, body: JSON.parse(text), text, logs: w.logs.join("\n") };
    } finally {
      await w.dispose();
    }
  }

  /** Nothing secret or internal in an answer. */
  function assertNothingInside(text) {
    for (const inside of [KEYS.secretKey, KEYS.accessKey, emulator.url, "pocaduck/worker", native.url]) {
      assert.ok(!text.includes(inside), `${inside} in ${text}`);
    }
  }

  for (const secret of ["VASTDB_ACCESS_KEY", "VASTDB_SECRET_KEY"]) {
    test(`without ${secret}, every answer is a 503 naming it, with CORS`, async () => {
      const a = await answer({ [secret]: undefined }, "/v1/datasets");
      assert.equal(a.status, 503);
      assert.equal(a.body.error.code, "misconfigured");
      assert.match(a.body.error.message, new RegExp(secret));
      assert.equal(a.headers.get("access-control-allow-origin"), "*");
      assert.equal(a.body.error.request_id, a.headers.get("x-request-id"));
      assertNothingInside(a.text);
      assert.match(a.logs, new RegExp(`${a.body.error.request_id}.*${secret}: not set`));
      assertNothingInside(a.logs);
    });
  }

  test("with a wrong secret, the table answers 502 and the log names SignatureDoesNotMatch", async () => {
    const a = await answer({ VASTDB_SECRET_KEY: "not-the-secret" }, "/v1/datasets/vast/labels");
    assert.equal(a.status, 502);
    assert.equal(a.body.error.code, "upstream_error");
    assertNothingInside(a.text);
    assert.ok(!a.text.includes("not-the-secret"));
    assert.match(a.logs, new RegExp(`${a.body.error.request_id}.*SignatureDoesNotMatch`));
    assert.ok(!a.logs.includes("not-the-secret") && !a.logs.includes(KEYS.secretKey), a.logs);
  });

  test("an ACCESS with a token in plain text, or beside CORS_ORIGINS, is a 503 naming the setting", async () => {
    const plain = JSON.stringify({ datasets: { web: { tokens: ["plain-token-0123456789"] } }, default: { access: "public" } });
    const a = await answer({ ACCESS: plain, CORS_ORIGINS: undefined }, "/v1/datasets");
    assert.equal(a.status, 503);
    assert.equal(a.body.error.code, "misconfigured");
    assert.match(a.body.error.message, /ACCESS/);
    assert.match(a.logs, /datasets\.web\.tokens\[0\]/);
    assert.ok(!a.text.includes("plain-token") && !a.logs.includes("plain-token"), a.logs);
    const unserved = JSON.stringify({ datasets: { gone: { access: "public" } }, default: { access: "public" } });
    const b = await answer({ ACCESS: unserved, CORS_ORIGINS: undefined }, "/v1/datasets/web/labels");
    assert.equal(b.status, 503);
    assert.match(b.logs, /datasets\.gone: no dataset of that name is served/);
    const both = await answer({ ACCESS: JSON.stringify({ default: { access: "public" } }) }, "/v1/datasets");
    assert.equal(both.status, 503);
    assert.match(both.body.error.message, /CORS_ORIGINS/);
  });

  test("an R2 binding that does not exist is a 503 naming DATASETS", async () => {
    const a = await answer({ DATASETS: "r2://NOPE/hemibrain-da1" }, "/v1/datasets");
    assert.equal(a.status, 503);
    assert.match(a.body.error.message, /DATASETS/);
    assert.match(a.logs, /no R2 bucket is bound as NOPE/);
  });
});
