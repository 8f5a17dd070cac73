#!/usr/bin/env bash
# The viewer in Chromium (bench/js/viewer.mjs): builds the debug server and the site, installs
# Chromium when missing, then prints the tables bench/README.md keeps.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/ensure-chromium.sh
# Both packages, as the browser tests build them: the same features, so no rebuild.
cargo build --locked -p pocaduck-edge -p vastdb-emulator
bash scripts/build-www.sh "$ROOT/dist/www"
exec node bench/js/viewer.mjs "$@"
