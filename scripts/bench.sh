#!/usr/bin/env bash
# Runs the benchmark against the real PoCADuck (bench/run.py); prints the README's tables.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
tests/python/setup_venv.sh
exec "$ROOT/.venv/bin/python" bench/run.py "$@"
