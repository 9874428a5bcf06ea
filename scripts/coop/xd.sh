#!/usr/bin/env bash
# CoOp, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd CoOp vit_b16_ep50 "$@"
