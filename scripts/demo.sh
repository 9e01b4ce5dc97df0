#!/usr/bin/env bash
# Runs the main job on this machine: installs and starts what it needs (Node 24, npm packages, a Docker engine),
# builds a small image in that engine, starts the local artifact service, and runs the bundled action
# (dist/index.js) in save mode as GitHub would (INPUT_* variables, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP).
# Then, as the job that receives the image would, it removes the image and runs load mode to bring it back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
npm run build --silent >/dev/null

work="$(mktemp -d /tmp/handoff-demo-XXXXXX)"
service_pid=""
cleanup() {
  [ -n "$service_pid" ] && kill "$service_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A small image, made locally: no registry, no network.
image="ghcr.io/octo-org/demo-app"
mkdir -p "$work/rootfs/app"
echo "hello from the demo image, built $(date -u +%FT%TZ)" >"$work/rootfs/app/hello.txt"
tar -C "$work/rootfs" -c . | docker import --change 'CMD ["/app/hello.txt"]' - "$image:pr-1" >/dev/null
docker tag "$image:pr-1" "$image:sha-0123abc"
echo "demo: built $image:pr-1 and $image:sha-0123abc in the local engine"

# The local artifact service; its first lines are the environment a job needs for @actions/artifact.
node test/support/artifact-service.ts --port 0 >"$work/service.env" 2>"$work/service.log" &
service_pid=$!
for _ in $(seq 1 100); do
  grep -q '^ACTIONS_RESULTS_URL=' "$work/service.env" 2>/dev/null && break
  sleep 0.1
done
grep -q '^ACTIONS_RESULTS_URL=' "$work/service.env" || { echo "demo: the artifact service did not start" >&2; cat "$work/service.log" >&2; exit 1; }
while IFS='=' read -r key value; do
  [ -n "$key" ] && export "$key=$value"
done <"$work/service.env"

run_action() { # step name, then INPUT_NAME=value pairs
  local step="$1"
  shift
  : >"$work/output" && : >"$work/summary"
  mkdir -p "$work/runner-temp"
  echo
  echo "=== $step: node dist/index.js ==="
  # ::debug:: lines are hidden on GitHub unless debug logging is on; hidden here too.
  env GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary" RUNNER_TEMP="$work/runner-temp" "$@" \
    node dist/index.js | sed '/^::debug::/d'
  echo "--- $step: outputs (from GITHUB_OUTPUT) ---"
  # Each output is written as `name<<delimiter`, its lines, then the delimiter.
  awk '!name && /<</ { split($0, p, "<<"); name = p[1]; end = p[2]; next }
       name && $0 == end { name = ""; next }
       name { printf "  %-14s %s\n", name, $0 }' "$work/output"
}

# What docker/metadata-action would have exported for this pull request.
run_action "save" \
  DOCKER_METADATA_OUTPUT_TAGS="$image:pr-1,$image:sha-0123abc" \
  INPUT_MODE=save INPUT_NAME=docker-image

docker rmi -f "$image:pr-1" "$image:sha-0123abc" >/dev/null
echo
echo "demo: removed the image from the engine; load mode brings it back"
run_action "load" INPUT_MODE=load INPUT_NAME=docker-image

echo
docker image ls "$image"
