// The decode benchmark's contestants and harness, shared by Node and the browser page
// (decode.mjs serves this file to Chromium): no Node or DOM API here, only what both have.
//
// Every contestant turns the same answer bytes into the same two outputs:
//   float32 — N × 3 Float32Array, each value minus the integer centre of the bbox
//             (trunc((min + max) / 2), as the wasm decoder computes it);
//   int64   — N × 3 BigInt64Array, row-major, exact.
// Ours is the npm package (decodeParquet / decodeArrow); the peers are parquet-wasm (→ Arrow
// IPC → apache-arrow), hyparquet, and apache-arrow's zero-copy IPC reader, each followed by
// the fastest honest JS we could write (typed arrays, no BigInt in the hot loops). Each
// peer's output is checked bit for bit against ours: a mismatch throws.

/** Little-endian check: the int64 writers below store low word then high word. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------
// JS re-centring and interleaving of per-axis int32 chunks (Parquet peers)

/**
 * `axes[k]` is a list of `{ start, values }` chunks of dim k (int32 typed arrays, `start`
 * the first row). Returns `{ lo, hi }` per axis.
 */
function boundsOfAxes(axes) {
  const lo = [], hi = [];
  for (const chunks of axes) {
    let a = Infinity, b = -Infinity;
    for (const { values } of chunks) {
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v < a) a = v;
        if (v > b) b = v;
      }
    }
    lo.push(a);
    hi.push(b);
  }
  return { lo, hi };
}

/** The origin the wasm decoder uses: trunc((min + max) / 2), per axis (exact for int32). */
function originOf(lo, hi) {
  const o = new Float64Array(3);
  for (let k = 0; k < Math.min(3, lo.length); k++) o[k] = lo[k] === Infinity ? 0 : Math.trunc((lo[k] + hi[k]) / 2);
  return o;
}

/** Re-centred float32 positions, into `target` when given (N × 3 long), else a new array. */
function float32FromAxes(axes, n, target) {
  const { lo, hi } = boundsOfAxes(axes);
  const origin = originOf(lo, hi);
  const out = target ?? new Float32Array(n * 3);
  for (let k = 0; k < 3; k++) {
    const o = origin[k];
    for (const { start, values } of axes[k]) {
      let j = start * 3 + k;
      for (let i = 0; i < values.length; i++, j += 3) out[j] = values[i] - o;
    }
  }
  return { positions: out, origin };
}

function int64FromAxes(axes, n) {
  if (!LITTLE_ENDIAN) throw new Error("the int64 writer assumes a little-endian platform");
  const out = new BigInt64Array(n * 3);
  const w = new Int32Array(out.buffer);
  for (let k = 0; k < 3; k++) {
    for (const { start, values } of axes[k]) {
      let j = (start * 3 + k) * 2;
      for (let i = 0; i < values.length; i++, j += 6) {
        const v = values[i];
        w[j] = v;
        w[j + 1] = v >> 31;
      }
    }
  }
  return { int64: out };
}

/**
 * An int64 column chunk as int32 when every value fits (the low words, checked against the
 * high words); `null` when one does not (the caller then takes the BigInt path).
 */
function narrowInt64(values) {
  const w = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
  const out = new Int32Array(values.length);
  let bad = 0;
  for (let i = 0, j = 0; i < values.length; i++, j += 2) {
    const v = w[j];
    bad |= w[j + 1] ^ (v >> 31);
    out[i] = v;
  }
  return bad ? null : out;
}

/** Per-axis chunks → int32 chunks; an int64 column beyond int32 is refused (not in our data). */
function int32Axes(axes) {
  return axes.map((chunks) =>
    chunks.map(({ start, values }) => {
      if (values instanceof Int32Array) return { start, values };
      if (values instanceof BigInt64Array) {
        const narrow = narrowInt64(values);
        if (narrow) return { start, values: narrow };
        throw new Error("an int64 coordinate beyond int32: the JS peers' BigInt path is not written");
      }
      throw new Error(`unexpected column chunk ${values?.constructor?.name}`);
    }),
  );
}

// ---------------------------------------------------------------------------------------
// The contestants

/** Our package: one call, the run of `label`; float32 into `target` when given. */
function ours(lib, label) {
  const one = (points) => {
    if (points.length !== 1 || points[0].label !== label) {
      throw new Error(`ours: expected one run of label ${label}, got ${points.map((p) => p.label)}`);
    }
    return points[0];
  };
  const calls = {
    parquetF32: async (bytes, target) => {
      const p = one(await lib.decodeParquet(bytes, { int64: false, positions: target ?? true }));
      return { positions: p.positions, origin: p.origin };
    },
    parquetI64: async (bytes) => ({ int64: one(await lib.decodeParquet(bytes, { positions: false })).int64 }),
    arrowF32: async (bytes, target) => {
      const p = one(await lib.decodeArrow(bytes, { int64: false, positions: target ?? true }));
      return { positions: p.positions, origin: p.origin };
    },
    arrowI64: async (bytes) => ({ int64: one(await lib.decodeArrow(bytes, { positions: false })).int64 }),
  };
  // The same calls read either Arrow shape.
  return { ...calls, columnsF32: calls.arrowF32, columnsI64: calls.arrowI64 };
}

