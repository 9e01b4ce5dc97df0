#!/usr/bin/env bash
# The three Docker engines the tests run against, installed and started on demand:
#
#   legacy       Debian bookworm's docker.io 20.10, the host's own dockerd (/var/run/docker.sock)
#   graphdriver  Docker 28 (Debian sid's docker.io) with the overlay2 graph driver, as on GitHub's ubuntu-24.04
#   containerd   the same Docker 28 with the containerd image store, as on ubuntu-26.04 (Docker 29) and fresh installs
#
# The Docker 28 engines run from a trixie chroot (made with debootstrap from Debian's mirror) that also provides
# docker-buildx and a skopeo new enough to talk to them (bookworm's skopeo 1.9 asks for API 1.22, which Docker 26+
# refuses). The chroot is kept in $HANDOFF_CHROOT (default /opt/docker-handoff/trixie) and reused by later runs.
#
#   bash scripts/engines.sh start ENGINE    installs what is missing, starts the engine, prints `DOCKER_HOST=…`
#   bash scripts/engines.sh env ENGINE      prints the environment a client needs for ENGINE (DOCKER_HOST, …)
#   bash scripts/engines.sh stop ENGINE
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROOT="${HANDOFF_CHROOT:-/opt/docker-handoff/trixie}"
# Client-side files for the chroot's tools (the buildx plugin link, skopeo's wrapper): outside the chroot.
CLIENT_DIR="${HANDOFF_CLIENT_DIR:-/opt/docker-handoff/client}"

log() { echo "engines: $*" >&2; }

