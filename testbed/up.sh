#!/usr/bin/env bash
# Installs (cached, idempotent) and starts the shim test bed, then writes
# <repo>/testbed.env. See testbed/README.md.
set -Eeuo pipefail

# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T_TOTAL="$(_now)"
COMPONENT=setup
trap 'rc=$?; printf "testbed: %s: command failed (exit %s, %s line %s): %s\n" "$COMPONENT" "$rc" "${BASH_SOURCE[0]##*/}" "$LINENO" "$BASH_COMMAND" >&2; exit $rc' ERR

[[ $EUID -eq 0 ]] || die setup "must run as root (starts dockerd/buildkitd, installs packages)"

# Talk only to our daemons, whatever the caller's environment says.
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH BUILDX_BUILDER BUILDKIT_HOST
export DOCKER_HOST="$DOCKER_HOST_URL"
export DOCKER_CLI_HINTS=false

LOG="$STATE/log"
mkdir -p "$CACHE/bin" "$CACHE/tmp" "$STATE" "$LOG" "$RUN"
chmod 755 "$RUN"

# One up.sh at a time (make -j, two terminals). fd 9 must not leak into daemons.
exec 9>"$STATE/.up.lock"
flock -w 3600 9 || die setup "could not take $STATE/.up.lock within an hour"

# Leftovers of interrupted builds (never look cached: they lack the final rename).
rm -rf "${CACHE:?}/tmp/"* 2>/dev/null || true

# ============================================================================
# 1. Debian packages
# ============================================================================
APT_PKGS=(docker.io containerd runc tini docker-registry docker-compose busybox-static
  iptables ca-certificates openssl curl)

step_apt() {
  COMPONENT=apt
  local t0 p missing=()
  t0="$(_now)"
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say apt "all ${#APT_PKGS[@]} packages installed ($(_elapsed "$t0"))"
    return
  fi
  say apt "installing: ${missing[*]}"
  # Keep package maintainer scripts from starting a system dockerd/registry
  # (it would fight ours over docker0/iptables and port 5000).
  local own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local ok=1
  {
    apt-get -o DPkg::Lock::Timeout=600 update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${missing[@]}"
  } >"$LOG/apt.log" 2>&1 || ok=0
  ((own_policy)) && rm -f /usr/sbin/policy-rc.d
  ((ok)) || die apt "apt-get install ${missing[*]} failed" "$LOG/apt.log"
  # docker-registry's package may have started its own instance on :5000.
  if command -v service >/dev/null && [[ -e /etc/init.d/docker-registry ]]; then
    service docker-registry stop >/dev/null 2>&1 || true
  fi
  say apt "installed ${missing[*]} ($(_elapsed "$t0"))"
}

# ============================================================================
# 2. Go-built binaries (cached under $CACHE/bin/<name>-<version>-<recipe>)
# ============================================================================
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

need_go() {
  [[ -x "$GO" ]] || die "$COMPONENT" "Go toolchain not found at $GO (set SHIM_TESTBED_GO)"
  local v
  v="$("$GO" env GOVERSION)" || die "$COMPONENT" "'$GO env GOVERSION' failed"
  # Every pinned module says 'go 1.26.3' (compose v2: 1.24.9); GOTOOLCHAIN=local forbids downloads.
  if ! printf '%s\n%s\n' go1.26.3 "$v" | sort -V -C; then
    die "$COMPONENT" "$GO is $v; need go1.26.3 or newer (GOTOOLCHAIN=local)"
  fi
}

# mod_dir <module@version>: download the module zip, print its (read-only) directory
mod_dir() {
  local out dir
  out="$("$GO" mod download -json "$1")" || { printf 'go mod download -json %s failed:\n%s\n' "$1" "$out" >&2; return 1; }
  dir="$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || { printf 'no Dir in go mod download output:\n%s\n' "$out" >&2; return 1; }
  printf '%s\n' "$dir"
}

