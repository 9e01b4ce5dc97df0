#!/usr/bin/env bash
# Runs every test: the unit tests once, then the whole integration suite against each Docker engine in turn (the
# engine chosen by the environment scripts/engines.sh prints), after installing and starting what they need.
#
#   bash scripts/test.sh                                  unit, then integration on legacy, graphdriver, containerd
#   HANDOFF_ENGINES=containerd bash scripts/test.sh       unit, then integration on that engine only
#   HANDOFF_ENGINES=containerd bash scripts/test.sh test/integration/engines.test.ts
#                                                         arguments are vitest filters/options for the integration passes
#
# Exits non-zero when any pass fails; the last line is `N passed, N failed` over all passes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
npm run build >/dev/null

engines="${HANDOFF_ENGINES:-legacy graphdriver containerd}"
engines="${engines//,/ }"
for engine in $engines; do
  case "$engine" in
    legacy | graphdriver | containerd) ;;
    *) echo "test: unknown engine '$engine' in HANDOFF_ENGINES: expected legacy, graphdriver or containerd" >&2; exit 2 ;;
  esac
done

results="$(mktemp -d /tmp/handoff-test-XXXXXX)"
trap 'rm -rf "$results"' EXIT
total_passed=0
total_failed=0
total_skipped=0
failed_passes=()
lines=()
# NAME=value assignments for the pass's vitest: the engine's client environment.
pass_env=()

# One vitest run; its counts come from vitest's JSON report. A run that dies before reporting, or fails outside any
# test (a file that cannot load, a failing beforeAll), counts as one failure so the total can never read 0 failed.
pass() {
  local label="$1" started rc=0 counts
  shift
  started=$SECONDS
  env "${pass_env[@]}" npx vitest run --reporter=default --reporter=json --outputFile.json="$results/$label.json" "$@" || rc=$?
  counts="$(node -e '
    const fs = require("node:fs");
    let passed = 0, failed = 0, skipped = 0;
    try {
      const report = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
      passed = report.numPassedTests;
      skipped = report.numPendingTests + report.numTodoTests;
      failed = report.numFailedTests;
      for (const file of report.testResults) {
        const failedTests = file.assertionResults.filter((test) => test.status === "failed").length;
        if (file.status === "failed" && failedTests === 0) failed++;
      }
    } catch {
      failed = 1;
    }
    if (Number(process.argv[2]) !== 0 && failed === 0) failed = 1;
    console.log(passed, failed, skipped);
  ' "$results/$label.json" "$rc")"
  read -r passed failed skipped <<<"$counts"
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
  lines+=("$(printf '%-12s %4d passed, %3d failed, %3d skipped  %4ds' "$label" "$passed" "$failed" "$skipped" $((SECONDS - started)))")
  [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] || failed_passes+=("$label")
}

echo
echo "════════ unit tests ════════"
pass unit test/unit

for engine in $engines; do
  echo
  echo "════════ integration tests on the $engine engine ════════"
  # buildx exports tarballs (-o type=oci|docker,dest=…) only from a containerd-store engine: it is started for every
  # pass, and the tests build those tarballs there when the engine under test cannot.
  if ! environment="$(bash scripts/engines.sh start "$engine")" || ! bash scripts/engines.sh start containerd >/dev/null; then
    echo "test: the $engine engine did not start" >&2
    total_failed=$((total_failed + 1))
    failed_passes+=("$engine")
    lines+=("$(printf '%-12s did not start' "$engine")")
    continue
  fi
  mapfile -t pass_env <<<"$environment"
  printf '%s\n' "${pass_env[@]}"
  env "${pass_env[@]}" docker version --format 'Docker {{.Server.Version}} (API {{.Server.APIVersion}})'
  pass "$engine" test/integration "$@"
done

echo
echo "════════ summary ════════"
printf '%s\n' "${lines[@]}"
[ ${#failed_passes[@]} -eq 0 ] || echo "failed: ${failed_passes[*]}"
echo "$total_skipped skipped (each with its reason in the pass's output)"
echo "$total_passed passed, $total_failed failed"
[ ${#failed_passes[@]} -eq 0 ]
