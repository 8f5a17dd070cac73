#!/usr/bin/env bash
# Builds the npm package's WebAssembly half into js/pkg/, the main module and the VastDB
# pass-through module that only pass-through clients load: cargo (profile `wasm`), the
# wasm-bindgen CLI of the exact version the crate pins, then binaryen's wasm-opt from npm
# (-O1 and no names section: most of -O3's gain at a fraction of its minutes). Each module
# exports `__wbg_reset_state`, with which the client replaces an instance that trapped.
# Every tool comes from crates.io or npm and is installed only when missing.
#   --profiling DIR  also writes the package (js/ with its pkg/) to DIR with the same code and the
#                    names section kept, so profilers name the wasm functions.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ensure_wasm_toolchain
ensure_wasm_bindgen
ensure_node_modules
cargo build --locked --profile wasm --target wasm32-unknown-unknown -p pocaduck-edge-wasm \
  -p pocaduck-edge-wasm-vastdb
PKG=js/pkg
rm -rf "$PKG"
for module in pocaduck_edge_wasm pocaduck_edge_wasm_vastdb; do
  "$WASM_BINDGEN" --target web --experimental-reset-state-function --out-dir "$PKG" \
    --out-name "$module" "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm/$module.wasm"
done
if [ "${1:-}" = "--profiling" ]; then
  profiling="${2:?--profiling needs a directory}"
  rm -rf "$profiling"
  mkdir -p "$profiling"
  cp js/*.js js/*.d.ts js/package.json "$profiling/"
  mkdir "$profiling/pkg"
  for module in pocaduck_edge_wasm pocaduck_edge_wasm_vastdb; do
    cp "$PKG/$module.js" "$profiling/pkg/"
    wasm_opt_cached "$PKG/${module}_bg.wasm" "$profiling/pkg/${module}_bg.wasm" --debuginfo
  done
fi
for module in pocaduck_edge_wasm pocaduck_edge_wasm_vastdb; do
  wasm_opt_cached "$PKG/${module}_bg.wasm" "$PKG/${module}_bg.wasm" --strip-debug
done
rm -f "$PKG/.gitignore" "$PKG/package.json"
