#!/usr/bin/env bash
# VPT, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg VPT vit_b16_c2_ep5_batch4_4 "$@"
