#!/usr/bin/env bash
# Runs the benchmarks side by side with their peers: against the real PoCADuck (bench/run.py)
# and against the official VastDB SDK on the emulator (bench/vastdb_bench.py); prints the README's
# tables.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
tests/python/setup_venv.sh
"$ROOT/.venv/bin/python" bench/run.py "$@"
ensure_node_modules && node bench/js/decode.mjs  # the npm package's decoders vs parquet-wasm, hyparquet, apache-arrow
exec "$ROOT/.venv/bin/python" bench/vastdb_bench.py
