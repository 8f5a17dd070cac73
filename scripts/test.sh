#!/usr/bin/env bash
# Runs every test: Rust unit and HTTP tests, the wasm32 check of core, vastdb, read, proxy and
# the Worker, the npm package (its types, and the client against the real server and the Worker
# in Node), the Worker in workerd, the viewer in headless Chromium, the reference test against
# the real PoCADuck package, and the official VastDB SDK against the emulator.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ensure_wasm_toolchain
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# The crates a Worker or a browser links, checked and linted for wasm32 (no code generated:
# the npm package's build below generates the browser's).
cargo clippy --locked --target wasm32-unknown-unknown -p pocaduck-edge-core \
  -p pocaduck-edge-ipc-check -p pocaduck-edge-vastdb -p pocaduck-edge-read -p pocaduck-edge-proxy \
  -p pocaduck-edge-worker \
  -- -D warnings
# The HTTP tests start both binaries.
cargo build --locked -p pocaduck-edge -p vastdb-emulator
cargo test --locked --workspace
# The API conformance suite again, through the VastDB backend over the emulator, in each layout.
for layout in columnar pocaduck; do
  POCADUCK_EDGE_VASTDB_LAYOUT=$layout cargo test --locked -p pocaduck-edge --test tests api::
done
# The npm package: build it, check its declarations, run it against the real server and the
# Worker.
bash scripts/build-wasm.sh
bash scripts/build-worker.sh
node_modules/.bin/tsc -p tests/js/tsconfig.json
node --test tests/js/
# The Worker in workerd, against the native server, the emulator and the conformance suite.
node --test --test-concurrency=1 tests/worker/
# The viewer in Chromium (the site is built from the package above).
bash scripts/test-browser.sh
tests/python/setup_venv.sh
POCADUCK_EDGE_BIN="$CARGO_TARGET_DIR/debug/pocaduck-edge" \
VASTDB_EMULATOR_BIN="$CARGO_TARGET_DIR/debug/vastdb-emulator" \
  "$ROOT/.venv/bin/python" -m pytest tests/python -q
