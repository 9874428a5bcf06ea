#!/usr/bin/env bash
# APT, few-shot learning: fewshot.sh DATASET [SHOTS ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" fewshot APT vit_b32_ep50 "$@"
