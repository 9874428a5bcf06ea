#!/usr/bin/env bash
# ZeroshotCLIP, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg ZeroshotCLIP vit_b16 "$@"
