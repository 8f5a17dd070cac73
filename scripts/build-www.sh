#!/usr/bin/env bash
# Assembles the viewer into a servable folder (default dist/www): www/, three.js and its
# OrbitControls from node_modules/three, and the pocaduck-edge package (js/, with the wasm
# glue in js/pkg/ built by scripts/build-wasm.sh) under pocaduck-edge/.
#   scripts/build-www.sh [OUT_DIR]
source "$(dirname "$0")/env.sh"
cd "$ROOT"
OUT="${1:-$ROOT/dist/www}"

ensure_node_modules
# Incremental: cargo rebuilds only what changed, and wasm-opt's output is cached.
bash scripts/build-wasm.sh

# Built aside and swapped in, so a server reading OUT never sees half a site.
mkdir -p "$(dirname "$OUT")"
NEXT="$(mktemp -d "$(dirname "$OUT")/.www-next.XXXXXX")"
trap 'rm -rf "$NEXT"' EXIT
cp -R www/. "$NEXT/"
mkdir -p "$NEXT/vendor/addons/controls" "$NEXT/pocaduck-edge/pkg"
cp node_modules/three/build/three.module.js "$NEXT/vendor/"
# three.module.js imports the shared core from ./three.core.js (three ≥ 0.169).
if grep -q "three.core.js" node_modules/three/build/three.module.js; then
  cp node_modules/three/build/three.core.js "$NEXT/vendor/"
fi
cp node_modules/three/examples/jsm/controls/OrbitControls.js "$NEXT/vendor/addons/controls/"
cp node_modules/three/LICENSE "$NEXT/vendor/three-LICENSE"
# The package keeps its shape (index.js imports ./pkg/), as npm would install it.
cp js/*.js js/*.d.ts js/package.json "$NEXT/pocaduck-edge/"
cp js/pkg/pocaduck_edge_wasm.js js/pkg/pocaduck_edge_wasm_bg.wasm "$NEXT/pocaduck-edge/pkg/"
chmod -R a+rX "$NEXT"

rm -rf "$OUT.old"
if [ -e "$OUT" ]; then mv "$OUT" "$OUT.old"; fi
mv "$NEXT" "$OUT"
rm -rf "$OUT.old"
trap - EXIT
echo "viewer built in $OUT"
