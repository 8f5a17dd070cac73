#!/usr/bin/env bash
# Neuroglancer in Chromium over our annotation source (bench/js/neuroglancer.mjs): builds the
# debug server, installs Chromium when missing and the test virtualenv (neuroglancer's
# viewer), then prints the tables bench/README.md keeps.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/ensure-chromium.sh
cargo build --locked -p pocaduck-edge
tests/python/setup_venv.sh
exec node bench/js/neuroglancer.mjs "$@"
