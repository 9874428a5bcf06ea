#!/usr/bin/env bash
# The README's test command: sets up .venv with the dev requirements if needed, then runs the whole suite
# (unit, CLI integration, learning-effect tests) on the CPU. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PROMPTENGINE_CACHE=${PROMPTENGINE_CACHE:-$PWD/.cache/promptengine}
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist worksteal -q "$@"  # worksteal: long end-to-end tests do not leave a worker idle at the end
