#!/usr/bin/env bash
# ZeroshotCLIP, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot ZeroshotCLIP vit_b16 "$@"
