#!/usr/bin/env bash
# IVLP, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg IVLP vit_b16_c2_ep5_batch4_2+2ctx "$@"
