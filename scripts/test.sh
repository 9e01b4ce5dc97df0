#!/usr/bin/env bash
# Runs every test (unit, and integration against a real Docker engine and a local artifact service),
# after installing and starting what they need.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
npm run build >/dev/null
exec npx vitest run "$@"
