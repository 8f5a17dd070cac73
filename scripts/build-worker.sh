#!/usr/bin/env bash
# Builds the Worker (crates/worker) into crates/worker/build/ with worker-build: cargo
# (profile `worker`: the npm package's `wasm`, with Parquet and zstd built for size), the
# pinned wasm-bindgen CLI, binaryen's wasm-opt and esbuild from npm. Every tool is local, so the build needs no network; each is
# installed only when missing. `wrangler.toml` runs this before `wrangler dev` and `deploy`.
# The names section worker-build keeps is dropped after it: a fifth of the module, it names
# the wasm functions in a panic's stack, and would take the Worker past 1 MB gzipped.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ensure_wasm_toolchain
ensure_wasm_bindgen
ensure_worker_build
ensure_node_modules
cd crates/worker
WASM_BINDGEN_BIN="$(command -v "$WASM_BINDGEN")" \
WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt" \
ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild" \
  "$WORKER_BUILD" --profile worker
# The features worker-build enables, named one by one: binaryen would otherwise write newer
# encodings (e.g. compact imports) that workerd does not read.
features=()
for feature in mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue \
  reference-types exception-handling simd; do
  features+=("--enable-$feature")
done
"$ROOT/node_modules/.bin/wasm-opt" --strip-debug "${features[@]}" build/index_bg.wasm -o build/index_bg.wasm
