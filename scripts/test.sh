#!/usr/bin/env bash
# The test command of the README: the whole suite (unit, CLI integration, learning-effect tests) on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PROMPTENGINE_CACHE=${PROMPTENGINE_CACHE:-$PWD/.cache/promptengine}
exec "$PY" -m pytest -n 2 -q "$@"
