#!/usr/bin/env bash
# Builds pocaduck-edge, the VastDB emulator and the viewer (dist/www), and serves the bundled
# hemibrain sample (built on first run) from both backends: the edge layout, and a VastDB
# table on a local emulator. The viewer is at the server's root; the server prints its URL.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo build --profile start -p pocaduck-edge -p vastdb-emulator
bash scripts/build-www.sh "$ROOT/dist/www"
exec "$CARGO_TARGET_DIR/start/pocaduck-edge" serve --vastdb-emulator --www "$ROOT/dist/www" "$@"
