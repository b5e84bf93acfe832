#!/usr/bin/env bash
# Prints the passthrough overhead ratios (shim vs real docker CLI). Needs `make build` and `make testbed`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
source "$root/testbed.env"
exec "$root/node_modules/.bin/bun" "$root/bench/passthrough/bench.ts"
