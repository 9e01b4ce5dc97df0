#!/usr/bin/env bash
# Installs and starts everything the demo and the tests need, on a fresh machine as root or on one already set up:
# Node 24 (the npm registry's node@24 package, since the action runs on GitHub's node24 runtime), the project's npm
# packages, Debian's docker.io (a real engine), skopeo and podman (real third-party tarball producers), zstd, Go (the
# JSON oracle's compiler: test/support/go-oracle), and a running dockerd. Source it to get Node 24 on PATH: `source scripts/setup.sh`.
# Strict mode while it runs; the caller's shell options are restored at the end, since it may be sourced.
caller_options="$(set +o)"
# Command substitution drops errexit, so it is recorded from $- instead.
case $- in *e*) caller_options+=$'\nset -e' ;; *) caller_options+=$'\nset +e' ;; esac
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE24_DIR="$ROOT/.tools/node24"

if ! "$NODE24_DIR/node_modules/node/bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
  echo "setup: installing Node 24 from the npm registry into .tools/node24"
  mkdir -p "$NODE24_DIR"
  npm install --prefix "$NODE24_DIR" --no-audit --no-fund --loglevel=error node@24 >/dev/null
fi
export PATH="$NODE24_DIR/node_modules/node/bin:$ROOT/node_modules/.bin:$PATH"

# A node_modules that is a symlink (a git worktree sharing another checkout's packages) is that checkout's to update:
# npm ci here would replace the link with a private copy.
if [ ! -d "$ROOT/node_modules" ] ||
  { [ ! -L "$ROOT/node_modules" ] && [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; }; then
  echo "setup: installing npm packages"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

missing=()
for tool in dockerd:docker.io skopeo:skopeo podman:podman zstd:zstd go:golang-go; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /tmp/dockerd.log)"
  # No iptables or bridge: the action never runs containers, and this machine has no network to give them.
  nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /tmp/dockerd.log" >&2; tail -5 /tmp/dockerd.log >&2; exit 1; }
fi
eval "$caller_options"
