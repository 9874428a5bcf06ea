#!/usr/bin/env bash
# Run methods x seeds with the zsrobust protocol, then compare them (docs/ZSROBUST.md):
#   compare_zsrobust.sh [--methods M ...] [--datasets TARGET ...] [--seeds S ...] [--shots K] [-- compare.py options]
exec bash "$(dirname "$0")/lib/protocol.sh" compare zsrobust "$@"
