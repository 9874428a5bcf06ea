#!/usr/bin/env bash
# APT, cross-dataset transfer: xd.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" xd APT vit_b32_ep50 "$@"