# writable_copy <module@version> <dest>: a writable copy that becomes the main
# module, so its go.mod 'exclude' directives are honoured (go install @v refuses them).
writable_copy() {
  local dir
  dir="$(mod_dir "$1")" || return 1
  cp -r "$dir" "$2" && chmod -R u+w "$2"
}

# Recipes run in a subshell whose status is tested, where bash ignores 'set -e';
# so every step is chained explicitly.
recipe_buildkit() { # <outdir>
  local out="$1" ldf
  ldf="-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION -X github.com/moby/buildkit/version.Revision=$BUILDKIT_REVISION -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
  writable_copy "github.com/moby/buildkit@$BUILDKIT_VERSION" "$out/src" &&
    (cd "$out/src" && "$GO" build -trimpath -ldflags "$ldf" -o "$out/buildctl" ./cmd/buildctl) &&
    (cd "$out/src" && "$GO" build -trimpath -ldflags "$ldf -extldflags -static" \
      -tags "osusergo netgo static_build seccomp" -o "$out/buildkitd" ./cmd/buildkitd) &&
    "$out/buildctl" --version && "$out/buildkitd" --version
}

recipe_buildx() { # <outdir>
  local out="$1" pkg=github.com/docker/buildx
  GOBIN="$out" "$GO" install -trimpath \
    -ldflags "-s -w -X $pkg/version.Version=$BUILDX_VERSION -X $pkg/version.Revision=$BUILDX_REVISION -X $pkg/version.Package=$pkg" \
    "$pkg/cmd/buildx@$BUILDX_VERSION" &&
    mv "$out/buildx" "$out/docker-buildx" &&
    "$out/docker-buildx" version
}

recipe_compose() { # <outdir> <major: v2|v5> <version>
  local out="$1" major="$2" ver="$3" mod="github.com/docker/compose/$2"
  writable_copy "$mod@$ver" "$out/src" &&
    (cd "$out/src" && "$GO" build -trimpath -ldflags "-s -w -X $mod/internal.Version=$ver" \
      -o "$out/docker-compose" ./cmd) &&
    "$out/docker-compose" version
}

# build_cached <component> <final-dir> <recipe> [args...]
# Returns 0 if the final dir is complete (cached or just built), 1 on build failure
# (log in $LOG/build-<component>.log). Builds in $CACHE/tmp and renames atomically.
build_cached() {
  local comp="$1" final="$2" fn="$3" t0 tmp log="$LOG/build-$1.log"
  shift 3
  COMPONENT="$comp"
  t0="$(_now)"
  if [[ -f "$final/.complete" ]]; then
    say "$comp" "cached ($final)"
    return 0
  fi
  need_go
  say "$comp" "building (log: $log) ..."
  # Called from a condition, so 'set -e' is off in here: check each step.
  tmp="$(mktemp -d "$CACHE/tmp/$comp.XXXXXX")" || return 1
  if ! ("$fn" "$tmp" "$@") >"$log" 2>&1 </dev/null 9>&-; then
    chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"
    return 1
  fi
  chmod -R u+w "$tmp/src" 2>/dev/null
  rm -rf "$tmp/src" &&
    printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$fn" "$*" >"$tmp/.complete" &&
    chmod 755 "$tmp" &&
    rm -rf "$final" &&
    mv -T "$tmp" "$final" || { echo "could not move $tmp to $final" >>"$log"; return 1; }
  say "$comp" "built in $(_elapsed "$t0") -> $final"
}

# build_optional <component> <final-dir> <module@version> <recipe> [args...]
# For components the test bed can live without: prints the binary path on success,
# nothing on failure (with a loud warning). A failure is remembered in
# <final-dir>.failed so warm runs stay fast; SHIM_TESTBED_RETRY_FAILED=1 retries.
build_optional() {
  local comp="$1" final="$2" what="$3" failed="$2.failed" var
  shift 3
  var="TESTBED_${comp^^}"
  var="${var//-/_}"
  if [[ -f "$failed" && "${SHIM_TESTBED_RETRY_FAILED:-}" != 1 && ! -f "$final/.complete" ]]; then
    warn "$comp: NOT AVAILABLE: building $what failed earlier (log: $failed); $var will be empty. Retry: SHIM_TESTBED_RETRY_FAILED=1 or rm $failed"
    return 0
  fi
  if build_cached "$comp" "$final" "$@" >&2; then
    rm -f "$failed"
    printf '%s\n' "$final/docker-compose"
  else
    cp "$LOG/build-$comp.log" "$failed" 2>/dev/null || echo "build failed" >"$failed"
    warn "$comp: NOT AVAILABLE: building $what FAILED; $var will be empty. Log: $LOG/build-$comp.log (kept as $failed)"
    tail -n 20 "$LOG/build-$comp.log" >&2 || true
  fi
}

