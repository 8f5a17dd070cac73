// Seeds the fuzz targets' corpora (fuzz/, run by scripts/bench-fuzz.sh) with real bytes: the
// sample dataset `pocaduck-edge sample` builds (its manifest, index pages, footers and points
// files), the server's Arrow and Parquet answers over it, the official VastDB SDK's captured
// traffic (crates/vastdb/tests/captures) and a request of each kind.
// Usage: node scripts/fuzz-seeds.mjs <dir>, which gets a folder of seeds per target.

import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { run, serve } from "../tests/support/server.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CAPTURES = join(ROOT, "crates/vastdb/tests/captures");
const out = process.argv[2];
if (!out) throw new Error("usage: node scripts/fuzz-seeds.mjs <dir>");

/** Writes seed `name` of `target`. */
async function put(target, name, bytes) {
  await mkdir(join(out, target), { recursive: true });
  await writeFile(join(out, target, name), bytes);
}

/** A byte range of `bytes` as the manifest gives it. */
const slice = (bytes, range) => bytes.subarray(range.offset, range.offset + range.length);

const work = await mkdtemp(join(tmpdir(), "pocaduck-edge-fuzz-seeds-"));
try {
  const data = join(work, "sample");
  await run(["sample", data, "--voxel-nm", "256"]);
  const manifestBytes = await readFile(join(data, "manifest.json"));
  const manifest = JSON.parse(manifestBytes);
  await put("manifest", "sample.json", manifestBytes);
  const index = await readFile(join(data, manifest.label_index.file.path));
  const pages = manifest.label_index.pages.map((p) => slice(index, p.range));
  for (const [i, page] of pages.entries()) await put("index_page", `page-${i}`, page);
  // The planner's input: a u32 length, an index page, then a points file's footer.
  const length = Buffer.alloc(4);
  length.writeUInt32LE(pages[0].length);
  const points = [...manifest.files, ...(manifest.coarse ?? [])];
  for (const [i, file] of points.entries()) {
    const bytes = await readFile(join(data, file.path));
    await put("points_plan", `file-${i}`, Buffer.concat([length, pages[0], slice(bytes, file.footer)]));
    if (bytes.length <= 1 << 17) await put("decode_parquet", `points-file-${i}`, bytes);
  }

  const server = await serve(["--data", data]);
  try {
    const base = `${server.url}/v1/datasets/sample`;
    const { labels } = await (await fetch(`${base}/labels?limit=3`)).json();
    // Small answers (a few thousand points at most): each execution decodes one whole.
    const answers = [
      ["decode_arrow", "format=arrow&limit=2000"],
      ["decode_arrow", "format=arrow&shape=columns&limit=2000"],
      ["decode_arrow", "format=arrow&limit=100"],
      ["decode_parquet", "format=parquet"],
      ["decode_parquet", "format=parquet&limit=100"],
    ];
    for (const label of labels) {
      for (const [target, query] of answers) {
        const answer = await fetch(`${base}/labels/${label}/points?${query}`);
        if (!answer.ok) throw new Error(`${label} ${query}: ${answer.status}`);
        await put(target, `${label}-${query.replace(/[=&]/g, "_")}`, Buffer.from(await answer.arrayBuffer()));
      }
    }
    for (const [target, format] of [["decode_arrow", "arrow"], ["decode_parquet", "parquet"]]) {
      const answer = await fetch(`${base}/points?format=${format}&limit=200`, {
        method: "POST",
        body: JSON.stringify({ labels }),
      });
      if (!answer.ok) throw new Error(`POST ${format}: ${answer.status}`);
      await put(target, `labels-${format}`, Buffer.from(await answer.arrayBuffer()));
    }
  } finally {
    await server.stop();
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

// VastDB: the captured reply of 4 sub-splits (first byte 0x30: PoCADuck's points list,
// 4 sub-splits, whole), a schema message and an insert body (Arrow IPC streams).
await put("vastdb_reply", "captured", Buffer.concat([Buffer.from([0x30]), await readFile(join(CAPTURES, "query_resp.bin"))]));
await put("vastdb_metadata", "columns", Buffer.concat([Buffer.from([0]), await readFile(join(CAPTURES, "create_table_req.bin"))]));
await put("vastdb_metadata", "rows", Buffer.concat([Buffer.from([1]), await readFile(join(CAPTURES, "insert_req.bin"))]));
await put("vastdb_metadata", "error", Buffer.from("\x05<Error><Code>SlowDown</Code><Message>a &amp; b</Message></Error>"));
await put("vastdb_metadata", "server", Buffer.from("\x06vast 5.4.0.0"));

// Requests: the first byte chooses the parser (fuzz_targets/request.rs).
const requests = [
  [0, "18446744073709551615"],
  [1 + 8 * 2, "format=npy&order=xyz&limit=10&bbox=0,0,0,5,5,5"],
  [1, "format=arrow&shape=columns"],
  [2, "after=9007199254740993&limit=10"],
  [3, "resume=1,2,3,4"],
  [4 + 8 * 10, "bytes=0-99"],
  [4 + 8 * 10, "bytes=-30"],
  [5, '{"labels": ["18446744073709551615", 7]}'],
  [6, '"0123456789abcdef", W/"x"'],
  [7 + 8 * 3, "1,2,3,281474976710655"],
];
for (const [i, [which, text]] of requests.entries()) {
  await put("request", `request-${i}`, Buffer.concat([Buffer.from([which]), Buffer.from(text)]));
}

// Access (fuzz_targets/access.rs): 0 and a configuration, or 1 and PATH \n QUERY \n
// AUTHORIZATION. The signed URLs are docs/security.md's worked example.
const access = [
  [0, '{"datasets": {"a": {"access": "public", "cors": ["*"]}}, "default": {"tokens": ["sha256:a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e"]}}'],
  [1, "/v1/datasets/secret-ds/labels\n\nBearer 0123456789abcdef"],
  [1, "/v1/datasets/secret-ds/labels/5/points\nformat=npy&bbox=0%2C0%2C0%2C10%2C10%2C10&expires=1700003600&kid=k1&sig=JMRiuVnFwxlAb6pXS2OfGIrTGYBdNFOFNbhpLPoq87Q"],
  [1, "/v1/datasets/secret-ds/labels\nexpires=1700003600&kid=k1&prefix=%2Fv1%2Fdatasets%2Fsecret-ds%2F&sig=nBm-Wx102_Td2XHNEfNGafivqw8X8rSig26_7BeBQP4"],
];
for (const [i, [which, text]] of access.entries()) {
  await put("access", `access-${i}`, Buffer.concat([Buffer.from([which]), Buffer.from(text)]));
}
