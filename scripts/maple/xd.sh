#!/usr/bin/env bash
# MaPLe, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd MaPLe vit_b16_c2_ep5_batch4_2ctx "$@"
