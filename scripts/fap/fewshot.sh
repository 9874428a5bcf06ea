#!/usr/bin/env bash
# FAP, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot FAP vit_b32_ep10_batch4_2ctx_notransform "$@"
