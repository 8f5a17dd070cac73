#!/usr/bin/env bash
# Fuzzes the decoders of hostile bytes and the request parsers (fuzz/: cargo-fuzz, libFuzzer,
# on the nightly toolchain) for FUZZ_SECONDS each (default 600), from corpora seeded with real
# bytes (scripts/fuzz-seeds.mjs), and prints per target the seconds run, the executions and
# the crashes (libFuzzer stops a target at its first crash; the input is kept under
# $CARGO_TARGET_DIR/fuzz/artifacts/TARGET/). FUZZ_TARGETS names some targets (space-separated)
# instead of all; FUZZ_FORK=1 runs them in libFuzzer's fork mode, which records each crash and
# goes on (for a target whose dependency panics on inputs it keeps finding). Not part of
# `npm test`. Built with overflow checks and without a sanitizer (no unsafe code of ours to
# check; the executions go further).
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
read -r -a targets <<< "${FUZZ_TARGETS:-manifest index_page points_plan decode_parquet decode_arrow vastdb_reply vastdb_metadata request access}"
out="$CARGO_TARGET_DIR/fuzz"

ensure_cargo_tool CARGO_FUZZ cargo-fuzz cargo-fuzz "$CARGO_FUZZ_VERSION" \
  "cargo-fuzz $CARGO_FUZZ_VERSION" --locked
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
# The seeds: the sample and the server's answers over it, once.
if [ ! -d "$out/seeds" ]; then
  cargo build --locked -p pocaduck-edge
  node scripts/fuzz-seeds.mjs "$out/seeds.tmp"
  mv "$out/seeds.tmp" "$out/seeds"
fi
fuzz=("$CARGO_FUZZ" fuzz)
build_flags=(--release --debug-assertions --sanitizer none --target-dir "$out/target")
RUSTUP_TOOLCHAIN=nightly nice "${fuzz[@]}" build "${build_flags[@]}"

fork=()
if [ "${FUZZ_FORK:-0}" = 1 ]; then fork=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1); fi
rows=()
for target in "${targets[@]}"; do
  corpus="$out/corpus/$target" artifacts="$out/artifacts/$target" log="$out/logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  if [ -d "$out/seeds/$target" ]; then cp -n "$out/seeds/$target/"* "$corpus/"; fi
  before=$(find "$artifacts" -type f | wc -l)
  start=$(date +%s)
  RUSTUP_TOOLCHAIN=nightly nice "${fuzz[@]}" run "${build_flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${fork[@]}" > "$log" 2>&1 || true
  seconds=$(($(date +%s) - start))
  # The last status line (`#N ...`) counts the executions, also when a crash ended the run.
  executions=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  crashes=$(($(find "$artifacts" -type f | wc -l) - before))
  rows+=("| \`$target\` | $seconds | ${executions:-0} | $crashes |")
  echo "$target: ${seconds} s, ${executions:-0} executions, $crashes crashes (log: $log)" >&2
done
echo "| target | seconds | executions | crashes |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
