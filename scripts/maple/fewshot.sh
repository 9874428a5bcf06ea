#!/usr/bin/env bash
# MaPLe, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot MaPLe vit_b16_c2_ep5_batch4_2ctx "$@"
