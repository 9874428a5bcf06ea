#!/usr/bin/env bash
# CAPT, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg CAPT vit_b32_ep10_batch4_2ctx_notransform "$@"
