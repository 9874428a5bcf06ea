#!/usr/bin/env bash
# AdvVP, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new AdvVP vit_b32_ep10_batch4 "$@"
