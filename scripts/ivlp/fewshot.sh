#!/usr/bin/env bash
# IVLP, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot IVLP vit_b16_c2_ep5_batch4_2+2ctx "$@"
