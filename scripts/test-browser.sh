#!/usr/bin/env bash
# The viewer's browser test: builds the debug server, the VastDB emulator and the site (dist/www), installs
# Chromium when missing, and runs tests/browser with node's test runner. Screenshots land in
# artifacts/.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/ensure-chromium.sh
cargo build --locked -p pocaduck-edge -p vastdb-emulator
bash scripts/build-www.sh "$ROOT/dist/www"
node --test --test-concurrency=1 tests/browser/viewer.test.mjs
