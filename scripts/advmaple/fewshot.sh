#!/usr/bin/env bash
# AdvMaPLe, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot AdvMaPLe vit_b32_ep10_batch4_2ctx_notransform "$@"
