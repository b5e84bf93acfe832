#!/usr/bin/env bash
# `make demo`: the main job on the embedded test bed. It puts the shim in front of docker in a scratch prefix,
# then plays a dev-container session whose daemon lives outside the container:
#   1. docker through the shim is indistinguishable from docker;
#   2. inside a dev container, `docker run -v /home/retro/work/…` shows the host's files (translated bind mount);
#   3. a build in session A fills the shared cache; session B, on a BuildKit with empty state, reports CACHED.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
source "$root/testbed.env"

demo=$(mktemp -d /tmp/shim-demo.XXXXXX)
bk2_pid=
cleanup() {
  [ -n "$bk2_pid" ] && kill "$bk2_pid" 2>/dev/null && wait "$bk2_pid" 2>/dev/null || true
  "$TESTBED_DOCKER" rmi -f shim-demo/app:latest shim-demo/devcontainer:latest >/dev/null 2>&1 || true
  rm -rf "$demo"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Install the shim in front of docker (scratch prefix $demo/prefix)"
mkdir -p "$demo/prefix/bin"
ln -s "$TESTBED_DOCKER" "$demo/prefix/bin/docker"
"$root/dist/shim" install --prefix "$demo/prefix"
export PATH="$demo/prefix/bin:$PATH"
echo "docker is now: $(command -v docker) -> $(readlink "$demo/prefix/bin/docker")"

step "1. Passthrough: the same answers as the real CLI"
docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}'
docker run --rm "$TESTBED_BASE_IMAGE" sh -c 'echo "hello from a container"; exit 3' || echo "exit status passed through: $?"

step "2. A dev container whose daemon is outside: bind mounts are translated"
mkdir -p "$demo/workspace/data"
echo "this file lives on the daemon's host" > "$demo/workspace/data/hello.txt"
bash "$root/desktop/build-image.sh" shim-demo/devcontainer:latest "$TESTBED_DEVCONTAINER_BASE" "$TESTBED_DOCKER" >/dev/null
socket=${DOCKER_HOST#unix://}
"$TESTBED_DOCKER" run --rm -v "$socket:/var/run/docker.sock" -v "$demo/workspace:/home/retro/work" \
  -e SHIM_DEBUG=1 shim-demo/devcontainer:latest \
  sh -c "cd /home/retro/work && docker run --rm -v ./data:/data $TESTBED_BASE_IMAGE cat /data/hello.txt" 2>&1 |
  sed 's/^/  [dev container] /'

step "3. Shared BuildKit cache across sessions"
mkdir -p "$demo/cache" "$demo/app"
# The RUN line names this demo run, so session A really starts cold on a BuildKit that built it before.
cat > "$demo/app/Dockerfile" <<EOF
FROM $TESTBED_BASE_IMAGE
RUN echo "compiling ${demo##*.} for 5 seconds" && sleep 5 && echo built > /artifact
EOF
export SHIM_CACHE_DIR="$demo/cache"
echo "-- session A (BuildKit at $BUILDKIT_HOST)"
start=$(date +%s%N)
DOCKER_CONFIG="$demo/session-a" docker build --progress=plain -t shim-demo/app:latest "$demo/app" 2>&1 | grep -E 'RUN|CACHED|shim' || true
echo "   took $(( ($(date +%s%N) - start) / 1000000 )) ms; cache keys now: $(ls "$demo/cache" | tr '\n' ' ')"

"$TESTBED_BUILDKITD" --root "$demo/bk2-state" --addr "unix://$demo/bk2.sock" --config "$TESTBED_STATE/buildkitd.toml" >"$demo/bk2.log" 2>&1 &
bk2_pid=$!
for _ in $(seq 100); do "$TESTBED_BUILDCTL" --addr "unix://$demo/bk2.sock" debug workers >/dev/null 2>&1 && break; sleep 0.2; done
echo "-- session B (a fresh BuildKit with empty state at unix://$demo/bk2.sock)"
start=$(date +%s%N)
BUILDKIT_HOST="unix://$demo/bk2.sock" DOCKER_CONFIG="$demo/session-b" docker build --progress=plain -t shim-demo/app:latest "$demo/app" 2>&1 | grep -E 'RUN|CACHED|shim' || true
echo "   took $(( ($(date +%s%N) - start) / 1000000 )) ms"
docker run --rm shim-demo/app:latest cat /artifact

step "Done: the shim was invisible except where it had to act."
