# Shared by the npm scripts: where cargo builds, and the idempotent installs they need.
# Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pocaduck-edge/target}"

# Installs the wasm32 target (core and proxy must build for it) and clang (zstd's C code
# for wasm32 needs a compiler that targets it), each only when missing.
ensure_wasm_toolchain() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi
  if ! command -v clang >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq clang >/dev/null
    else
      echo "clang is needed to build zstd for wasm32: install it (e.g. sudo apt-get install clang)" >&2
      return 1
    fi
  fi
}

# Sets the variable named $1 to the CLI $2 of the crates.io crate $3 at exactly version $4,
# whose `--version` prints the line $5: the one on PATH when it is that version, else one
# installed into the target dir's tools/ (a debug build: a minute or two to compile instead of
# several on 2 cores, for tools that do little work). Further arguments go to `cargo install`.
ensure_cargo_tool() {
  local var="$1" bin="$2" crate="$3" version="$4" line="$5"
  shift 5
  local path="$bin"
  if ! "$path" --version 2>/dev/null | grep -qx "$line"; then
    local tools="$CARGO_TARGET_DIR/tools"
    path="$tools/bin/$bin"
    if ! "$path" --version 2>/dev/null | grep -qx "$line"; then
      cargo install --debug --root "$tools" --target-dir "$tools/build" "$@" "$crate" --version "$version"
      rm -rf "$tools/build"
    fi
  fi
  printf -v "$var" '%s' "$path"
}

# The wasm-bindgen CLI must match the `wasm-bindgen` crate exactly (crates/wasm pins it); its
# build is a second more per run than a release one's, with the same output. Sets
# WASM_BINDGEN. (Installed without --locked: a dependency version the CLI locks is missing
# from the index.)
WASM_BINDGEN_VERSION=0.2.130
ensure_wasm_bindgen() {
  ensure_cargo_tool WASM_BINDGEN wasm-bindgen wasm-bindgen-cli "$WASM_BINDGEN_VERSION" \
    "wasm-bindgen $WASM_BINDGEN_VERSION"
}

# worker-build, which builds the Worker (crates/worker). Sets WORKER_BUILD.
WORKER_BUILD_VERSION=0.8.7
ensure_worker_build() {
  ensure_cargo_tool WORKER_BUILD worker-build worker-build "$WORKER_BUILD_VERSION" \
    "$WORKER_BUILD_VERSION" --locked
}

# The npm dev dependencies (binaryen's wasm-opt, typescript, the browser test's driver, the
# benchmark's peers), installed from package-lock.json when node_modules is missing or stale.
ensure_node_modules() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
}

# wasm-opt of $1 into $2 with the further flags $3…, from a cache keyed by the input's hash
# and the flags (the optimiser takes minutes; the cargo build before it is incremental).
wasm_opt_cached() {
  local flags=(-O1 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue "${@:3}")
  local key
  key="$( (sha256sum < "$1"; echo "${flags[*]}") | sha256sum | cut -c1-32)"
  local cached="$CARGO_TARGET_DIR/wasm-opt-cache/$key.wasm"
  if [ ! -f "$cached" ]; then
    mkdir -p "$(dirname "$cached")"
    "$ROOT/node_modules/.bin/wasm-opt" "${flags[@]}" "$1" -o "$cached.tmp"
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" "$2"
}
