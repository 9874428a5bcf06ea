#!/usr/bin/env bash
# CoOp, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new CoOp vit_b16_ep50 "$@"
