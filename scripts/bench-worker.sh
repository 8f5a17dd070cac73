#!/usr/bin/env bash
# The Worker against the native server on the same requests (bench/worker.mjs): builds the
# release binaries and the Worker, then prints the table bench/README.md keeps.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ensure_node_modules
cargo build --locked --release -p pocaduck-edge -p vastdb-emulator
bash scripts/build-worker.sh
exec node bench/worker.mjs "$@"
