#!/usr/bin/env bash
# CoCoOp, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
