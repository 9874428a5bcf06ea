#!/usr/bin/env bash
# The one implementation behind every scripts/<method>/{base2new,fewshot,xd,dg,zsrobust}.sh and scripts/compare_*.sh:
# picks the Python interpreter (PYTHON, else the repository's .venv, else python) and runs the protocol runner
# (promptengine/protocols, through tools/run_protocol.py), which asks the trainer registry for the method's trainer
# and default config; or, when LAUNCHER or JOBS is set, tools/sweep.py, which runs the same calls through a launcher
# (docs/EXPERIMENTS.md).
#   protocol.sh METHOD PROTOCOL ARGS...       (METHOD: a script folder or trainer name; from a method's wrapper)
#   protocol.sh compare PROTOCOL [OPTIONS...] (from a compare_<protocol>.sh script)
set -euo pipefail
repo=$(dirname "$(dirname "$(dirname "$(realpath "${BASH_SOURCE[0]}")")")")
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then PYTHON=$repo/.venv/bin/python; else PYTHON=python; fi
fi
export PYTHON
if [ -n "${LAUNCHER:-}${JOBS:-}" ]; then
  exec "$PYTHON" "$repo/tools/sweep.py" script "$@"
fi
exec "$PYTHON" "$repo/tools/run_protocol.py" "$@"
