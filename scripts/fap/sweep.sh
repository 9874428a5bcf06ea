#!/usr/bin/env bash
# FAP over lambda (the weight of its adversarial term): sweep.sh [DATASET] (docs/ROBUSTNESS.md)
exec bash "$(dirname "$0")/../lib/sweep.sh" fap "${1:-synth_shapes}" \
  lambda 0.5 "TRAINER.FAP.LAMBDA 0.5" \
  lambda 1.5 "TRAINER.FAP.LAMBDA 1.5" \
  lambda 3 "TRAINER.FAP.LAMBDA 3.0" \
  lambda 6 "TRAINER.FAP.LAMBDA 6.0"