/** Per-axis chunks of an apache-arrow Table's int32/int64 columns x, y, z. */
function axesOfTable(table, names) {
  return names.map((name) => {
    const column = table.getChild(name);
    if (!column) throw new Error(`no column ${name}`);
    let start = 0;
    return column.data.map((d) => {
      if (d.nullCount > 0) throw new Error(`column ${name} has nulls`);
      const values = d.values.subarray(d.offset, d.offset + d.length);
      const chunk = { start, values };
      start += d.length;
      return chunk;
    });
  });
}

/** parquet-wasm: readParquet → Table (wasm) → IPC stream → apache-arrow Table → JS. */
function parquetWasm(pw, arrow, names) {
  // parquet-wasm's default batch is 1024 rows (2342 record batches for 2.4 M points, 10× slower);
  // one batch per row group is its fastest setting here. It reads every column: its `columns`
  // option is ignored by readParquet 0.8.0.
  const table = (bytes) => arrow.tableFromIPC(pw.readParquet(bytes, { batchSize: 1 << 22 }).intoIPCStream());
  return {
    parquetF32: async (bytes, target) => {
      const t = table(bytes);
      return float32FromAxes(int32Axes(axesOfTable(t, names)), t.numRows, target);
    },
    parquetI64: async (bytes) => {
      const t = table(bytes);
      return int64FromAxes(int32Axes(axesOfTable(t, names)), t.numRows);
    },
  };
}

/** hyparquet: parquetRead with the coordinate columns, zstd by hyparquet-compressors (fzstd). */
function hyparquet(hyp, decompressZstd, names) {
  // fzstd into a buffer of the known size (faster than letting it grow one).
  const compressors = { ZSTD: (input, length) => decompressZstd(input, new Uint8Array(length)) };
  async function axes(bytes) {
    const file = bytes.buffer.byteLength === bytes.byteLength ? bytes.buffer : bytes.slice().buffer;
    const metadata = hyp.parquetMetadata(file);
    const byName = new Map(names.map((n) => [n, []]));
    await hyp.parquetRead({
      file,
      metadata,
      columns: names,
      compressors,
      onChunk: ({ columnName, columnData, rowStart }) => byName.get(columnName).push({ start: rowStart, values: columnData }),
    });
    return { axes: names.map((n) => byName.get(n)), n: Number(metadata.num_rows) };
  }
  return {
    parquetF32: async (bytes, target) => {
      const { axes: a, n } = await axes(bytes);
      return float32FromAxes(int32Axes(a), n, target);
    },
    parquetI64: async (bytes) => {
      const { axes: a, n } = await axes(bytes);
      return int64FromAxes(int32Axes(a), n);
    },
  };
}

/** The fixed_size_list<int64>[3] values of each record batch (zero-copy views). */
function pointBatches(table) {
  const column = table.getChild("points");
  if (!column) throw new Error("no points column");
  return column.data.map((d) => {
    if (d.type.listSize !== 3) throw new Error(`points are ${d.type}, expected 3 dims`);
    if (d.nullCount > 0) throw new Error("the points column has nulls");
    const child = d.children[0];
    const start = child.offset + d.offset * 3;
    return child.values.subarray(start, start + d.length * 3);
  });
}

/**
 * apache-arrow: tableFromIPC (zero-copy) → JS re-centring, or the values view itself; for
 * the `shape=columns` answer, its int32 column chunks re-centred or interleaved as the
 * Parquet peers' are.
 */
