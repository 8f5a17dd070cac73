#!/usr/bin/env bash
# Copies a dataset folder (made by `pocaduck-edge sample` or `pocaduck-edge import`) into an
# R2 bucket with wrangler, one object per file, under PREFIX (default: the folder's name):
#   scripts/seed-r2.sh DATASET_DIR BUCKET [PREFIX] [--local [--persist-to DIR]]
# Without --local it writes to the bucket on Cloudflare (after `npx wrangler login`); with it,
# to the bucket `wrangler dev` uses on this machine. The Worker serves it as
# `r2://BINDING/PREFIX` in DATASETS (wrangler.toml).
source "$(dirname "$0")/env.sh"
usage() { sed -n 2,7p "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
dir="${1%/}" bucket="$2"
shift 2
prefix="$(basename "$dir")"
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then prefix="${1%/}"; shift; fi
where=(--remote)
if [ "${1:-}" = "--local" ]; then where=("$@"); elif [ $# -gt 0 ]; then usage; fi
[ -f "$dir/manifest.json" ] || { echo "$dir has no manifest.json: not a dataset folder" >&2; exit 1; }
cd "$ROOT"
ensure_node_modules
cd "$dir"
find . -type f | sed 's|^\./||' | sort | while read -r file; do
  echo "$bucket/$prefix/$file"
  "$ROOT/node_modules/.bin/wrangler" r2 object put "$bucket/$prefix/$file" --file "$file" "${where[@]}" >/dev/null
done
