#!/usr/bin/env bash
# CoCoOp, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
