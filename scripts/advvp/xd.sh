#!/usr/bin/env bash
# AdvVP, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd AdvVP vit_b32_ep10_batch4 "$@"
