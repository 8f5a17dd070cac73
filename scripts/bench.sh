#!/usr/bin/env bash
# Runs the benchmarks side by side with their peers: against the real PoCADuck (bench/run.py),
# the npm package's decoders against parquet-wasm, hyparquet and apache-arrow in Node and
# Chromium (bench/js/decode.mjs), and against the official VastDB SDK on the emulator
# (bench/vastdb_bench.py); prints the README's tables.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
tests/python/setup_venv.sh
"$ROOT/.venv/bin/python" bench/run.py "$@"
ensure_node_modules
bash scripts/build-wasm.sh --profiling "$CARGO_TARGET_DIR/pkg-profiling"
bash scripts/ensure-chromium.sh
cargo build --locked --release -p pocaduck-edge
node bench/js/decode.mjs --profiling-package "$CARGO_TARGET_DIR/pkg-profiling"
exec "$ROOT/.venv/bin/python" bench/vastdb_bench.py
