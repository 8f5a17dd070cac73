// Where a WebAssembly module of the package comes from: its URL, or in Node (whose fetch
// does not read files) its bytes. Each caller names its module with a literal
// `new URL("./pkg/…", import.meta.url)`, the form bundlers recognise and ship as an asset.

/** What to load the module at `url` from, unless the caller gave `wasm`. */
export async function wasmInput(url, wasm) {
  if (wasm !== undefined) return wasm;
  if (url.protocol !== "file:") return url;
  // Node: fetch() does not read files. Hidden from bundlers, which never take this path.
  const fs = "node:fs/promises";
  const { readFile } = await import(/* @vite-ignore */ /* webpackIgnore: true */ fs);
  return readFile(url);
}
