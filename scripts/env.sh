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
