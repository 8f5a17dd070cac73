#!/usr/bin/env bash
# Runs the Worker locally with `wrangler dev` (workerd, offline) over the bundled sample, both
# ways the Worker reads: from the local R2 bucket (seeded with scripts/seed-r2.sh --local) and
# as a VastDB table on a local emulator, whose endpoint and keys it writes to .dev.vars
# (git-ignored; wrangler reads secrets from it). Extra arguments go to `wrangler dev`.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo build --locked -p pocaduck-edge -p vastdb-emulator
bin="$CARGO_TARGET_DIR/debug"
dev="$ROOT/.wrangler/pocaduck-edge-dev"
sample="$dev/hemibrain-da1"
[ -f "$sample/manifest.json" ] || "$bin/pocaduck-edge" sample "$sample"
bash scripts/seed-r2.sh "$sample" pocaduck-edge --local

# The emulator, stopped with this script; fresh keys each run.
access_key="DEV$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
secret_key="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
coproc EMULATOR { exec "$bin/vastdb-emulator" --data "$dev/emulator" --access-key "$access_key" --secret-key "$secret_key"; }
trap 'kill "$EMULATOR_PID" 2>/dev/null || true' EXIT
read -r line <&"${EMULATOR[0]}"
endpoint="${line#listening on }"
VASTDB_ACCESS_KEY="$access_key" VASTDB_SECRET_KEY="$secret_key" "$bin/pocaduck-edge" vastdb load \
  "$sample" --endpoint "$endpoint" --bucket pocaduck --schema dev --table hemibrain_da1_vast --layout pocaduck
umask 077
cat > .dev.vars <<VARS
DATASETS="r2://DATA/hemibrain-da1"
VASTDB_ENDPOINT="$endpoint"
VASTDB_BUCKET="pocaduck"
VASTDB_SCHEMA="dev"
VASTDB_TABLE="hemibrain_da1_vast"
VASTDB_LAYOUT="pocaduck"
VASTDB_ACCESS_KEY="$access_key"
VASTDB_SECRET_KEY="$secret_key"
VARS
WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false \
  node_modules/.bin/wrangler dev --local --ip 127.0.0.1 --port 8787 "$@"
