#!/usr/bin/env bash
# Shared build cache benchmark (issue #3 item 7). A Dockerfile whose cold time is dominated by RUN steps is built
# through the shim cold (session A, the test bed's buildkitd), then in a "second session": a second buildkitd with
# an empty --root, its own HOME/DOCKER_CONFIG and builder, sharing only the cache root. Prints cold s, warm s and
# warm/cold (target ≤ 0.1). Both builds are full `docker build -t … .` runs, --load into dockerd included.
# Needs `make build` and `make testbed`. Runs as root (it starts a buildkitd).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
source "$root/testbed.env"

work=$(mktemp -d /tmp/shim-bench-cache-XXXXXX)
chmod 755 "$work"
bkpid=
image="shim-bench-cache-$$"
cleanup() {
  if [[ -n "$bkpid" ]] && kill -0 "$bkpid" 2>/dev/null; then
    kill "$bkpid"
    for _ in $(seq 50); do kill -0 "$bkpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$bkpid" 2>/dev/null || true
  fi
  grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  DOCKER_HOST="$DOCKER_HOST" "$TESTBED_DOCKER" rmi -f "$image:cold" "$image:warm" "$image-prime:a" "$image-prime:b" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM HUP

mkdir -p "$work/bin" "$work/cache" "$work/ctx" "$work/prime" "$work/a" "$work/b" "$work/bk"
ln -s "$root/dist/shim" "$work/bin/docker"

# Three RUN steps standing in for compile steps: real work (generated files hashed) plus time spent.
nonce="$(date +%s%N)-$$"
cat >"$work/ctx/Dockerfile" <<EOF
FROM $TESTBED_BASE_IMAGE
RUN echo "nonce $nonce" > /nonce && mkdir /out && head -c 8000000 /dev/urandom > /out/one && sha256sum /out/one && sleep 6
RUN head -c 8000000 /dev/urandom > /out/two && sha256sum /out/one /out/two > /out/sums && sleep 6
RUN for i in \$(seq 1 200); do echo "unit \$i" > /out/unit-\$i.txt; done && tar -czf /out/units.tgz /out/unit-* && sleep 6
EOF
echo "$nonce" >"$work/prime/file"
printf 'FROM scratch\nCOPY file /file\n' >"$work/prime/Dockerfile"

cat >"$work/bk/buildkitd.toml" <<EOF
root = "$work/bk/root"
[grpc]
  address = ["unix://$work/bk/bk.sock"]
[worker.oci]
  enabled = true
[worker.containerd]
  enabled = false
[registry."$TESTBED_REGISTRY"]
  http = true
  insecure = true
EOF
setsid "$TESTBED_BUILDKITD" --config "$work/bk/buildkitd.toml" >"$work/bk/log" 2>&1 </dev/null &
bkpid=$!
for _ in $(seq 100); do
  "$TESTBED_BUILDCTL" --addr "unix://$work/bk/bk.sock" debug workers >/dev/null 2>&1 && break
  sleep 0.2
done
"$TESTBED_BUILDCTL" --addr "unix://$work/bk/bk.sock" debug workers >/dev/null || { cat "$work/bk/log" >&2; exit 1; }

# session <name> <buildkit host> <args…>: the shim as a dev-container session would run it
session() {
  local name=$1 host=$2
  shift 2
  env PATH="$work/bin:$PATH" SHIM_REAL_DOCKER="$TESTBED_DOCKER" DOCKER_HOST="$DOCKER_HOST" \
    HOME="$work/$name" DOCKER_CONFIG="$work/$name/.docker" XDG_CACHE_HOME="$work/$name/.cache" \
    SHIM_CACHE_DIR="$work/cache" BUILDKIT_HOST="$host" SHIM_BUILDER="shim-bench-$name-$$" \
    docker "$@"
}
now() { date +%s.%N; }

# Prime both sessions on another key (creates their builders, caches the CLI facts; pulls nothing: FROM scratch).
session a "$BUILDKIT_HOST" build -q -t "$image-prime:a" "$work/prime" >/dev/null
session b "unix://$work/bk/bk.sock" build -q -t "$image-prime:b" "$work/prime" >/dev/null

t0=$(now)
session a "$BUILDKIT_HOST" build --progress=plain -t "$image:cold" "$work/ctx" >"$work/cold.log" 2>&1 || { cat "$work/cold.log" >&2; exit 1; }
t1=$(now)
session b "unix://$work/bk/bk.sock" build --progress=plain -t "$image:warm" "$work/ctx" >"$work/warm.log" 2>&1 || { cat "$work/warm.log" >&2; exit 1; }
t2=$(now)

cached_runs=$(awk '/^#[0-9]+ \[[0-9]+\/[0-9]+\] RUN /{step[$1]=1} /^#[0-9]+ CACHED$/{if (step[$1]) n++} END{print n+0}' "$work/warm.log")
cold_runs=$(awk '/^#[0-9]+ \[[0-9]+\/[0-9]+\] RUN /{step[$1]=1} /^#[0-9]+ CACHED$/{if (step[$1]) n++} END{print n+0}' "$work/cold.log")
size=$(du -sh "$work/cache" | cut -f1)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v hits="$cached_runs" -v coldhits="$cold_runs" -v size="$size" 'BEGIN {
  cold = b - a; warm = c - b; ratio = warm / cold
  printf "cache: cold %.1f s (RUN steps cached: %d of 3), warm %.1f s in a fresh buildkitd (RUN steps cached: %d of 3), warm/cold %.3f (target <= 0.1), cache dir %s\n", cold, coldhits, warm, hits, ratio, size
  exit (ratio <= 0.1 && hits == 3 && coldhits == 0) ? 0 : 1
}'
