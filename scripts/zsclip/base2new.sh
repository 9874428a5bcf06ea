#!/usr/bin/env bash
# ZeroshotCLIP, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new ZeroshotCLIP vit_b16 "$@"