step_builds() {
  build_cached buildkit "$BUILDKIT_BIN_DIR" recipe_buildkit ||
    die buildkit "go build of github.com/moby/buildkit@$BUILDKIT_VERSION failed" "$LOG/build-buildkit.log"
  build_cached buildx "$BUILDX_BIN_DIR" recipe_buildx ||
    die buildx "go install github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION failed" "$LOG/build-buildx.log"

  COMPOSE_V2="$(build_optional compose-v2 "$COMPOSE_V2_BIN_DIR" "github.com/docker/compose/v2@$COMPOSE_V2_VERSION" \
    recipe_compose v2 "$COMPOSE_V2_VERSION")"
  COMPOSE_V5="$(build_optional compose-v5 "$COMPOSE_V5_BIN_DIR" "github.com/docker/compose/v5@$COMPOSE_V5_VERSION" \
    recipe_compose v5 "$COMPOSE_V5_VERSION")"
  [[ -n "$COMPOSE_V2$COMPOSE_V5" ]] || die compose "neither compose v2 nor v5 could be built" \
    "$LOG/build-compose-v2.log" "$LOG/build-compose-v5.log"

  # buildx as the system CLI plugin (a symlink into the cache).
  COMPONENT=buildx-plugin
  if [[ "$(readlink "$BUILDX_PLUGIN" 2>/dev/null)" != "$BUILDX_CACHED" ]]; then
    mkdir -p "$(dirname "$BUILDX_PLUGIN")"
    ln -sfn "$BUILDX_CACHED" "$BUILDX_PLUGIN.tmp"
    mv -Tf "$BUILDX_PLUGIN.tmp" "$BUILDX_PLUGIN"
    say buildx-plugin "installed $BUILDX_PLUGIN -> $BUILDX_CACHED"
  fi
}

# ============================================================================
# 3. Daemons
# ============================================================================
# wait_until <seconds> <pid> <check-fn...>: poll until check succeeds; fail early if pid dies
wait_until() {
  local secs="$1" pid="$2" i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 2
    sleep 0.2
  done
  "$@"
}

