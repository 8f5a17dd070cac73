#!/usr/bin/env bash
# Builds pocaduck-edge, the VastDB emulator and the viewer (dist/www), and serves the bundled
# hemibrain sample (built on first run) from both backends: the edge layout, and a VastDB
# table on a local emulator. The viewer is at the server's root; the server prints its URL.
#
# The server is the debug build with optimised dependencies, the build `npm test` runs too,
# so neither command compiles the other's dependencies again; `cargo build --release` makes
# the server to deploy. It builds in the background while the viewer's WebAssembly does: on
# 2 cores each fills the other's single-threaded steps (linking, LTO, wasm-opt).
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo build --locked -p pocaduck-edge -p vastdb-emulator &
server_build=$!
trap 'kill "$server_build" 2>/dev/null || true' EXIT
bash scripts/build-www.sh "$ROOT/dist/www"
wait "$server_build"
trap - EXIT
exec "$CARGO_TARGET_DIR/debug/pocaduck-edge" serve --vastdb-emulator --www "$ROOT/dist/www" "$@"
