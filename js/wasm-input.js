// Where a WebAssembly module of the package comes from: its URL next to this file, or in
// Node (whose fetch does not read files) its bytes.

/** What `pkg/<file>` is loaded from, unless the caller gave `wasm`. */
export async function wasmInput(file, wasm) {
  if (wasm !== undefined) return wasm;
  const url = new URL(`./pkg/${file}`, import.meta.url);
  if (url.protocol !== "file:") return url;
  // Node: fetch() does not read files. Hidden from bundlers, which never take this path.
  const fs = "node:fs/promises";
  const { readFile } = await import(/* @vite-ignore */ /* webpackIgnore: true */ fs);
  return readFile(url);
}
