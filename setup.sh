#!/usr/bin/env bash
# Creates .venv with the pinned CPU torch and gallon (editable, with test tools). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test]'
echo "gallon installed in .venv; activate it with: . .venv/bin/activate"
