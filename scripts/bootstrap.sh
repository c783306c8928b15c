#!/usr/bin/env bash
# Create .venv from the lock file on a machine that has only Python 3.11+.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "feedline needs Python 3.11 or newer")'

if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
else
  # uv lives in its own small venv so that it never depends on the project venv's state.
  if [ ! -x .tools/bin/uv ]; then
    echo "==> installing uv $UV_VERSION into .tools/"
    "$PYTHON" -m venv .tools
    .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  fi
  UV=.tools/bin/uv
fi

stamp=.venv/.lock-stamp
want=$(cat requirements.lock pyproject.toml | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "==> creating .venv from requirements.lock"
[ -x .venv/bin/python ] || "$UV" venv --quiet --python "$PYTHON" .venv
"$UV" pip sync --quiet --python .venv/bin/python requirements.lock
"$UV" pip install --quiet --python .venv/bin/python --no-deps -e .
echo "$want" > "$stamp"
