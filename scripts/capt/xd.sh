#!/usr/bin/env bash
# CAPT, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd CAPT vit_b32_ep10_batch4_2ctx_notransform "$@"
