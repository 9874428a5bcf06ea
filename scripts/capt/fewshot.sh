#!/usr/bin/env bash
# CAPT, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot CAPT vit_b32_ep10_batch4_2ctx_notransform "$@"
