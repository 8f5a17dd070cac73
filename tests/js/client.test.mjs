// The npm package against the real server and the Worker in workerd, in every mode: exact
// int64, re-centred float32, options, round trips, bounded ranges, and every bad input.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile, cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { Field, Int64, List, Utf8, makeTable, tableToIPC, vectorFromArray } from "apache-arrow";
import * as parquetWasm from "parquet-wasm";

import { PocaduckError, connect, decodeArrow, decodeParquet, labelString, openDataset } from "../../js/index.js";
import { run, serve } from "../support/server.mjs";
import { BUILD, startWorker } from "../support/worker.mjs";
import { SECRET_HEX, hashToken, signedQuery } from "../support/access.mjs";

const SAMPLE = "hemibrain-da1";
/** Labels and coordinates of the hand-made dataset: above 2^53, negative, and in int64 only. */
const BIG = 2n ** 53n;
const EXTREME = new Map([
  [
    (1n << 62n) + 3n,
    [
      [BIG + 1000n, -(BIG + 7n), -5n],
      [BIG + 1001n, -(BIG + 7n), -5n],
      [BIG + 1003n, -(BIG + 9n), 4n],
    ],
  ],
  [
    BIG + 1n,
    [
      [-3n, -2n, -1n],
      [-3n, -2n, 0n],
    ],
  ],
]);
const BLOCKS = { [(1n << 62n) + 3n]: ["0_0_0", "1_0_0"], [BIG + 1n]: ["0_0_0"] };

/** The bundled sample (built once into the user's cache), and the hand-made datasets. */
let sample;
let server;
let worker;
let work;
const urlOf = (dataset) => (dataset === SAMPLE ? sample.url : server.url);
const sampleFiles = () => `${sample.url}/v1/datasets/${SAMPLE}/files/`;

/** The PoCADuck raw layout of EXTREME, written with apache-arrow and parquet-wasm. */
async function writePocaduck(dir) {
  const labels = [];
  const blocks = [];
  const points = [];
  for (const [label, rows] of EXTREME) {
    rows.forEach((row, i) => {
      labels.push(label);
      blocks.push(BLOCKS[label][i % BLOCKS[label].length]);
      points.push(BigInt64Array.from(row));
    });
    // PoCADuck keeps duplicates until it reads: the import must drop this one.
    labels.push(label);
    blocks.push(BLOCKS[label][0]);
    points.push(BigInt64Array.from(rows[0]));
  }
  const table = makeTable({
    label: vectorFromArray(BigInt64Array.from(labels), new Int64()),
  });
  const full = table.assign(
    makeTable({
      block_id: vectorFromArray(blocks, new Utf8()),
      data: vectorFromArray(points, new List(new Field("item", new Int64(), true))),
    }),
  );
  const wasmTable = parquetWasm.Table.fromIPCStream(tableToIPC(full, "stream"));
  const bytes = parquetWasm.writeParquet(wasmTable);
  await mkdir(join(dir, "worker_0/data"), { recursive: true });
  await writeFile(join(dir, "worker_0/data/part-0.parquet"), bytes);
}

async function npy(dataset, label) {
  const r = await fetch(`${urlOf(dataset)}/v1/datasets/${dataset}/labels/${label}/points?format=npy`);
  assert.equal(r.status, 200);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const headerLength = bytes[8] | (bytes[9] << 8);
  return new BigInt64Array(bytes.slice(10 + headerLength).buffer);
}

async function labelInfo(dataset, label) {
  const r = await fetch(`${urlOf(dataset)}/v1/datasets/${dataset}/labels/${label}`);
  return r.json();
}

/** Positions must be the int64 values minus the origin, exactly (small spans). */
function assertRecentred(points) {
  assert.equal(points.positions.length, points.count * 3);
  for (let i = 0; i < points.count; i++) {
    for (let k = 0; k < 3; k++) {
      const exact = points.int64[i * points.dims + k] - BigInt(points.origin[k]);
      assert.equal(points.positions[i * 3 + k], Number(exact), `point ${i} axis ${k}`);
    }
  }
}

/** A fetch that records requests and the most in flight at once. */
function recordingFetch(delayMs = 0) {
  const log = { requests: [], inFlight: 0, maxInFlight: 0 };
  const f = async (url, init = {}) => {
    log.requests.push({ url: String(url), range: init.headers?.Range, method: init.method ?? "GET" });
    log.inFlight += 1;
    log.maxInFlight = Math.max(log.maxInFlight, log.inFlight);
    try {
      if (delayMs) await new Promise((go) => setTimeout(go, delayMs));
      return await fetch(url, init);
    } finally {
      log.inFlight -= 1;
    }
  };
  return { fetch: f, log };
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "pocaduck-edge-js-"));
  await writePocaduck(join(work, "pocaduck"));
  await run(["import", join(work, "pocaduck"), join(work, "extreme")]);
  await cp(join(work, "extreme"), join(work, "broken"), { recursive: true });
  await writeFile(join(work, "broken/manifest.json"), "{ not json");
  // Coarse levels on the labels of more than 4000 points.
  await run(["sample", join(work, "coarse"), "--voxel-nm", "256", "--coarse-points", "1000"]);
  // The sample, and the same sample as a table of a local VastDB emulator.
  // A row per point, and pages of 65,536 rows when passed through: a big label takes several.
  sample = await serve(["--vastdb-emulator", "--vastdb-layout", "columnar", "--vastdb-limit-rows", "4096"]);
  server = await serve(["--data", join(work, "extreme"), "--data", join(work, "broken"), "--data", join(work, "coarse")]);
  // The Worker in workerd, over the same datasets in its R2 bucket (the sample built anew,
  // with the bundled sample's coarse levels: the builder is deterministic).
  assert.ok(existsSync(join(BUILD, "index.js")), `no Worker in ${BUILD}: run \`bash scripts/build-worker.sh\``);
  await run(["sample", join(work, SAMPLE), "--coarse-points", "65536"]);
  const names = [SAMPLE, "extreme", "broken", "coarse"];
  worker = await startWorker({
    vars: { DATASETS: names.map((n) => `r2://DATA/${n}`).join(" "), CORS_ORIGINS: "*" },
    seed: Object.fromEntries(names.map((n) => [n, join(work, n)])),
  });
});

