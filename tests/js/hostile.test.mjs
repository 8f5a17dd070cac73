// The npm package's decoders over the kept hostile answers (crates/core/tests/hostile/): each
// is a PocaduckError, also those on which the WebAssembly module traps (a panic inside the
// Parquet crate, which the module's build turns into an abort), and a good answer decodes
// right after each, on the module restarted after the trap.

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { Int64, Uint64, makeTable, tableToIPC, vectorFromArray } from "apache-arrow";
import * as parquetWasm from "parquet-wasm";

import { PocaduckError, decodeArrow, decodeParquet } from "../../js/index.js";

const HOSTILE = fileURLToPath(new URL("../../crates/core/tests/hostile/", import.meta.url));

/** The kept inputs of fuzz target `target`: name and bytes. */
async function kept(target) {
  const dir = join(HOSTILE, target);
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (name) => [name, new Uint8Array(await readFile(join(dir, name)))]));
}

/** A good Parquet answer: label 7 and three int64 dims over 100 points. */
function goodAnswer() {
  const n = 100;
  const dim = (k) => vectorFromArray(BigInt64Array.from({ length: n }, (_, i) => BigInt(i * k - 50)), new Int64());
  const table = makeTable({
    label: vectorFromArray(BigUint64Array.from({ length: n }, () => 7n), new Uint64()),
    x: dim(1),
    y: dim(-3),
    z: dim(5),
  });
  return parquetWasm.writeParquet(parquetWasm.Table.fromIPCStream(tableToIPC(table, "stream")));
}

async function assertGoodDecodes(good, after) {
  const [p, ...rest] = await decodeParquet(good);
  assert.equal(rest.length, 0, after);
  assert.equal(p.label, "7", after);
  assert.equal(p.count, 100, after);
  assert.deepEqual(Array.from(p.int64.subarray(0, 6)), [-50n, -50n, -50n, -49n, -53n, -45n], after);
}

test("the kept Parquet answers are PocaduckErrors, a trap among them, and the next decode works", async () => {
  const good = goodAnswer();
  await assertGoodDecodes(good, "before");
  let traps = 0;
  for (const [name, bytes] of await kept("decode_parquet")) {
    const outcome = await decodeParquet(bytes).then(
      () => null,
      (e) => e,
    );
    assert.ok(outcome instanceof PocaduckError, `${name}: ${outcome}`);
    assert.equal(outcome.code, "decode", name);
    if (name.startsWith("panic-")) {
      assert.match(outcome.message, /malformed bytes stopped the WebAssembly decoder.*restarted/, name);
      traps += 1;
    }
    await assertGoodDecodes(good, `after ${name}`);
  }
  assert.ok(traps >= 2, `${traps} kept answers trap the module`);
});

test("the kept Arrow answers are PocaduckErrors, and the next decode works", async () => {
  const good = goodAnswer();
  for (const [name, bytes] of await kept("decode_arrow")) {
    await assert.rejects(decodeArrow(bytes), PocaduckError, name);
    await assertGoodDecodes(good, `after ${name}`);
  }
});
