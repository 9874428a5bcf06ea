#!/usr/bin/env bash
# AdvVP, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot AdvVP vit_b32_ep10_batch4 "$@"