function apacheArrow(arrow, names) {
  const columns = (bytes) => {
    const t = arrow.tableFromIPC(bytes);
    return { axes: int32Axes(axesOfTable(t, names)), n: t.numRows };
  };
  return {
    columnsF32: async (bytes, target) => {
      const { axes, n } = columns(bytes);
      return float32FromAxes(axes, n, target);
    },
    columnsI64: async (bytes) => {
      const { axes, n } = columns(bytes);
      return int64FromAxes(axes, n);
    },
    arrowF32: async (bytes, target) => {
      const batches = pointBatches(arrow.tableFromIPC(bytes));
      let n = 0;
      // Pass 1: bounds from the low words, checking each high word is the sign of its low one.
      let x0 = Infinity, y0 = Infinity, z0 = Infinity, x1 = -Infinity, y1 = -Infinity, z1 = -Infinity, bad = 0;
      const words = batches.map((v) => new Int32Array(v.buffer, v.byteOffset, v.length * 2));
      for (const w of words) {
        n += w.length / 6;
        for (let j = 0; j < w.length; j += 6) {
          const x = w[j], y = w[j + 2], z = w[j + 4];
          bad |= (w[j + 1] ^ (x >> 31)) | (w[j + 3] ^ (y >> 31)) | (w[j + 5] ^ (z >> 31));
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
          if (z < z0) z0 = z;
          if (z > z1) z1 = z;
        }
      }
      if (bad) return bigintRecentre(batches, n);
      const origin = originOf([x0, y0, z0], [x1, y1, z1]);
      const [ox, oy, oz] = origin;
      const out = target ?? new Float32Array(n * 3);
      let i = 0;
      for (const w of words) {
        for (let j = 0; j < w.length; j += 6, i += 3) {
          out[i] = w[j] - ox;
          out[i + 1] = w[j + 2] - oy;
          out[i + 2] = w[j + 4] - oz;
        }
      }
      return { positions: out, origin };
    },
    arrowI64: async (bytes) => {
      const batches = pointBatches(arrow.tableFromIPC(bytes));
      if (batches.length === 1) return { int64: batches[0], zeroCopy: true };
      const out = new BigInt64Array(batches.reduce((s, b) => s + b.length, 0));
      let at = 0;
      for (const b of batches) {
        out.set(b, at);
        at += b.length;
      }
      return { int64: out, zeroCopy: false };
    },
  };
}

/** The exact path for values beyond int32 (slow; never taken on the bench data). */
function bigintRecentre(batches, n) {
  const lo = [null, null, null], hi = [null, null, null];
  for (const v of batches) {
    for (let i = 0; i < v.length; i++) {
      const k = i % 3;
      if (lo[k] === null || v[i] < lo[k]) lo[k] = v[i];
      if (hi[k] === null || v[i] > hi[k]) hi[k] = v[i];
    }
  }
  const o = lo.map((l, k) => (l === null ? 0n : (l + hi[k]) / 2n));
  const out = new Float32Array(n * 3);
  let i = 0;
  for (const v of batches) for (let j = 0; j < v.length; j++, i++) out[i] = Number(v[j] - o[i % 3]);
  return { positions: out, origin: Float64Array.from(o, Number), slowPath: true };
}

// ---------------------------------------------------------------------------------------
// Checks

function sameBits(a, b, what) {
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} values, ours has ${b.length}`);
  const x = new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
  const y = new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) {
      const per = x.length / a.length;
      const at = Math.floor(i / per);
      throw new Error(`${what}: value ${at} is ${a[at]}, ours is ${b[at]}: the outputs differ`);
    }
  }
}

/** Throws unless `out` equals `ref` exactly (float32 bits and origin, or int64). */
export function checkSame(out, ref, what) {
  if (ref.positions) {
    sameBits(out.positions, ref.positions, `${what} float32`);
    for (let k = 0; k < 3; k++) {
      if (out.origin[k] !== ref.origin[k]) throw new Error(`${what}: origin ${out.origin}, ours ${ref.origin}`);
    }
  } else {
    sameBits(out.int64, ref.int64, `${what} int64`);
  }
}

/** A 32-bit FNV-1a over the 32-bit words of a typed array (to compare runtimes' outputs). */
export function checksum(a) {
  const w = new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
  let h = 0x811c9dc5;
  for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

// ---------------------------------------------------------------------------------------
// Harness

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `warmup` untimed runs, then at least `minRuns` timed ones, more while under `budgetMs`. */
async function measure(fn, { warmup, minRuns, maxRuns, budgetMs }) {
  let out;
  for (let i = 0; i < warmup; i++) out = await fn();
  const times = [];
  const t0 = performance.now();
  while (times.length < minRuns || (times.length < maxRuns && performance.now() - t0 < budgetMs)) {
    out = null; // let the previous output go before the next run allocates
    const s = performance.now();
    out = await fn();
    times.push(performance.now() - s);
  }
  return { times, out };
}

/** The name of a task whose output goes into an array the caller gives. */
export const INTO = (task) => `${task}, into the caller's array`;

/**
 * Runs every contestant on `parquet`, `arrow` and (when given) `columns`, the Arrow answer in
 * `shape=columns` (Uint8Arrays over whole ArrayBuffers), of one label. `libs`: `{ ours: {decodeParquet, decodeArrow}, arrow: {tableFromIPC}, pw: {readParquet},
 * hyp: {parquetRead, parquetMetadata}, decompressZstd }`. Returns rows
 * `{task, contestant, medianMs, minMs, runs, count}`, checksums of our outputs, and `floors`:
 * the time to allocate a fresh output array of each kind and copy into it (`.slice()`), to
 * copy a float32 output into an existing array (`.set()`), and our Parquet decode with no
 * output (`parquetDecode`).
 */
