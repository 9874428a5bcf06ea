#!/usr/bin/env bash
# CoOp, domain generalization: dg.sh SEED [TARGET ...] (docs/SCRIPTS.md)
exec bash "$(dirname "$0")/../lib/protocol.sh" dg CoOp vit_b16_ep50 "$@"
