"""Train or evaluate a prompt-learning method on CLIP (CoOp-compatible command line; see promptengine/apps/train.py).

    python train.py --root $DATA --trainer CAPT --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CAPT/vit_b32_ep10.yaml --output-dir output/... --seed 1 [KEY VALUE ...]
"""

import sys

from promptengine.apps.train import entry, main  # noqa: F401  (the CoOp-style API)
from promptengine.apps.train_args import build_parser, cli_overrides  # noqa: F401

if __name__ == "__main__":
    sys.exit(entry())