docker_ok() { timeout 10 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
registry_ok() { curl -fsS -m 5 -o /dev/null "$REGISTRY_URL/v2/" 2>/dev/null; }
buildkit_ok() { timeout 10 "$BUILDCTL" --addr "$BUILDKIT_HOST_URL" debug workers >/dev/null 2>&1; }

step_dockerd() {
  COMPONENT=dockerd
  local t0 pidfile="$RUN/dockerd.pid" log="$LOG/dockerd.log" pid rc=0
  t0="$(_now)"
  if pid_alive "$pidfile" dockerd; then
    pid="$(pid_of "$pidfile")"
    if wait_until 30 "$pid" docker_ok; then
      chmod 666 "$DOCKER_SOCK"
      say dockerd "running (pid $pid, $("$DOCKER" version --format '{{.Server.Version}}')) $(_elapsed "$t0")"
      return
    fi
    warn "dockerd pid $pid does not answer on $DOCKER_SOCK; restarting it"
    stop_pidfile dockerd "$pidfile" dockerd 30 >/dev/null
  fi
  rm -f "$pidfile" "$DOCKER_SOCK"
  mkdir -p "$STATE/docker" "$STATE/dockerd" "$RUN/dockerd"
  # Own (empty) config, so /etc/docker/daemon.json of the host never leaks in.
  # 127.0.0.0/8 is an insecure registry by default, so 127.0.0.1:5000 needs nothing.
  [[ -f "$STATE/dockerd/daemon.json" ]] || printf '{}\n' > "$STATE/dockerd/daemon.json"
  printf '\n===== %s starting dockerd =====\n' "$(date -u +%FT%TZ)" >>"$log"
  setsid "$DOCKERD" \
    --config-file "$STATE/dockerd/daemon.json" \
    --host "$DOCKER_HOST_URL" \
    --data-root "$STATE/docker" \
    --exec-root "$RUN/dockerd" \
    --pidfile "$pidfile" \
    >>"$log" 2>&1 </dev/null 9>&- &
  pid=$!
  wait_until 60 "$pid" docker_ok || rc=$?
  ((rc == 0)) || {
    ((rc == 2)) && die dockerd "exited during startup (pid $pid)" "$log"
    die dockerd "no answer on $DOCKER_SOCK within 60s (pid $pid)" "$log"
  }
  chmod 666 "$DOCKER_SOCK"
  say dockerd "started (pid $pid, $("$DOCKER" version --format '{{.Server.Version}}')) in $(_elapsed "$t0")"
}

step_registry() {
  COMPONENT=registry
  local t0 pidfile="$RUN/registry.pid" log="$LOG/registry.log" conf="$STATE/registry.yml" pid rc=0
  t0="$(_now)"
  if pid_alive "$pidfile" docker-registry; then
    pid="$(pid_of "$pidfile")"
    if wait_until 15 "$pid" registry_ok; then
      say registry "running (pid $pid, $REGISTRY_ADDR) $(_elapsed "$t0")"
      return
    fi
    warn "registry pid $pid does not answer on $REGISTRY_URL/v2/; restarting it"
    stop_pidfile registry "$pidfile" docker-registry >/dev/null
  fi
  rm -f "$pidfile"
  if registry_ok; then
    die registry "something else already answers on $REGISTRY_URL (not our pid file $pidfile); stop it (e.g. a system docker-registry service)"
  fi
  mkdir -p "$STATE/registry"
  cat >"$conf" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  printf '\n===== %s starting registry =====\n' "$(date -u +%FT%TZ)" >>"$log"
  setsid "$REGISTRY_BIN" serve "$conf" >>"$log" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$pidfile"
  wait_until 30 "$pid" registry_ok || rc=$?
  ((rc == 0)) || {
    kill -TERM "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    ((rc == 2)) && die registry "exited during startup (pid $pid)" "$log"
    die registry "GET $REGISTRY_URL/v2/ did not answer within 30s (pid $pid)" "$log"
  }
  say registry "started (pid $pid, $REGISTRY_ADDR) in $(_elapsed "$t0")"
}

write_buildkitd_toml() { # <snapshotter>
  cat >"$STATE/buildkitd.toml" <<EOF
# written by testbed/up.sh
root = "$STATE/buildkit"

[grpc]
  address = ["$BUILDKIT_HOST_URL"]

[worker.oci]
  enabled = true
  snapshotter = "$1"
  gc = true

[worker.containerd]
  enabled = false

[registry."$REGISTRY_ADDR"]
  http = true
  insecure = true
EOF
}

step_buildkitd() {
  COMPONENT=buildkitd
  local t0 pidfile="$RUN/buildkitd.pid" log="$LOG/buildkitd.log" pid rc snap
  t0="$(_now)"
  if pid_alive "$pidfile" buildkitd; then
    pid="$(pid_of "$pidfile")"
    if [[ "$(readlink "/proc/$pid/exe")" == "$BUILDKITD" ]] && wait_until 15 "$pid" buildkit_ok; then
      say buildkitd "running (pid $pid, $(sed -n 's/^ *snapshotter = "\(.*\)"/\1/p' "$STATE/buildkitd.toml")) $(_elapsed "$t0")"
      return
    fi
    warn "buildkitd pid $pid runs another binary than $BUILDKITD or does not answer; restarting it"
    stop_pidfile buildkitd "$pidfile" buildkitd >/dev/null
  fi
  rm -f "$pidfile" "$BUILDKIT_SOCK"
  mkdir -p "$STATE/buildkit"
  for snap in overlayfs native; do
    write_buildkitd_toml "$snap"
    printf '\n===== %s starting buildkitd (snapshotter %s) =====\n' "$(date -u +%FT%TZ)" "$snap" >>"$log"
    setsid "$BUILDKITD" --config "$STATE/buildkitd.toml" >>"$log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$pidfile"
    rc=0
    wait_until 60 "$pid" buildkit_ok || rc=$?
    if ((rc == 0)); then
      chmod 666 "$BUILDKIT_SOCK"
      say buildkitd "started (pid $pid, snapshotter $snap) in $(_elapsed "$t0")"
      return
    fi
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$pidfile" "$BUILDKIT_SOCK"
    if [[ "$snap" == overlayfs ]]; then
      warn "buildkitd did not come up with the overlayfs snapshotter; retrying with native (log: $log)"
    fi
  done
  die buildkitd "did not answer 'buildctl debug workers' on $BUILDKIT_SOCK (overlayfs and native both failed)" "$log"
}

# ============================================================================
# 4./5. Images
# ============================================================================
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# make_busybox_rootfs <dir>: busybox-static with every applet linked, /tmp, root user
make_busybox_rootfs() {
  local r="$1" a
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,dev,proc,sys,run,home}
  chmod 1777 "$r/tmp" "$r/var/tmp"
  chmod 700 "$r/root"
  cp "$BUSYBOX" "$r/bin/busybox"
  while read -r a; do
    [[ -n "$a" && "$a" != bin/busybox ]] || continue
    mkdir -p "$r/$(dirname "$a")"
    ln -sf /bin/busybox "$r/$a"
  done < <("$BUSYBOX" --list-full)
  [[ -L "$r/bin/sh" ]] || ln -sf /bin/busybox "$r/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
}

