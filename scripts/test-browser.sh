#!/usr/bin/env bash
# The browser tests: builds the debug server, the VastDB emulator and the site (dist/www), installs
# Chromium when missing and the test virtualenv (neuroglancer's viewer), and runs the viewer's
# test and neuroglancer over our annotation source (tests/browser; screenshots land in
# artifacts/), then the npm package as Vite and webpack bundle it (tests/bundlers).
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/ensure-chromium.sh
cargo build --locked -p pocaduck-edge -p vastdb-emulator
bash scripts/build-www.sh "$ROOT/dist/www"
tests/python/setup_venv.sh
node --test --test-concurrency=1 tests/browser/viewer.test.mjs
node --test --test-concurrency=1 tests/browser/neuroglancer.test.mjs
node --test --test-concurrency=1 tests/bundlers/bundlers.test.mjs
