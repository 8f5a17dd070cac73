#!/usr/bin/env bash
# Builds pocaduck-edge and the VastDB emulator, and serves the bundled hemibrain sample (built
# on first run) from both backends: the edge layout, and a VastDB table on a local emulator.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo build --release -p pocaduck-edge -p vastdb-emulator
exec "$CARGO_TARGET_DIR/release/pocaduck-edge" serve --vastdb-emulator "$@"
