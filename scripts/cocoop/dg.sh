#!/usr/bin/env bash
# CoCoOp, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
