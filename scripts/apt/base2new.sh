#!/usr/bin/env bash
# APT, base-to-new generalization: base2new.sh DATASET SEED [CFG] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" base2new APT vit_b32_ep50 "$@"
