#!/usr/bin/env bash
# CoOp, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot CoOp vit_b16_ep50 "$@"
