// The output options of a decode (`Outputs` in index.d.ts): checked before anything is
// fetched or moved, a caller's arrays cut into one view per run, and their buffers listed
// for a move to or from a worker. Shared by the main module and both sides of the worker.

/**
 * Checks the output options: each of `int64` and `positions` is a boolean (build a new array,
 * or skip it) or a caller's `BigInt64Array` / `Float32Array` to write into.
 */
export function checkOutputs(want) {
  for (const [name, type] of [["int64", BigInt64Array], ["positions", Float32Array]]) {
    const v = want[name];
    if (v !== undefined && typeof v !== "boolean" && !(v instanceof type)) {
      throw new TypeError(`${name} must be a boolean or a ${type.name} to write into`);
    }
  }
}

/**
 * Where each run's outputs go: with a caller's array, consecutive views of it, one per run of
 * `counts` points (refused before anything is written when the array is too short); without
 * one, `null` (a new array per run).
 */
export function outputSlots(want, counts, dims) {
  const cut = (array, per, name) => {
    if (!ArrayBuffer.isView(array)) return null;
    const total = counts.reduce((s, n) => s + n, 0);
    if (array.length < total * per) {
      throw new RangeError(`${name} holds ${array.length} values; the answer needs ${total * per} (${total} points × ${per})`);
    }
    let at = 0;
    return counts.map((n) => array.subarray(at, (at += n * per)));
  };
  return { int64: cut(want.int64, dims, "int64"), positions: cut(want.positions, 3, "positions") };
}

/** The buffers of a caller's output arrays in `outputs`, each once (to transfer them). */
export function outputBuffers(outputs) {
  return [...new Set([outputs.int64, outputs.positions].filter(ArrayBuffer.isView).map((a) => a.buffer))];
}
