#!/usr/bin/env bash
# Regenerates src/buildkit/proto/gen/ from defs/ (`make proto`). Offline: buf compiles the .proto files
# itself and runs the local protoc-gen-es; no remote plugins, no BSR dependencies.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$here"
export PATH="$root/node_modules/.bin:$PATH"
"$root/node_modules/.bin/buf" generate
