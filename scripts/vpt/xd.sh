#!/usr/bin/env bash
# VPT, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd VPT vit_b16_c2_ep5_batch4_4 "$@"
