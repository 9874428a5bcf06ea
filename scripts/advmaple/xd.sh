#!/usr/bin/env bash
# AdvMaPLe, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd AdvMaPLe vit_b32_ep10_batch4_2ctx_notransform "$@"
