#!/usr/bin/env bash
# Run methods x datasets x seeds with the xd protocol, then compare them (docs/EXPERIMENTS.md):
#   compare_xd.sh [--methods M ...] [--datasets D ...] [--seeds S ...] [--shots K ...] [-- compare.py options]
exec bash "$(dirname "$0")/lib/protocol.sh" compare xd "$@"
