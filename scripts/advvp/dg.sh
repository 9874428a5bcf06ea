#!/usr/bin/env bash
# AdvVP, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg AdvVP vit_b32_ep10_batch4 "$@"
