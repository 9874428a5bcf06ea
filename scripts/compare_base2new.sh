#!/usr/bin/env bash
# Run methods x datasets x seeds with the base2new protocol, then compare them (docs/EXPERIMENTS.md):
#   compare_base2new.sh [--methods M ...] [--datasets D ...] [--seeds S ...] [--shots K ...] [-- compare.py options]
exec bash "$(dirname "$0")/lib/protocol.sh" compare base2new "$@"