after(async () => {
  await worker?.dispose();
  await sample?.stop();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("labelString", () => {
  test("takes bigints, decimal strings and safe integers", () => {
    assert.equal(labelString(2n ** 64n - 1n), "18446744073709551615");
    assert.equal(labelString("9007199254740993"), "9007199254740993");
    assert.equal(labelString(42), "42");
    assert.equal(labelString("007"), "7");
  });
  test("refuses anything that is not a u64, with a TypeError", () => {
    for (const bad of [-1, 1.5, 2 ** 60, Number.NaN, "-1", "1e3", " 1", "", "0x10", "18446744073709551616", 2n ** 64n, -1n, null, undefined, {}]) {
      assert.throws(() => labelString(bad), TypeError, `accepted ${String(bad)}`);
    }
  });
});

// Every mode against each host: the native server, and the Worker in workerd. The golden
// answers are the native server's.
for (const [host, mode] of ["native server", "Worker"].flatMap((h) => ["proxy", "serverless"].map((m) => [h, m]))) {
  describe(`${mode} mode, ${host}`, () => {
    const base = (dataset) => (host === "Worker" ? worker.url : urlOf(dataset));
    const open = async (dataset, options) =>
      mode === "proxy"
        ? connect(base(dataset), options).dataset(dataset)
        : openDataset(`${base(dataset)}/v1/datasets/${dataset}/files/`, options);

    test("extreme values come back exact, re-centred and with their blocks", async () => {
      const d = await open("extreme");
      for (const [label, rows] of EXTREME) {
        const p = await d.getPoints(label);
        assert.equal(p.label, label.toString());
        assert.equal(p.dims, 3);
        assert.equal(p.count, rows.length);
        // PoCADuck's order: rows sorted lexicographically, duplicates dropped.
        const expected = [...rows].sort((a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] !== b[1] ? (a[1] < b[1] ? -1 : 1) : a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0));
        assert.deepEqual(Array.from(p.int64), expected.flat());
        assertRecentred(p);
        assert.deepEqual(Array.from(p.bbox.min), [0, 1, 2].map((k) => expected.map((r) => r[k]).reduce((a, b) => (a < b ? a : b))));
        assert.equal(await d.getPointCount(label), rows.length);
        const blocks = await d.getBlocksForLabel(label);
        assert.deepEqual(blocks.map((b) => b.blockId).sort(), [...new Set(BLOCKS[label])].sort());
        const golden = (await labelInfo("extreme", label)).blocks;
        assert.deepEqual(blocks, golden.map((b) => ({ blockId: b.block_id, pointCount: b.point_count })));
      }
    });

    test("sample labels equal the server's npy answer", async () => {
      const d = await open(SAMPLE);
      const page = await d.getLabels({ limit: 100 });
      assert.ok(page.labels.includes("18446744073709551615"));
      assert.deepEqual(Array.from(page.values, String), page.labels);
      for (const label of ["722817260", "9007199254740993", "18446744073709551615"]) {
        const p = await d.getPoints(label);
        const golden = await npy(SAMPLE, label);
        assert.equal(p.count, (await labelInfo(SAMPLE, label)).point_count);
        assert.deepEqual(p.int64, golden);
        assertRecentred(p);
      }
    });

    test("labels page with after and limit", async () => {
      const d = await open(SAMPLE);
      const first = await d.getLabels({ limit: 4 });
      assert.equal(first.labels.length, 4);
      assert.equal(first.nextAfter, first.labels[3]);
      const next = await d.getLabels({ after: first.nextAfter, limit: 100 });
      const all = await d.getLabels({ limit: 1000 });
      assert.deepEqual([...first.labels, ...next.labels], all.labels);
      assert.equal(all.nextAfter, null);
    });

    test("limit and bbox select the server's points", async () => {
      const d = await open(SAMPLE);
      const whole = await d.getPoints("722817260", { limit: 1000 });
      assert.equal(whole.count, 1000);
      // The lower half in x of the label's bounds.
      const { bbox } = await labelInfo(SAMPLE, "722817260");
      const box = [bbox.min, [Math.floor((bbox.min[0] + bbox.max[0]) / 2), bbox.max[1], bbox.max[2]]];
      const url = `${sample.url}/v1/datasets/${SAMPLE}/labels/722817260/points?format=arrow&limit=1000&bbox=${box.flat()}`;
      const [golden] = await decodeArrow(new Uint8Array(await (await fetch(url)).arrayBuffer()));
      const boxed = await d.getPoints(722817260, { limit: 1000, bbox: box });
      assert.ok(boxed.count > 0 && boxed.count < 1000, `${boxed.count} points in the box`);
      assert.deepEqual(boxed.int64, golden.int64);
    });

    test("levels of detail of big labels read their coarse level, as the server picks them", async () => {
      const { fetch, log } = recordingFetch();
      const d = await open("coarse", { fetch });
      const { labels } = await d.getLabels({ limit: 100 });
      let coarse = 0;
      for (const label of labels) {
        const count = await d.getPointCount(label);
        const limit = 77;
        const url = `${server.url}/v1/datasets/coarse/labels/${label}/points?format=arrow&limit=${limit}`;
        const [golden] = await decodeArrow(new Uint8Array(await (await fetch(url)).arrayBuffer()));
        log.requests.length = 0;
        const p = await d.getPoints(label, { limit });
        assert.equal(p.count, limit);
        assert.deepEqual(p.int64, golden.int64, `label ${label} of ${count} points`);
        if (count > 4000) {
          coarse += 1;
          if (mode === "serverless") {
            assert.ok(log.requests.some((r) => r.url.includes("/coarse/part-")), JSON.stringify(log.requests));
            assert.ok(!log.requests.some((r) => r.url.includes("/points/part-")), "the label's own points stay unread");
          }
        }
      }
      assert.ok(coarse >= 2 && coarse < labels.length, `${coarse} of ${labels.length} labels have a coarse level`);
    });

    test("many labels come back in the order asked, an empty selection included", async () => {
      const d = await open(SAMPLE);
      const labels = ["18446744073709551615", "722817260", "9007199254740993"];
      const many = await d.getPointsMany(labels, { limit: 50 });
      assert.deepEqual(many.map((p) => p.label), labels);
      assert.ok(many.every((p) => p.count === 50));
      const none = await d.getPointsMany(labels.slice(0, 1), { bbox: [[-5], [-1]] });
      assert.equal(none[0].count, 0);
      assert.equal(none[0].bbox, null);
    });

    test("points can be written into the caller's arrays, one run after another", async () => {
      const d = await open(SAMPLE);
      const labels = ["9007199254740993", "722817260", "18446744073709551615"];
      const fresh = await d.getPointsMany(labels);
      const total = fresh.reduce((n, p) => n + p.count, 0);
      // Longer than needed, with a tail that must stay untouched.
      const positions = new Float32Array(total * 3 + 5).fill(-7);
      const int64 = new BigInt64Array(total * 3 + 2).fill(-7n);
      const into = await d.getPointsMany(labels, { positions, int64 });
      let at = 0;
      for (const [i, p] of into.entries()) {
        assert.equal(p.label, labels[i]);
        assert.equal(p.positions.buffer, positions.buffer);
        assert.equal(p.int64.buffer, int64.buffer);
        assert.equal(p.positions.byteOffset, at * 3 * 4);
        assert.equal(p.int64.byteOffset, at * 3 * 8);
        assert.deepEqual(p.positions, fresh[i].positions);
        assert.deepEqual(p.int64, fresh[i].int64);
        assert.deepEqual(p.origin, fresh[i].origin);
        at += p.count;
      }
      assert.deepEqual(Array.from(positions.subarray(total * 3)), [-7, -7, -7, -7, -7]);
      assert.deepEqual(Array.from(int64.subarray(total * 3)), [-7n, -7n]);
      // A label without points gets an empty view of the array.
      const [none] = await d.getPointsMany(labels.slice(0, 1), { bbox: [[-5], [-1]], positions });
      assert.equal(none.positions.length, 0);
      assert.equal(none.positions.buffer, positions.buffer);
    });

    test("a caller's array of the wrong type is a TypeError before any request, one too short a RangeError that writes nothing", async () => {
      const { fetch, log } = recordingFetch();
      const d = await open(SAMPLE, { fetch });
      const before = log.requests.length;
      await assert.rejects(d.getPoints("722817260", { positions: new Float64Array(10) }), TypeError);
      await assert.rejects(d.getPoints("722817260", { int64: new Int32Array(10) }), TypeError);
      await assert.rejects(d.getPoints("722817260", { positions: "yes" }), TypeError);
      assert.equal(log.requests.length, before);
      const count = await d.getPointCount("722817260");
      const short = new Float32Array(count * 3 - 1).fill(-7);
      await assert.rejects(d.getPoints("722817260", { positions: short }), (e) => e instanceof RangeError && e.message.includes(String(count * 3)));
      assert.ok(short.every((v) => v === -7), "nothing was written");
      const p = await d.getPoints("722817260", { positions: new Float32Array(count * 3) });
      assert.equal(p.count, count);
    });

    test("one round trip per label through the proxy, two serverless, bounded ranges only", async () => {
      // A slow fetch, so requests made together are seen in flight together.
      const { fetch, log } = recordingFetch(30);
      const d = await open(SAMPLE, { fetch });
      // Serverless, opening reads the manifest alone.
      assert.deepEqual(log.requests.map((r) => r.url.split("/").pop()), mode === "proxy" ? [] : ["manifest.json"]);
      const before = log.requests.length;
      log.maxInFlight = 0;
      const p = await d.getPoints("722817260");
      const made = log.requests.slice(before);
      assert.equal(made.length, p.timing.requests);
      assert.equal(p.timing.roundTrips, mode === "proxy" ? 1 : 2);
      if (mode === "proxy") {
        assert.equal(p.timing.requests, 1);
      } else {
        // The index page, then the label's row groups and, the first time its file is read,
        // the file's footer: fetched together, so two round trips.
        assert.deepEqual(made.map((r) => r.url.split("/").pop()), ["labels.idx", "part-00000.parquet", "part-00000.parquet"]);
        assert.equal(log.maxInFlight, 2, "the footer and the data are fetched together");
        const [data, footer] = made.slice(1).map((r) => r.range.match(/\d+/g).map(Number));
        assert.ok(data[1] < footer[0], "the data range ends before the footer's");
      }
      // Another label of the same file and index page: its data alone.
      const before2 = log.requests.length;
      const q = await d.getPoints("754534424");
      assert.equal(q.timing.requests, 1);
      assert.equal(q.timing.roundTrips, 1);
      assert.equal(log.requests.length - before2, 1);
      assert.ok(p.timing.bytesFetched > 0 && p.timing.totalMs >= p.timing.decodeMs);
      for (const r of log.requests.filter((r) => r.range)) assert.match(r.range, /^bytes=\d+-\d+$/);
    });

    test("progress reports the bytes as they arrive", async () => {
      const d = await open(SAMPLE);
      const seen = [];
      const p = await d.getPoints("722817260", { onProgress: (e) => seen.push(e) });
      assert.ok(seen.length > 0);
      assert.equal(seen.at(-1).bytesLoaded, p.timing.bytesFetched);
      if (mode === "serverless") assert.equal(seen.at(-1).bytesTotal, p.timing.bytesFetched);
      assert.ok(seen.every((e, i) => i === 0 || e.bytesLoaded >= seen[i - 1].bytesLoaded));
    });

    test("at most six requests in flight", async () => {
      const { fetch, log } = recordingFetch(20);
      const d = await open(SAMPLE, { fetch });
      const labels = (await d.getLabels()).labels;
      await Promise.all(labels.map((l) => d.getPointCount(l)));
      assert.ok(log.maxInFlight <= 6, `${log.maxInFlight} in flight`);
    });

    test("a malformed label is a TypeError before any request", async () => {
      const { fetch, log } = recordingFetch();
      const d = await open(SAMPLE, { fetch });
      const before = log.requests.length;
      for (const bad of ["12x", -4, 2 ** 60, "18446744073709551616"]) {
        await assert.rejects(d.getPoints(bad), TypeError);
        await assert.rejects(d.getPointCount(bad), TypeError);
      }
      await assert.rejects(d.getPoints(1, { bbox: [[0], [1, 2]] }), TypeError);
      await assert.rejects(d.getPoints(1, { limit: -1 }), TypeError);
      assert.equal(log.requests.length, before);
    });

    test("an unknown label rejects with a typed not_found error", async () => {
      const d = await open(SAMPLE);
      for (const call of [() => d.getPoints("123"), () => d.getPointCount(123n), () => d.getPointsMany(["722817260", "5"])]) {
        await assert.rejects(call(), (e) => e instanceof PocaduckError && e.code === "not_found" && e.status === 404);
      }
    });

    test("an aborted load rejects and leaves nothing half done", async () => {
      const d = await open(SAMPLE);
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(d.getPoints("722817260", { signal: controller.signal }), { name: "AbortError" });
      const midway = new AbortController();
      await assert.rejects(
        d.getPoints("754534424", { signal: midway.signal, onProgress: () => midway.abort() }),
        { name: "AbortError" },
      );
      const p = await d.getPoints("754534424");
      assert.deepEqual(p.int64, await npy(SAMPLE, "754534424"));
    });
  });
}

describe("VastDB pass-through", () => {
  const TABLE = `${SAMPLE}-vastdb`;
  const table = (options) => connect(sample.url, options).dataset(TABLE, { vastdb: "pass-through" });

  test("gives every path's points, page after page, one request per page", async () => {
    const { fetch, log } = recordingFetch();
    const d = table({ fetch });
    const reframed = connect(sample.url).dataset(TABLE);
    let pagesOfLargest = 0;
    for (const label of ["722817260", "9007199254740993", "18446744073709551615"]) {
      log.requests.length = 0;
      const p = await d.getPoints(label);
      assert.ok(log.requests.every((r) => r.url.includes(`/labels/${label}/vastdb-reply`)), JSON.stringify(log.requests));
      assert.equal(p.timing.requests, log.requests.length);
      if (label === "722817260") pagesOfLargest = log.requests.length;
      assert.deepEqual(p.int64, await npy(SAMPLE, label), `label ${label}`);
      assert.deepEqual(p.int64, (await reframed.getPoints(label)).int64);
      assertRecentred(p);
      assert.equal(p.count, (await labelInfo(SAMPLE, label)).point_count);
    }
    // 722817260 has more rows than a page holds: later pages resume where the rounds ended.
    assert.ok(pagesOfLargest > 1, `${pagesOfLargest} pages`);
    assert.ok(log.requests.length >= 1);
  });

  test("limit, bbox and many labels select as the server does", async () => {
    const d = table();
    const { bbox } = await labelInfo(SAMPLE, "722817260");
    const box = [bbox.min, [Math.floor((bbox.min[0] + bbox.max[0]) / 2), bbox.max[1], bbox.max[2]]];
    const url = `${sample.url}/v1/datasets/${TABLE}/labels/722817260/points?format=arrow&limit=1000&bbox=${box.flat()}`;
    const [golden] = await decodeArrow(new Uint8Array(await (await fetch(url)).arrayBuffer()));
    const boxed = await d.getPoints("722817260", { limit: 1000, bbox: box });
    assert.ok(boxed.count > 0 && boxed.count < 1000, `${boxed.count} points in the box`);
    assert.deepEqual(boxed.int64, golden.int64);
    const labels = ["18446744073709551615", "722817260"];
    const many = await d.getPointsMany(labels, { limit: 50 });
    assert.deepEqual(many.map((p) => p.label), labels);
    const reframed = await connect(sample.url).dataset(TABLE).getPointsMany(labels, { limit: 50 });
    many.forEach((p, i) => assert.deepEqual(p.int64, reframed[i].int64));
  });

  test("an unknown label, an edge-layout dataset and a bad mode are errors", async () => {
    await assert.rejects(table().getPoints("12345"), (e) => e instanceof PocaduckError && e.status === 404 && e.code === "not_found");
    const edge = connect(sample.url).dataset(SAMPLE, { vastdb: "pass-through" });
    await assert.rejects(edge.getPoints("722817260"), (e) => e instanceof PocaduckError && e.status === 404 && /no VastDB reply/.test(e.message));
    assert.throws(() => connect(sample.url).dataset(TABLE, { vastdb: "raw" }), TypeError);
  });

  test("a page cut short is an error, not fewer points", async () => {
    // A fetch that delivers only the first half of each page's body.
    const cut = async (url, init) => {
      const r = await fetch(url, init);
      const bytes = new Uint8Array(await r.arrayBuffer());
      return new Response(bytes.slice(0, bytes.length >> 1), { status: r.status, headers: r.headers });
    };
    await assert.rejects(table({ fetch: cut }).getPoints("722817260"), (e) => e instanceof PocaduckError && e.code === "decode" && /truncated/.test(e.message));
  });
});

describe("serverless footers", () => {
  test("loads that need the same footer fetch it once, and one aborted does not fail the other", async () => {
    const manifest = await (await fetch(`${sampleFiles()}manifest.json`)).json();
    const { path, footer } = manifest.files[0];
    const footerRange = `bytes=${footer.offset}-${footer.offset + footer.length - 1}`;
    const isFooter = (r) => r.url.endsWith(path) && r.range === footerRange;
    const labels = ["722817260", "754534424"];

    // Two loads at once on a fresh dataset: one footer request between them.
    const together = recordingFetch(30);
    const d = await openDataset(sampleFiles(), { fetch: together.fetch });
    const both = await Promise.all(labels.map((l) => d.getPoints(l)));
    assert.equal(together.log.requests.filter(isFooter).length, 1, JSON.stringify(together.log.requests));
    for (const [i, l] of labels.entries()) assert.deepEqual(both[i].int64, await npy(SAMPLE, l));

    // The load that started the footer's fetch is aborted while it is in flight: the other
    // load, which waits on the same footer, fetches it again and succeeds.
    const aborted = recordingFetch(30);
    const controller = new AbortController();
    const abortAtFirstFooter = (url, init) => {
      const r = { url: String(url), range: init?.headers?.Range };
      if (isFooter(r) && !controller.signal.aborted) setTimeout(() => controller.abort(), 0);
      return aborted.fetch(url, init);
    };
    const e = await openDataset(sampleFiles(), { fetch: abortAtFirstFooter });
    await e.getPointCount(labels[0]); // the index page, so both loads go straight to the data
    const first = e.getPoints(labels[0], { signal: controller.signal });
    const second = e.getPoints(labels[1]);
    await assert.rejects(first, { name: "AbortError" });
    assert.deepEqual((await second).int64, await npy(SAMPLE, labels[1]));
    assert.equal(aborted.log.requests.filter(isFooter).length, 2, JSON.stringify(aborted.log.requests));
  });
});

describe("aborts", () => {
  /**
   * A fetch whose bodies, once `stall.on`, give their first chunk and then never another
   * nor an end, whatever the signal does: as a fetch implementation's may after an abort.
   */
  function stallingFetch() {
    const stall = { on: false };
    const f = async (url, init = {}) => {
      const real = await fetch(url, init);
      if (!stall.on) return real;
      const reader = real.body.getReader();
      let sent = false;
      const body = new ReadableStream({
        async pull(controller) {
          if (sent) return new Promise(() => {});
          sent = true;
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
      });
      return new Response(body, { status: real.status, headers: real.headers });
    };
    return { fetch: f, stall };
  }

  for (const mode of ["proxy", "serverless"]) {
    test(`an abort ends a ${mode} load whose body read never settles`, { timeout: 10_000 }, async () => {
      const { fetch: f, stall } = stallingFetch();
      const d = mode === "proxy"
        ? await connect(server.url, { fetch: f }).dataset("extreme")
        : await openDataset(`${server.url}/v1/datasets/extreme/files/`, { fetch: f });
      stall.on = true;
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      const [label, rows] = [...EXTREME][0];
      await assert.rejects(d.getPoints(label, { signal: controller.signal }), { name: "AbortError" });
      // Nothing is left waiting on the stalled read: the next load is answered.
      stall.on = false;
      const p = await d.getPoints(label);
      assert.equal(p.count, rows.length);
    });
  }
});

describe("server errors", () => {
  test("carry the server's message and status", async () => {
    const c = connect(server.url);
    await assert.rejects(c.dataset("nope").getPoints(1), (e) => e.status === 404 && /nope/.test(e.message));
    // A 5xx says one generic line, and names the request whose details the server logged.
    await assert.rejects(c.dataset("broken").info(), (e) => e.status === 503 && e.code === "dataset_unavailable"
      && /dataset broken is unavailable/.test(e.message) && !/manifest/.test(e.message) && /^[0-9a-f]{16}$/.test(e.requestId));
    const list = await c.datasets();
    assert.equal(list.find((d) => d.name === "broken").status, "unavailable");
    assert.equal(list.find((d) => d.name === "extreme").status, "ok");
  });

  test("a serverless dataset with a broken manifest or a missing folder fails to open", async () => {
    await assert.rejects(openDataset(`${server.url}/v1/datasets/broken/files/`), (e) => e instanceof PocaduckError);
    await assert.rejects(openDataset(`${server.url}/v1/datasets/nope/files/`), (e) => e.status === 404);
  });

  test("a corrupt footer fails the loads that need it, and only until it reads right", async () => {
    const manifest = await (await fetch(`${sampleFiles()}manifest.json`)).json();
    const { path, footer } = manifest.files[0];
    let corrupt = true;
    const corrupting = async (url, init) => {
      const r = await fetch(url, init);
      const range = `bytes=${footer.offset}-${footer.offset + footer.length - 1}`;
      if (!corrupt || !String(url).endsWith(path) || init?.headers?.Range !== range) return r;
      const bytes = new Uint8Array(await r.arrayBuffer()).map((b) => b ^ 0x5a);
      return new Response(bytes, { status: r.status, headers: r.headers });
    };
    const d = await openDataset(sampleFiles(), { fetch: corrupting });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(d.getPoints("722817260"), (e) => e instanceof PocaduckError && e.code === "bad_file" && e.message.includes(path));
    }
    assert.equal(await d.getPointCount("722817260"), (await npy(SAMPLE, "722817260")).length / 3);
    corrupt = false;
    const p = await d.getPoints("722817260");
    assert.deepEqual(p.int64, await npy(SAMPLE, "722817260"));
  });

  test("a file whose ETag changes mid-read is an error, not mixed data", async () => {
    let n = 0;
    const changing = async (url, init) => {
      const r = await fetch(url, init);
      n += 1;
      const headers = new Headers(r.headers);
      if (n > 3 && headers.has("ETag")) headers.set("ETag", '"changed"');
      return new Response(r.body, { status: r.status, headers });
    };
    const d = await openDataset(sampleFiles(), { fetch: changing });
    await assert.rejects(d.getPoints("722817260"), (e) => e.code === "etag_changed");
  });
});

describe("decoders", () => {
  test("decodeArrow and decodeParquet read the server's answers exactly", async () => {
    const base = `${server.url}/v1/datasets/extreme/points`;
    const body = JSON.stringify({ labels: [...EXTREME.keys()].map(String) });
    for (const [format, decode] of [["arrow", decodeArrow], ["arrow&shape=columns", decodeArrow], ["parquet", decodeParquet]]) {
      const r = await fetch(`${base}?format=${format}`, { method: "POST", body });
      const decoded = await decode(await r.arrayBuffer());
      assert.deepEqual(decoded.map((p) => p.label), [...EXTREME.keys()].map(String));
      for (const p of decoded) {
        assert.deepEqual(p.int64, await npy("extreme", p.label));
        assertRecentred(p);
      }
      const [positionsOnly] = await decode(await (await fetch(`${base}?format=${format}`, { method: "POST", body })).arrayBuffer(), { int64: false });
      assert.equal(positionsOnly.int64.length, 0);
      assert.deepEqual(positionsOnly.positions, decoded[0].positions);
    }
  });

  test("decoders write into the caller's arrays in either Arrow shape and Parquet", async () => {
    const base = `${server.url}/v1/datasets/extreme/points`;
    const body = JSON.stringify({ labels: [...EXTREME.keys()].map(String) });
    for (const [format, decode] of [["arrow", decodeArrow], ["arrow&shape=columns", decodeArrow], ["parquet", decodeParquet]]) {
      const bytes = await (await fetch(`${base}?format=${format}`, { method: "POST", body })).arrayBuffer();
      const fresh = await decode(bytes.slice(0));
      const total = fresh.reduce((n, p) => n + p.count, 0);
      const int64 = new BigInt64Array(total * 3);
      const positions = new Float32Array(total * 3);
      const into = await decode(bytes, { int64, positions });
      assert.deepEqual(into.map((p) => [p.int64, p.positions]), fresh.map((p) => [p.int64, p.positions]));
      assert.deepEqual(int64, BigInt64Array.from(fresh.flatMap((p) => Array.from(p.int64))));
      assert.ok(into.every((p) => p.positions.buffer === positions.buffer && p.int64.buffer === int64.buffer));
      await assert.rejects(decode(bytes, { int64: int64.subarray(1) }), RangeError);
    }
  });

  test("decodeArrow reads a one-label answer of shape=columns, whose label is in its metadata", async () => {
    for (const label of EXTREME.keys()) {
      const r = await fetch(`${server.url}/v1/datasets/extreme/labels/${label}/points?shape=columns`);
      const [decoded, ...rest] = await decodeArrow(await r.arrayBuffer());
      assert.equal(rest.length, 0);
      assert.equal(decoded.label, String(label));
      assert.deepEqual(decoded.int64, await npy("extreme", decoded.label));
      assertRecentred(decoded);
    }
  });

  /**
   * An answer that names its points' bounds (`pocaduck_edge:bbox`: D minima, then D
   * maxima), as served and with those bounds rewritten in place to the same length: wrong
   * (a decoder's pass finds them out and makes a second), and unreadable. `[what, bytes]`.
   */
  const withNamedBounds = (bytes, bbox, label) => {
    const named = [...bbox.min, ...bbox.max].join(",");
    const at = Buffer.from(bytes).indexOf(named);
    assert.ok(at > 0, `${label}: the answer names its bounds`);
    const rewritten = (text) => {
      const copy = bytes.slice();
      copy.set(new TextEncoder().encode(text), at);
      return copy;
    };
    return [
      ["as served", bytes],
      ["wrong bounds", rewritten(named.replace(/[0-9]/g, "1"))],
      ["unreadable bounds", rewritten(named.replace(/[0-9]/g, "x"))],
    ];
  };

  test("decodeArrow reads a one-label int32 columns answer in place, and checks the bounds it names", async () => {
    const labels = (await (await fetch(`${sample.url}/v1/datasets/${SAMPLE}/labels`)).json()).labels;
    assert.ok(labels.length >= 3);
    for (const label of labels) {
      const points = `${sample.url}/v1/datasets/${SAMPLE}/labels/${label}/points`;
      const bytes = new Uint8Array(await (await fetch(`${points}?shape=columns`)).arrayBuffer());
      // The general decoder's reading of the rows answer, and the exact values.
      const [rows] = await decodeArrow(await (await fetch(points)).arrayBuffer());
      const exact = await npy(SAMPLE, label);
      assert.deepEqual(rows.int64, exact);
      const same = (p, what) => {
        assert.deepEqual([p.positions, p.origin, p.bbox], [rows.positions, rows.origin, rows.bbox], `${label}: ${what}`);
      };
      for (const [what, input] of [
        ...withNamedBounds(bytes, rows.bbox, label),
        // Bytes not 4-aligned in their buffer: decoded by the general decoder.
        ["unaligned", (() => { const b = new Uint8Array(bytes.length + 1); b.set(bytes, 1); return b.subarray(1); })()],
      ]) {
        const [p] = await decodeArrow(input);
        assert.equal(p.label, label);
        assert.deepEqual(p.int64, exact, `${label}: ${what}`);
        same(p, what);
        const [positionsOnly] = await decodeArrow(input, { int64: false, positions: new Float32Array(p.count * 3) });
        same(positionsOnly, `${what}, positions only`);
        const [int64Only] = await decodeArrow(input, { positions: false });
        assert.deepEqual([int64Only.int64, int64Only.bbox], [exact, rows.bbox], `${label}: ${what}, int64 only`);
      }
      assertRecentred(rows);
    }
  });

  test("decodeParquet re-centres a one-label answer in one pass with the bounds it names, and checks them", async () => {
    const labels = (await (await fetch(`${sample.url}/v1/datasets/${SAMPLE}/labels`)).json()).labels;
    for (const label of labels) {
      const points = `${sample.url}/v1/datasets/${SAMPLE}/labels/${label}/points`;
      const bytes = new Uint8Array(await (await fetch(`${points}?format=parquet`)).arrayBuffer());
      const [rows] = await decodeArrow(await (await fetch(points)).arrayBuffer());
      const exact = await npy(SAMPLE, label);
      for (const [what, input] of withNamedBounds(bytes, rows.bbox, label)) {
        const [p] = await decodeParquet(input);
        assert.deepEqual(p.int64, exact, `${label}: ${what}`);
        const [positionsOnly] = await decodeParquet(input, { int64: false, positions: new Float32Array(p.count * 3) });
        for (const q of [p, positionsOnly]) {
          assert.deepEqual([q.positions, q.origin, q.bbox], [rows.positions, rows.origin, rows.bbox], `${label}: ${what}`);
        }
      }
    }
  });

  test("garbage and cut answers are errors", async () => {
    await assert.rejects(decodeArrow(new TextEncoder().encode("not arrow")), PocaduckError);
    await assert.rejects(decodeParquet(new TextEncoder().encode("PAR1 nope PAR1")), PocaduckError);
    const r = await fetch(`${sample.url}/v1/datasets/${SAMPLE}/labels/9007199254740993/points?format=arrow`);
    const whole = new Uint8Array(await r.arrayBuffer());
    await assert.rejects(decodeArrow(whole.subarray(0, whole.length - 8)), /cut short/);
    await assert.rejects(decodeArrow(whole.subarray(0, whole.length >> 1)), PocaduckError);
    await assert.rejects(decodeArrow(42), TypeError);
  });
});

// A server under an access configuration (docs/security.md): `extreme` needs a token or a
// signed URL, `coarse` is public. Credentials are made with node:crypto
// (tests/support/access.mjs), not by the code under test.
describe("datasets that need a credential", () => {
  const TOKEN = "js-client-token-0123456789";
  let guarded;
  before(async () => {
    const config = {
      datasets: {
        extreme: { tokens: [hashToken(TOKEN)], signing_keys: [{ id: "k1", secret_hex: SECRET_HEX }] },
        coarse: { access: "public" },
      },
    };
    await writeFile(join(work, "access.json"), JSON.stringify(config));
    guarded = await serve(["--access", join(work, "access.json"), "--data", join(work, "extreme"), "--data", join(work, "coarse")]);
  });
  after(async () => {
    await guarded?.stop();
  });
  const files = () => `${guarded.url}/v1/datasets/extreme/files/`;
  const prefixed = (expires = Math.floor(Date.now() / 1000) + 600) =>
    signedQuery(SECRET_HEX, "k1", { prefix: "/v1/datasets/extreme/", expires });
  /** The points of every label of `extreme`, as the open server gives them. */
  async function golden() {
    const open = connect(server.url).dataset("extreme");
    return Promise.all([...EXTREME.keys()].map(async (l) => Array.from((await open.getPoints(l)).int64)));
  }
  async function all(d) {
    return Promise.all([...EXTREME.keys()].map(async (l) => Array.from((await d.getPoints(l)).int64)));
  }
  const refusal = (status, code, why) => (e) => {
    assert.ok(e instanceof PocaduckError, String(e));
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    assert.match(e.message, why);
    return true;
  };

  test("without a credential, the public datasets alone are listed and the others are 401", async () => {
    const client = connect(guarded.url);
    assert.deepEqual((await client.datasets()).map((d) => d.name), ["coarse"]);
    await assert.rejects(client.dataset("extreme").getLabels(), refusal(401, "unauthorized", /needs a credential/));
    await assert.rejects(client.dataset("extreme").getPoints(1n), refusal(401, "unauthorized", /needs a credential/));
    await assert.rejects(openDataset(files()), refusal(401, "unauthorized", /needs a credential/));
  });

  test("a wrong or expired credential is a 403 saying why", async () => {
    const wrong = connect(guarded.url, { token: "wrong-token-0123456789" }).dataset("extreme");
    await assert.rejects(wrong.getLabels(), refusal(403, "forbidden", /bearer token does not grant/));
    const expired = connect(`${guarded.url}/?${prefixed(1)}`).dataset("extreme");
    await assert.rejects(expired.getLabels(), refusal(403, "forbidden", /expired at 1 /));
    const elsewhere = signedQuery(SECRET_HEX, "k1", { prefix: "/v1/datasets/coarse/", expires: 4102444800 });
    await assert.rejects(openDataset(`${files()}?${elsewhere}`), refusal(403, "forbidden", /does not cover this path/));
  });

  test("a token reads the dataset through the server and from its files", async () => {
    const expected = await golden();
    const client = connect(guarded.url, { token: TOKEN });
    assert.deepEqual((await client.datasets()).map((d) => d.name), ["extreme", "coarse"]);
    assert.deepEqual(await all(client.dataset("extreme")), expected);
    assert.deepEqual(await all(await openDataset(files(), { token: TOKEN })), expected);
  });

  test("a signed prefix URL goes on every request, ranges of /files included", async () => {
    const expected = await golden();
    const { fetch: recording, log } = recordingFetch();
    const query = prefixed();
    const proxy = connect(`${guarded.url}/?${query}`, { fetch: recording }).dataset("extreme");
    assert.deepEqual(await all(proxy), expected);
    const labels = [...EXTREME.keys()];
    const many = await proxy.getPointsMany(labels);
    assert.deepEqual(many.map((p) => Array.from(p.int64)), expected);
    assert.equal((await proxy.getLabels()).labels.length, EXTREME.size);
    assert.equal(await proxy.getPointCount(labels[0]), EXTREME.get(labels[0]).length);
    const serverless = await openDataset(`${files()}?${query}`, { fetch: recording });
    assert.deepEqual(await all(serverless), expected);
    assert.ok(log.requests.some((r) => r.range), "ranges were read");
    for (const r of log.requests) assert.ok(r.url.endsWith(query), r.url);
  });
});
