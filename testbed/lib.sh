# shellcheck shell=bash
# Shared helpers for testbed/up.sh and testbed/down.sh. Sourced, never executed.

TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TESTBED_DIR/.." && pwd)"

# ---- pinned versions (change here; the cache is keyed by these) -------------
BUILDKIT_VERSION=v0.32.2
BUILDKIT_REVISION=991535e0973488b6a429096d21fa13f81f2d89d8
BUILDX_VERSION=v0.36.1
BUILDX_REVISION=1d8dde89b8aba914e05e45366770736fea1fd690
COMPOSE_V2_VERSION=v2.40.3
COMPOSE_V5_VERSION=v5.5.0
# Bump when a build recipe below changes, so old cache entries are not reused.
RECIPE_REV=r1

# ---- locations ----------------------------------------------------------------
CACHE="${SHIM_TESTBED_CACHE:-/var/cache/shim-testbed}"
STATE="${SHIM_TESTBED_STATE:-/var/lib/shim-testbed}"
RUN="${SHIM_TESTBED_RUN:-/run/shim-testbed}"
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_URL="http://$REGISTRY_ADDR"

DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
REGISTRY_BIN=/usr/bin/docker-registry
COMPOSE_V1=/usr/bin/docker-compose
BUSYBOX=/bin/busybox
GO="${SHIM_TESTBED_GO:-/usr/local/go/bin/go}"

DOCKER_SOCK="$RUN/docker.sock"
BUILDKIT_SOCK="$RUN/buildkitd.sock"
DOCKER_HOST_URL="unix://$DOCKER_SOCK"
BUILDKIT_HOST_URL="unix://$BUILDKIT_SOCK"

BUILDKIT_BIN_DIR="$CACHE/bin/buildkit-$BUILDKIT_VERSION-$RECIPE_REV"
BUILDX_BIN_DIR="$CACHE/bin/buildx-$BUILDX_VERSION-$RECIPE_REV"
COMPOSE_V2_BIN_DIR="$CACHE/bin/compose-$COMPOSE_V2_VERSION-$RECIPE_REV"
COMPOSE_V5_BIN_DIR="$CACHE/bin/compose-$COMPOSE_V5_VERSION-$RECIPE_REV"
BUILDCTL="$BUILDKIT_BIN_DIR/buildctl"
BUILDKITD="$BUILDKIT_BIN_DIR/buildkitd"
BUILDX_CACHED="$BUILDX_BIN_DIR/docker-buildx"
BUILDX_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-buildx

IMAGE_REPO_BASE="$REGISTRY_ADDR/shim-testbed/busybox"
IMAGE_REPO_DEV="$REGISTRY_ADDR/shim-testbed/devcontainer-base"

# Debian's tools live in /usr/sbin and /sbin too (iptables, runc, containerd).
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

# ---- output -------------------------------------------------------------------
_now() { date +%s.%N; }
_elapsed() { awk -v a="$1" -v b="$(_now)" 'BEGIN { printf "%.1fs", b - a }'; }

# say <component> <message>: one progress/summary line on stdout
say() { printf 'testbed: %-18s %s\n' "$1:" "$2"; }
warn() { printf 'testbed: WARNING: %s\n' "$*" >&2; }

# die <component> <why> [logfile...]: one line, then the tail of each log, exit 1
die() {
  local comp="$1" why="$2"; shift 2
  printf 'testbed: %s: %s\n' "$comp" "$why" >&2
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      printf -- '----- last lines of %s -----\n' "$f" >&2
      tail -n 40 "$f" >&2
      printf -- '-----\n' >&2
    fi
  done
  exit 1
}

# ---- processes ------------------------------------------------------------------
# pid_alive <pidfile> <expected-exe-basename>: the pidfile names a live process
# whose executable is the expected one (guards against recycled pids).
pid_alive() {
  local pidfile="$1" exe="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' < "$pidfile")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local path
  path="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1 # zombie or gone
  path="${path% (deleted)}"                                      # binary replaced/removed since start
  [[ "${path##*/}" == "$exe" ]]
}

pid_of() { tr -dc '0-9' < "$1"; }

# stop_pidfile <component> <pidfile> <exe> [timeout-seconds]
stop_pidfile() {
  local comp="$1" pidfile="$2" exe="$3" timeout="${4:-20}" pid i
  if ! pid_alive "$pidfile" "$exe"; then
    rm -f "$pidfile"
    say "$comp" "not running"
    return 0
  fi
  pid="$(pid_of "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$comp (pid $pid) did not stop within ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
  say "$comp" "stopped (pid $pid)"
}
