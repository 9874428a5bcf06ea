#!/usr/bin/env bash
# IVLP, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new IVLP vit_b16_c2_ep5_batch4_2+2ctx "$@"
