#!/usr/bin/env bash
# AdvMaPLe, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new AdvMaPLe vit_b32_ep10_batch4_2ctx_notransform "$@"
