#!/usr/bin/env bash
# Create .venv (if missing), install the project's requirements into it and generate the per-method protocol
# wrappers from the trainer registry. Idempotent; prints one line when done (and one when wrappers changed).
# Usage: bash scripts/setup.sh [dev]   ("dev" adds test/lint tools and the optional extras)
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
req=requirements.txt
[ "${1:-}" = "dev" ] && req=requirements-dev.txt
stamp=".venv/.installed-$(basename "$req" .txt)-$(sha1sum "$req" requirements.txt | sha1sum | cut -c1-12)"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv (first run: installs torch 2.14.1 and CLIP, about 1-2 minutes)"
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q -r "$req"
  touch "$stamp"
fi
.venv/bin/python -m promptengine.protocols.scripts  # scripts/<method>/<protocol>.sh from the trainer registry
echo "Environment ready: .venv ($req)"
