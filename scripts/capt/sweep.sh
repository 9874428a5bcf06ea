#!/usr/bin/env bash
# CAPT over lambda (the consistency weight) and over its alpha modes: sweep.sh [DATASET] (docs/ROBUSTNESS.md)
exec bash "$(dirname "$0")/../lib/sweep.sh" capt "${1:-synth_shapes}" \
  lambda 0.5 "TRAINER.CAPT.LAMBDA 0.5" \
  lambda 1.5 "TRAINER.CAPT.LAMBDA 1.5" \
  lambda 3 "TRAINER.CAPT.LAMBDA 3.0" \
  lambda 6 "TRAINER.CAPT.LAMBDA 6.0" \
  alpha confidence "TRAINER.CAPT.ALPHA_MODE confidence" \
  alpha loss_ratio "TRAINER.CAPT.ALPHA_MODE loss_ratio" \
  alpha fixed0 "TRAINER.CAPT.ALPHA_MODE fixed TRAINER.CAPT.ALPHA_FIXED 0.0" \
  alpha fixed1 "TRAINER.CAPT.ALPHA_MODE fixed TRAINER.CAPT.ALPHA_FIXED 1.0"
