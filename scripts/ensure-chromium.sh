#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing ($CHROMIUM_BIN, by
# default /usr/bin/chromium): with apt-get as root, else says what to do.
set -euo pipefail
CHROMIUM="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$CHROMIUM" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium with apt-get for the browser tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "the browser tests need Chromium at $CHROMIUM: install it (Debian/Ubuntu: sudo apt-get install chromium) or point CHROMIUM_BIN at one" >&2
exit 1
