#!/usr/bin/env bash
# End-to-end checks of a running test bed (after testbed/up.sh). Exits non-zero on
# the first failure. Uses a throw-away buildx builder and cache dir.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$ROOT/testbed.env"

fail() { printf 'selftest: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'selftest: ok: %s\n' "$*"; }
run() { local what="$1"; shift; local out; out="$("$@" 2>&1)" || { printf '%s\n' "$out" >&2; fail "$what"; }; ok "$what: $(printf '%s' "$out" | tail -n 1)"; }

run "docker run base image" "$TESTBED_DOCKER" run --rm "$TESTBED_BASE_IMAGE" echo hi
run "buildctl debug workers" "$TESTBED_BUILDCTL" --addr "$BUILDKIT_HOST" debug workers
run "docker buildx version" "$TESTBED_DOCKER" buildx version
[[ -n "$TESTBED_COMPOSE_V2" ]] && run "compose v2" "$TESTBED_COMPOSE_V2" version --short || printf 'selftest: WARNING: TESTBED_COMPOSE_V2 is empty\n' >&2
[[ -n "$TESTBED_COMPOSE_V5" ]] && run "compose v5" "$TESTBED_COMPOSE_V5" version --short || printf 'selftest: WARNING: TESTBED_COMPOSE_V5 is empty\n' >&2
run "compose v1" "$TESTBED_COMPOSE_V1" version --short
run "devcontainer docker CLI" "$TESTBED_DOCKER" run --rm "$TESTBED_DEVCONTAINER_BASE" docker --version
run "devcontainer buildx" "$TESTBED_DOCKER" run --rm "$TESTBED_DEVCONTAINER_BASE" docker buildx version
run "devcontainer as retro" "$TESTBED_DOCKER" run --rm -u retro -w /home/retro/work "$TESTBED_DEVCONTAINER_BASE" sh -c 'id -u; pwd; touch x'
# docker inside a container, as a non-root uid, through the bind-mounted socket
sock="${DOCKER_HOST#unix://}"
run "docker-in-container as uid 1000" "$TESTBED_DOCKER" run --rm -u 1000 -v "$sock:/var/run/docker.sock" "$TESTBED_DEVCONTAINER_BASE" docker version --format '{{.Server.Version}}'
bk="${BUILDKIT_HOST#unix://}"
run "buildctl socket reachable by uid 1000" "$TESTBED_DOCKER" run --rm -u 1000 -v "$bk:/run/buildkitd.sock" "$TESTBED_DEVCONTAINER_BASE" \
  sh -c 'docker buildx create --name in --driver remote unix:///run/buildkitd.sock >/dev/null && docker buildx inspect --bootstrap in | grep -i "buildkit version"'

# What the product does: remote builder + local cache export + --load.
name="tbselftest$$"
tmp="$(mktemp -d)"
trap '"$TESTBED_DOCKER" buildx rm "$name" >/dev/null 2>&1 || true; "$TESTBED_DOCKER" rmi "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
run "buildx create remote" "$TESTBED_DOCKER" buildx create --name "$name" --driver remote "$BUILDKIT_HOST"
printf 'FROM %s\nRUN echo hi > /hi\n' "$TESTBED_BASE_IMAGE" >"$tmp/Dockerfile"
run "buildx build --cache-to local --load" "$TESTBED_DOCKER" buildx build --builder "$name" \
  --cache-to "type=local,dest=$tmp/cache,mode=max" --load -t "$name" "$tmp"
[[ -f "$tmp/cache/index.json" ]] || fail "no $tmp/cache/index.json after --cache-to"
run "loaded image runs" "$TESTBED_DOCKER" run --rm "$name" cat /hi
ok "all checks passed"
