#!/usr/bin/env bash
# Idempotent set-up: creates .venv with segue and its test tools installed.
# Re-runs pip only when pyproject.toml or constraints.txt changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.segue-install-stamp"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # torch first, pinned, so that nothing later resolves an unpinned (CUDA) build.
    "$VENV/bin/python" -m pip install --quiet -c constraints.txt "torch==2.13.0"
    "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"
    echo "$want" > "$stamp"
fi
