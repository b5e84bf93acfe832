#!/usr/bin/env bash
# Stops what testbed/up.sh started (buildkitd, registry, dockerd). Keeps the
# build cache ($SHIM_TESTBED_CACHE) and all state ($SHIM_TESTBED_STATE) unless
# asked:  --purge        also delete state ($STATE, $RUN: images, registry, logs)
#         --purge-all    also delete the build cache ($CACHE) and the buildx plugin link
set -Eeuo pipefail
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'rc=$?; printf "testbed: down: command failed (exit %s, line %s): %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit $rc' ERR

purge=0
case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  --purge-all) purge=2 ;;
  *) die down "unknown argument '$1' (use --purge or --purge-all)" ;;
esac
[[ $EUID -eq 0 ]] || die down "must run as root"
if [[ -d "$STATE" ]]; then
  exec 9>"$STATE/.up.lock" # wait for a running up.sh to finish
  flock -w 600 9 || die down "could not take $STATE/.up.lock (up.sh still running?)"
fi

if [[ -d "$RUN" ]]; then
  stop_pidfile buildkitd "$RUN/buildkitd.pid" buildkitd 20
  stop_pidfile registry "$RUN/registry.pid" docker-registry 10
  # dockerd stops its containers (10s each, in parallel) and its containerd.
  stop_pidfile dockerd "$RUN/dockerd.pid" dockerd 60
  rm -f "$BUILDKIT_SOCK" "$DOCKER_SOCK"
else
  say down "nothing to stop ($RUN does not exist)"
fi

if ((purge >= 1)); then
  # A dockerd that was killed hard leaves mounts behind (its data root is
  # bind-mounted onto itself, plus overlay mounts of containers); unmount them.
  mnts="$(awk -v s="$STATE" -v r="$RUN" '$5 == s || index($5, s "/") == 1 || $5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)"
  for m in $mnts; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "${STATE:?}" "${RUN:?}"
  say down "purged $STATE and $RUN"
fi
if ((purge >= 2)); then
  rm -rf "${CACHE:?}"
  [[ "$(readlink "$BUILDX_PLUGIN" 2>/dev/null)" == "$CACHE/"* ]] && rm -f "$BUILDX_PLUGIN"
  say down "purged $CACHE (Go's own module/build caches are kept: go clean -cache -modcache)"
fi
