"""Robustness report of a trained run (or of zero-shot CLIP): curves, AutoAttack, transfer, Square, per class, and
gradient-masking flags, written to ``<run>/robust_report/`` (report.md, report.json, PNG plots).

    python tools/robust_report.py output/base2new/train_base/synth_shapes/shots_16/CAPT/synth/seed1 --quick
    python tools/robust_report.py --zero-shot configs/datasets/synth_shapes.yaml \\
        --config-file configs/trainers/ZeroshotCLIP/synth.yaml --out output/robust_report/zsclip --quick
    python tools/robust_report.py RUN --strict      # exit status 1 when a gradient-masking flag is raised

See docs/ROBUSTNESS.md.
"""

import sys

from promptengine.cli import run_main
from promptengine.robustness.cli import main

if __name__ == "__main__":
    sys.exit(run_main(main))
