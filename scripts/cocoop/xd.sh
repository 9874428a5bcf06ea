#!/usr/bin/env bash
# CoCoOp, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