export async function runSuite(libs, { parquet, arrow, columns, label, names = ["x", "y", "z"], warmup = 3, minRuns = 10, maxRuns = 40, budgetMs = 1500, log = () => {} }) {
  const contestants = {
    ours: ours(libs.ours, label),
    "parquet-wasm": parquetWasm(libs.pw, libs.arrow, names),
    hyparquet: hyparquet(libs.hyp, libs.decompressZstd, names),
    "apache-arrow": apacheArrow(libs.arrow, names),
  };
  const tasks = [
    { task: "Parquet → float32", key: "parquetF32", input: parquet },
    { task: "Parquet → int64", key: "parquetI64", input: parquet },
    { task: "Arrow IPC → float32", key: "arrowF32", input: arrow },
    { task: "Arrow IPC → int64", key: "arrowI64", input: arrow },
    { task: "Arrow IPC columns → float32", key: "columnsF32", input: columns },
    { task: "Arrow IPC columns → int64", key: "columnsI64", input: columns },
    // A viewer re-using its buffers: each contestant writes into an array it was given.
    { task: INTO("Parquet → float32"), key: "parquetF32", input: parquet, into: true },
    { task: INTO("Arrow IPC → float32"), key: "arrowF32", input: arrow, into: true },
    { task: INTO("Arrow IPC columns → float32"), key: "columnsF32", input: columns, into: true },
  ].filter((t) => t.input);
  const rows = [];
  const checksums = {};
  const floors = {};
  let count;
  for (const { task, key, input, into } of tasks) {
    const id = into ? `${key}Into` : key;
    let ref;
    for (const [name, c] of Object.entries(contestants)) {
      if (!c[key]) continue;
      // Each contestant its own array, so the check below compares two outputs.
      const target = into ? new Float32Array(count * 3) : undefined;
      const { times, out } = await measure(() => c[key](input, target), { warmup, minRuns, maxRuns, budgetMs });
      if (into && out.positions.buffer !== target.buffer) {
        throw new Error(`${name} ${task}: the output is not in the array given`);
      }
      const values = out.positions ?? out.int64;
      const n = values.length / 3;
      if (name === "ours") {
        ref = out;
        count ??= n;
        checksums[id] = checksum(values) + (out.origin ? `/${Array.from(out.origin).join(",")}` : "");
      } else {
        checkSame(out, ref, `${name} ${task}`);
      }
      if (n !== count) throw new Error(`${name} ${task}: ${n} points, expected ${count}`);
      const row = {
        task,
        contestant: name,
        medianMs: median(times),
        minMs: Math.min(...times),
        runs: times.length,
        count: n,
        zeroCopy: out.zeroCopy === true,
        slowPath: out.slowPath === true,
      };
      rows.push(row);
      log(`${task.padEnd(20)} ${name.padEnd(13)} median ${row.medianMs.toFixed(1)} ms over ${row.runs} runs`);
    }
    // The floor of any decoder that hands out a fresh array: allocate one and copy into it;
    // of one that writes into a given array: copy into it.
    if (id === "parquetF32" || id === "parquetI64") {
      const src = ref.positions ?? ref.int64;
      const { times } = await measure(async () => src.slice(), { warmup, minRuns, maxRuns, budgetMs: Math.min(budgetMs, 500) });
      floors[ref.positions ? "float32" : "int64"] = { medianMs: median(times), runs: times.length, bytes: src.byteLength };
    }
    if (id === "parquetF32Into") {
      const src = ref.positions.slice();
      const dst = new Float32Array(src.length);
      const { times } = await measure(async () => dst.set(src), { warmup, minRuns, maxRuns, budgetMs: Math.min(budgetMs, 500) });
      floors.float32Into = { medianMs: median(times), runs: times.length, bytes: src.byteLength };
      // The floor of our Parquet decoding itself: its pages decoded into columns in wasm,
      // then no output but the bounds.
      const decodeOnly = await measure(() => libs.ours.decodeParquet(input, { int64: false, positions: false }), { warmup, minRuns, maxRuns, budgetMs });
      floors.parquetDecode = { medianMs: median(decodeOnly.times), runs: decodeOnly.times.length };
    }
    // Our output of the other input must be the very same values.
    const parquetId = id.replace(/^(arrow|columns)/, "parquet");
    if (parquetId !== id && checksums[parquetId]) {
      const other = checksums[parquetId];
      if (other !== checksums[id]) throw new Error(`ours: ${task} differs from the Parquet decode (${checksums[id]} vs ${other})`);
    }
  }
  return { rows, checksums, count, floors };
}
