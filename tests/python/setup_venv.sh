#!/usr/bin/env bash
# Creates .venv at the repository root with tests/python/requirements.txt, and reinstalls
# only when the requirements change (a stamp in .venv holds their hash).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
requirements="$root/tests/python/requirements.txt"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" > "$stamp"
