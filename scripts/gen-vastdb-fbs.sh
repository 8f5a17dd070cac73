#!/usr/bin/env bash
# Regenerates crates/vastdb/src/fbs/generated.rs from crates/vastdb/fbs/*.fbs with planus.
set -euo pipefail
cd "$(dirname "$0")/../crates/vastdb"
command -v planus >/dev/null || cargo install --locked planus-cli --version 1.3.0
planus rust -o src/fbs/generated.rs fbs/computeir.fbs fbs/tabular.fbs
