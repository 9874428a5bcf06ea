#!/usr/bin/env bash
# VPT, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new VPT vit_b16_c2_ep5_batch4_4 "$@"
