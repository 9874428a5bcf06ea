#!/usr/bin/env bash
# IVLP, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd IVLP vit_b16_c2_ep5_batch4_2+2ctx "$@"
