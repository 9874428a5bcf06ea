#!/usr/bin/env bash
# APT, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg APT vit_b32_ep50 "$@"
