#!/usr/bin/env bash
# README command 1: set up .venv if needed, then run the embedded-world comparison (tools/demo.py; --size ci for a tiny run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec .venv/bin/python tools/demo.py "$@"
