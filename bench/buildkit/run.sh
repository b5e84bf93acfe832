#!/usr/bin/env bash
# `shim build` vs `buildctl build` on the same (dedicated) buildkitd: a 5,000-file / 200 MB context, cold and
# warm (one file touched), with equivalent outputs. Prints median wall times and their ratio (target ≤ 1.0),
# the context upload rate and each client's peak RSS. The context lives in a temp dir removed afterwards.
# Needs `make build` and `make testbed`; BENCH_RUNS (default 3) sets the runs per tool and scenario.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
source "$root/testbed.env"
exec "$root/node_modules/.bin/bun" "$root/bench/buildkit/bench.ts" "$@"
