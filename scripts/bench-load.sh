#!/usr/bin/env bash
# The load benchmark (bench/load.py): the release server under 1 to 512 connections beside
# Debian's nginx serving the same files, a soak and slowloris; prints bench/README.md's tables.
# Installs wrk and nginx (apt, as root) when missing. Arguments go to bench/load.py.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    # The package starts nginx on port 80; the benchmark runs its own.
    service nginx stop >/dev/null 2>&1 || true
  else
    echo "the load benchmark needs ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
cargo build --locked --release -p pocaduck-edge
exec python3 bench/load.py "$@"