# glibc runtime for the Debian docker CLI and bun-compiled binaries (e.g. dist/shim)
copy_glibc() { # <rootfs>
  local r="$1" f lib
  local -a libs=()
  while read -r f; do libs+=("$f"); done < <(ldd "$DOCKER" | grep -o '/[^ ]*' | sort -u)
  for lib in libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libgcc_s.so.1; do
    for f in /lib/x86_64-linux-gnu/$lib /usr/lib/x86_64-linux-gnu/$lib; do
      [[ -e "$f" ]] && { libs+=("$f"); break; }
    done
  done
  libs+=(/lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)
  for f in "${libs[@]}"; do
    [[ -e "$f" ]] || continue
    mkdir -p "$r$(dirname "$f")"
    cp -L "$f" "$r$f"
  done
}

make_devcontainer_rootfs() { # <dir>
  local r="$1"
  make_busybox_rootfs "$r"
  copy_glibc "$r"
  install -D -m 755 "$DOCKER" "$r/usr/bin/docker"
  install -D -m 755 "$BUILDX_CACHED" "$r/usr/libexec/docker/cli-plugins/docker-buildx"
  install -D -m 755 "$DEV_COMPOSE" "$r/usr/libexec/docker/cli-plugins/docker-compose"
  install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
  printf 'retro:x:1000:1000:retro:/home/retro:/bin/sh\n' >>"$r/etc/passwd"
  printf 'retro:x:1000:\n' >>"$r/etc/group"
  mkdir -p "$r/home/retro/work"
  chown -R 1000:1000 "$r/home/retro"
  chmod 755 "$r/home/retro" "$r/home/retro/work"
}

# manifest_digest <repo-path> <tag>: registry digest of a tag, empty if absent
manifest_digest() {
  local h
  h="$(curl -fsS -m 10 -o /dev/null -D - -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$REGISTRY_URL/v2/$1/manifests/$2" 2>/dev/null)" || return 0
  printf '%s\n' "$h" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}

