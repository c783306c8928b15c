#!/usr/bin/env bash
# The whole suite as CI runs it: lint, types, then every test. Never passes while running no test.
set -uo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ruff check src tests bench dags lambda || exit 1
.venv/bin/mypy || exit 1
.venv/bin/pytest -q -p no:cacheprovider --durations=20 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
