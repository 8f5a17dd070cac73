#!/usr/bin/env bash
# The scale benchmark (bench/scale.py): the sample at the hemibrain's full 8 nm resolution,
# about a billion points, built once under ~/.cache/pocaduck-edge (about 30 minutes and 1 GB).
source "$(dirname "$0")/env.sh"
cd "$ROOT"
tests/python/setup_venv.sh
cargo build --locked --release -p pocaduck-edge
exec "$ROOT/.venv/bin/python" bench/scale.py "$@"