# ensure_image <component> <repo> <key> <rootfs-fn> <log>
# Makes <repo>:<key> and <repo>:latest exist in the registry and in dockerd.
ensure_image() {
  local comp="$1" repo="$2" key="$3" fn="$4" log="$5" path="${2#*/}" t0 tmp d_key d_latest
  COMPONENT="$comp"
  t0="$(_now)"
  d_key="$(manifest_digest "$path" "$key")"
  if [[ -n "$d_key" ]]; then
    if ! "$DOCKER" image inspect "$repo:$key" >/dev/null 2>&1; then
      "$DOCKER" pull -q "$repo:$key" >>"$log" 2>&1 || die "$comp" "docker pull $repo:$key failed" "$log"
    fi
    "$DOCKER" tag "$repo:$key" "$repo:latest"
    d_latest="$(manifest_digest "$path" latest)"
    if [[ "$d_latest" != "$d_key" ]]; then
      "$DOCKER" push "$repo:latest" >>"$log" 2>&1 || die "$comp" "docker push $repo:latest failed" "$log"
    fi
    say "$comp" "cached ($repo:$key) $(_elapsed "$t0")"
    return
  fi
  tmp="$(mktemp -d "$CACHE/tmp/$comp.XXXXXX")"
  {
    "$fn" "$tmp/rootfs" &&
      tar -C "$tmp/rootfs" --numeric-owner -cf - . |
      "$DOCKER" import \
        --change "ENV PATH=$PATH_ENV" \
        --change 'CMD ["sh"]' \
        --change "LABEL org.opencontainers.image.source=shim-testbed shim-testbed.key=$key" \
        - "$repo:$key" &&
      "$DOCKER" tag "$repo:$key" "$repo:latest" &&
      "$DOCKER" push "$repo:$key" &&
      "$DOCKER" push "$repo:latest"
  } >>"$log" 2>&1 9>&- || { rm -rf "$tmp"; die "$comp" "building/pushing $repo:$key failed" "$log"; }
  rm -rf "$tmp"
  # Drop older keyed tags of this repo from dockerd (the registry keeps them; they are small).
  "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' "$repo" | grep -v -e ":$key\$" -e ':latest$' |
    xargs -r "$DOCKER" rmi >>"$log" 2>&1 || true
  say "$comp" "built and pushed $repo:$key in $(_elapsed "$t0")"
}

verify_base() {
  COMPONENT=base-image
  local t0 d log="$LOG/verify-base.log" out
  t0="$(_now)"
  : >"$log"
  out="$("$DOCKER" run --rm "$TESTBED_BASE_IMAGE" sh -c 'echo ok' 2>>"$log")" && [[ "$out" == ok ]] ||
    die base-image "'docker run --rm $TESTBED_BASE_IMAGE' failed (output: $out)" "$log" "$LOG/dockerd.log"
  d="$(mktemp -d "$CACHE/tmp/verify.XXXXXX")"
  printf 'FROM %s\nRUN echo ok\n' "$TESTBED_BASE_IMAGE" >"$d/Dockerfile"
  "$BUILDCTL" --addr "$BUILDKIT_HOST_URL" build --progress plain --frontend dockerfile.v0 \
    --local context="$d" --local dockerfile="$d" >>"$log" 2>&1 9>&- ||
    { rm -rf "$d"; die base-image "buildkitd could not build 'FROM $TESTBED_BASE_IMAGE' (pull from $REGISTRY_ADDR?)" "$log" "$LOG/buildkitd.log"; }
  rm -rf "$d"
  say base-image "verified: docker run + buildctl build FROM it $(_elapsed "$t0")"
}

verify_devcontainer() {
  COMPONENT=devcontainer
  local t0 log="$LOG/verify-devcontainer.log" out
  t0="$(_now)"
  : >"$log"
  out="$("$DOCKER" run --rm "$TESTBED_DEVCONTAINER_BASE" sh -c 'docker --version && docker buildx version && docker compose version --short && su retro -c "cd && pwd"' 2>>"$log")" ||
    { printf '%s\n' "$out" >>"$log"; die devcontainer "'docker --version / docker buildx version / docker compose version' inside $TESTBED_DEVCONTAINER_BASE failed" "$log"; }
  printf '%s\n' "$out" >>"$log"
  say devcontainer "verified: $(printf '%s' "$out" | tr '\n' ' ' | sed 's/ *$//') $(_elapsed "$t0")"
}

