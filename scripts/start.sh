#!/usr/bin/env bash
# Builds pocaduck-edge and serves the bundled hemibrain sample (built on first run).
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo build --release -p pocaduck-edge
exec "$CARGO_TARGET_DIR/release/pocaduck-edge" serve "$@"
