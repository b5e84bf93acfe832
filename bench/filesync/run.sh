#!/usr/bin/env bash
# Context upload through the FileSync sender: a 5,000-file / 200 MB context against the test bed's buildkitd and
# dockerd, for several DATA chunk sizes; prints wall time and peak RSS. Needs `make testbed`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
source "$root/testbed.env"
exec "$root/node_modules/.bin/bun" "$root/bench/filesync/bench.ts" "$@"
