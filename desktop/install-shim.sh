#!/bin/sh
# Puts the shim in front of the real docker CLI and compose plugin inside a dev-container image.
# Usage: install-shim.sh [PATH_TO_SHIM_BINARY]   (default: ./shim). Idempotent.
set -eu
src=${1:-./shim}
if [ ! -x "$src" ]; then
  echo "install-shim: $src is not an executable shim binary" >&2
  exit 1
fi
if [ "$(readlink -f "$src")" != /usr/local/bin/shim ]; then
  mkdir -p /usr/local/bin
  cp "$src" /usr/local/bin/shim.new && chmod 0755 /usr/local/bin/shim.new && mv /usr/local/bin/shim.new /usr/local/bin/shim
fi
/usr/local/bin/shim install
/usr/local/bin/shim version
