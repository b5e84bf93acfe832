#!/usr/bin/env bash
# Compose through the shim (issue #4 item 7): prints the overhead ratios of `compose ps` / `compose config`
# (standalone and `docker compose`, target <= 1.3) and cold vs warm `compose build` across sessions (target
# warm/cold <= 0.1). Needs `make build` and `make testbed`; runs as root (it starts a buildkitd). BENCH_RUNS
# (default 30) sets the runs per overhead case. Exits non-zero when a target is missed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
source "$root/testbed.env"
exec "$root/node_modules/.bin/bun" "$root/bench/compose/bench.ts" "$@"