# The host's Debian mirror (a machine may have no route to deb.debian.org); deb.debian.org on any other distribution,
# whose mirror has no trixie.
mirror() {
  local uri
  grep -qx 'ID=debian' /etc/os-release 2>/dev/null || { echo http://deb.debian.org/debian; return; }
  uri="$(grep -hoE '^URIs:\s*\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)"
  [ -n "$uri" ] || uri="$(grep -hoE '^deb\s+\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)"
  echo "${uri:-http://deb.debian.org/debian}"
}

apt_install_host() {
  local missing=()
  for tool in "$@"; do command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The trixie chroot with sid's Docker 28, containerd, buildx, and trixie's skopeo. Idempotent: a marker file is
# written last, so an interrupted install is redone from scratch.
ensure_chroot() {
  [ -f "$CHROOT/.handoff-ready" ] && return 0
  apt_install_host debootstrap:debootstrap
  local uri
  uri="$(mirror)"
  log "building the Docker 28 chroot in $CHROOT from $uri (about a minute, once)"
  rm -rf "$CHROOT"
  mkdir -p "$CHROOT"
  debootstrap --variant=minbase trixie "$CHROOT" "$uri" >/tmp/handoff-debootstrap.log 2>&1 ||
    { tail -20 /tmp/handoff-debootstrap.log >&2; exit 1; }
  cat >"$CHROOT/etc/apt/sources.list" <<EOF
deb $uri trixie main
deb $uri sid main
EOF
  rm -f "$CHROOT"/etc/apt/sources.list.d/*.sources
  # The mirror is a dated snapshot: sid's Release file has expired by the time it is read.
  echo 'Acquire::Check-Valid-Until "false";' >"$CHROOT/etc/apt/apt.conf.d/99handoff-snapshot"
  cat >"$CHROOT/etc/apt/preferences.d/99handoff-pin" <<EOF
Package: *
Pin: release n=trixie
Pin-Priority: 900

Package: *
Pin: release n=sid
Pin-Priority: 500
EOF
  # Packages must not start services inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$CHROOT/usr/sbin/policy-rc.d"
  chmod +x "$CHROOT/usr/sbin/policy-rc.d"
  chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t sid \
    docker.io containerd runc tini docker-buildx >/tmp/handoff-chroot-apt.log 2>&1 ||
    { tail -20 /tmp/handoff-chroot-apt.log >&2; exit 1; }
  chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    skopeo ca-certificates >>/tmp/handoff-chroot-apt.log 2>&1 ||
    { tail -20 /tmp/handoff-chroot-apt.log >&2; exit 1; }
  chroot "$CHROOT" apt-get clean
  touch "$CHROOT/.handoff-ready"
}

# Client tools for the host: the buildx plugin (a static Go binary, runs from the host as it is), and skopeo 1.18
# run inside the chroot (it needs the chroot's libraries) through a wrapper that maps the host's paths.
ensure_clients() {
  mkdir -p "$CLIENT_DIR/docker-config/cli-plugins" "$CLIENT_DIR/bin"
  ln -sf "$CHROOT/usr/libexec/docker/cli-plugins/docker-buildx" "$CLIENT_DIR/docker-config/cli-plugins/docker-buildx"
  [ -f "$CLIENT_DIR/docker-config/config.json" ] || echo '{}' >"$CLIENT_DIR/docker-config/config.json"
  # The chroot's own loader and libraries: trixie's skopeo needs a newer glibc than the host's.
  printf '#!/bin/sh\nexec "%s" --library-path "%s" "%s" "$@"\n' "$CHROOT/lib64/ld-linux-x86-64.so.2" \
    "$CHROOT/usr/lib/x86_64-linux-gnu:$CHROOT/lib/x86_64-linux-gnu" "$CHROOT/usr/bin/skopeo" >"$CLIENT_DIR/bin/skopeo"
  chmod +x "$CLIENT_DIR/bin/skopeo"
}

socket_of() { echo "$CHROOT/run/docker-$1.sock"; }

# The environment a client uses to reach ENGINE, one `NAME=value` a line.
engine_env() {
  case "$1" in
    legacy) echo "DOCKER_HOST=unix:///var/run/docker.sock" ;;
    graphdriver | containerd) echo "DOCKER_HOST=unix://$(socket_of "$1")" ;;
    *) log "unknown engine '$1': expected legacy, graphdriver or containerd"; exit 2 ;;
  esac
  echo "HANDOFF_ENGINE=$1"
  echo "HANDOFF_CHROOT=$CHROOT"
  echo "DOCKER_CONFIG=$CLIENT_DIR/docker-config"
  # skopeo 1.18 (bookworm's 1.9 asks for API 1.22, which Docker 26+ refuses); the tests pass it the daemon host.
  echo "HANDOFF_SKOPEO=$CLIENT_DIR/bin/skopeo"
  # buildx's docker driver writes `-o type=oci|docker,dest=…` tarballs only on the containerd image store: the tests of
  # the other engines build those tarballs on the containerd engine (scripts/test.sh starts it for every pass).
  echo "HANDOFF_BUILDX_HOST=unix://$(socket_of containerd)"
}

wait_for() {
  local host="$1" logfile="$2"
  for _ in $(seq 1 120); do
    DOCKER_HOST="$host" docker version >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "the engine at $host did not start; the end of $logfile:"
  tail -15 "$logfile" >&2
  exit 1
}

start_legacy() {
  apt_install_host dockerd:docker.io
  docker -H unix:///var/run/docker.sock version >/dev/null 2>&1 && return 0
  log "starting Docker 20.10 (log: /tmp/dockerd.log)"
  # No iptables or bridge: the action never runs containers, and this machine has no network to give them.
  nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs >/tmp/dockerd.log 2>&1 &
  wait_for unix:///var/run/docker.sock /tmp/dockerd.log
}

start_current() {
  local mode="$1" socket logfile config
  socket="$(socket_of "$mode")"
  DOCKER_HOST="unix://$socket" docker version >/dev/null 2>&1 && return 0
  apt_install_host unshare:util-linux
  ensure_chroot
  logfile="/tmp/dockerd-$mode.log"
  config="/etc/docker/handoff-$mode.json"
  local storage=()
  if [ "$mode" = containerd ]; then
    echo '{"features":{"containerd-snapshotter":true}}' >"$CHROOT$config"
  else
    echo '{"features":{"containerd-snapshotter":false}}' >"$CHROOT$config"
    storage=(--storage-driver overlay2)
  fi
  # A stale pidfile from a killed engine would stop dockerd from starting.
  rm -f "$CHROOT/run/docker-$mode.pid" "$socket"
  log "starting Docker 28 ($mode image store; log: $logfile)"
  # A private mount namespace keeps the chroot's mounts off the host. The chroot is bind-mounted onto itself first:
  # containerd's metadata plugin fails when the root it runs in has no mountinfo entry.
  nohup unshare --mount --propagation private bash -c '
    set -e
    root="$1"; shift
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    exec chroot "$root" "$@"
  ' _ "$CHROOT" dockerd --config-file "$config" -H "unix:///run/docker-$mode.sock" \
    --pidfile "/run/docker-$mode.pid" --data-root "/var/lib/docker-$mode" --exec-root "/run/docker-$mode" \
    --cgroup-parent "/docker-$mode" --iptables=false --ip6tables=false --bridge=none "${storage[@]}" \
    >"$logfile" 2>&1 &
  wait_for "unix://$socket" "$logfile"
}

stop_engine() {
  local pidfile
  case "$1" in
    legacy) pidfile=/var/run/docker.pid ;;
    *) pidfile="$CHROOT/run/docker-$1.pid" ;;
  esac
  [ -f "$pidfile" ] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  for _ in $(seq 1 40); do [ -f "$pidfile" ] || return 0; sleep 0.25; done
}

command="${1:-}"
engine="${2:-}"
case "$command" in
  start)
    case "$engine" in
      legacy) start_legacy; ensure_chroot; ensure_clients ;;
      graphdriver | containerd) start_current "$engine"; ensure_clients ;;
      *) log "usage: engines.sh start legacy|graphdriver|containerd"; exit 2 ;;
    esac
    engine_env "$engine"
    ;;
  env) engine_env "$engine" ;;
  stop) stop_engine "$engine" ;;
  *) log "usage: engines.sh start|env|stop legacy|graphdriver|containerd"; exit 2 ;;
esac
