"""Lay out ImageNet's flat val/ folder by class (see promptengine/apps/imagenet_val_layout.py).

    python tools/imagenet_val_layout.py --root $DATA/imagenet --labels LOC_val_solution.csv
"""

import sys

from promptengine.apps.imagenet_val_layout import entry

if __name__ == "__main__":
    sys.exit(entry())
