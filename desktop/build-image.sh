#!/usr/bin/env bash
# Builds the dev-container image: desktop/build-image.sh TAG BASE_IMAGE [DOCKER_CLI]
set -euo pipefail
tag=${1:?usage: build-image.sh TAG BASE_IMAGE [DOCKER_CLI]}
base=${2:?usage: build-image.sh TAG BASE_IMAGE [DOCKER_CLI]}
docker_cli=${3:-docker}
here=$(cd "$(dirname "$0")" && pwd)
shim="$here/../dist/shim"
[ -x "$shim" ] || { echo "build-image: $shim missing: run 'make build' first" >&2; exit 1; }
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$shim" "$here/install-shim.sh" "$here/Dockerfile" "$context/"
# The classic builder needs no BuildKit features here and works on every daemon.
DOCKER_BUILDKIT=0 "$docker_cli" build -q --build-arg "BASE_IMAGE=$base" -t "$tag" "$context" >/dev/null
echo "$tag"