pkgver() { dpkg-query -W -f='${Version}' "$1"; }

step_images() {
  local key
  TESTBED_BASE_IMAGE="$IMAGE_REPO_BASE:latest"
  TESTBED_DEVCONTAINER_BASE="$IMAGE_REPO_DEV:latest"

  key="$( { declare -f make_busybox_rootfs; pkgver busybox-static; echo "$RECIPE_REV"; } | sha256sum | cut -c1-16)"
  ensure_image base-image "$IMAGE_REPO_BASE" "$key" make_busybox_rootfs "$LOG/image-base.log"

  DEV_COMPOSE="${COMPOSE_V2:-$COMPOSE_V5}"
  key="$( {
    declare -f make_busybox_rootfs copy_glibc make_devcontainer_rootfs
    pkgver busybox-static; pkgver docker.io; pkgver libc6; pkgver ca-certificates
    # versions, not paths: the same binaries from another cache dir give the same key
    echo "$RECIPE_REV ${BUILDX_BIN_DIR##*/} $(basename "$(dirname "$DEV_COMPOSE")")"
  } | sha256sum | cut -c1-16)"
  ensure_image devcontainer "$IMAGE_REPO_DEV" "$key" make_devcontainer_rootfs "$LOG/image-devcontainer.log"
}

step_verify() {
  # Cheap (about a second with everything warm), so it runs every time.
  # SHIM_TESTBED_VERIFY=0 skips it.
  if [[ "${SHIM_TESTBED_VERIFY:-1}" == 0 ]]; then
    warn "image verification skipped (SHIM_TESTBED_VERIFY=0)"
    return
  fi
  verify_base
  verify_devcontainer
}

# ============================================================================
# 6. testbed.env
# ============================================================================
step_env() {
  COMPONENT=testbed.env
  local env="$REPO_ROOT/testbed.env" tmp
  tmp="$(mktemp "$REPO_ROOT/.testbed.env.XXXXXX")"
  {
    printf '# written by testbed/up.sh at %s; source it.\n' "$(date -u +%FT%TZ)"
    local v
    for v in DOCKER_HOST BUILDKIT_HOST TESTBED_REGISTRY TESTBED_BASE_IMAGE TESTBED_DEVCONTAINER_BASE \
      TESTBED_DOCKER TESTBED_DOCKERD TESTBED_BUILDCTL TESTBED_BUILDKITD TESTBED_BUILDX \
      TESTBED_COMPOSE_V1 TESTBED_COMPOSE_V2 TESTBED_COMPOSE_V5 TESTBED_STATE TESTBED_RUN; do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
  } >"$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$env"
  say testbed.env "$env"
}

# ============================================================================
step_apt
step_builds
step_dockerd
step_registry
step_buildkitd
step_images
step_verify

DOCKER_HOST="$DOCKER_HOST_URL"
BUILDKIT_HOST="$BUILDKIT_HOST_URL"
TESTBED_REGISTRY="$REGISTRY_ADDR"
TESTBED_DOCKER="$DOCKER"
TESTBED_DOCKERD="$DOCKERD"
TESTBED_BUILDCTL="$BUILDCTL"
TESTBED_BUILDKITD="$BUILDKITD"
TESTBED_BUILDX="$BUILDX_PLUGIN"
TESTBED_COMPOSE_V1="$COMPOSE_V1"
TESTBED_COMPOSE_V2="$COMPOSE_V2"
TESTBED_COMPOSE_V5="$COMPOSE_V5"
TESTBED_STATE="$STATE"
TESTBED_RUN="$RUN"
step_env

say total "$(_elapsed "$T_TOTAL")$([[ -n "$COMPOSE_V2" && -n "$COMPOSE_V5" ]] || echo " (WITH WARNINGS: a compose build failed, see above)")"
