#!/usr/bin/env bash
# ZeroshotCLIP, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd ZeroshotCLIP vit_b16 "$@"
