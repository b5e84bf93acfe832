#!/usr/bin/env bash
# Context upload through the FileSync sender: a 5,000-file / 200 MB context against the test bed's buildkitd and
# dockerd, for several DATA chunk sizes (KiB list as $1, default 32,64,128,256); prints wall time and RSS.
# Needs `make testbed`. Runs under Node: under Bun 1.4.5 the session's HTTP/2 server stalls intermittently when
# the daemon raises its window mid-transfer (see the filesync report), which would measure the stall, not us.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
source "$root/testbed.env"
bundle=$(mktemp --suffix=.mjs)
trap 'rm -f "$bundle"' EXIT
"$root/node_modules/.bin/bun" build "$root/bench/filesync/bench.ts" --target=node --outfile "$bundle" >/dev/null
node "$bundle" "$@"
