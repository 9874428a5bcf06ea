"""Lay out ImageNet's flat val/ folder by class (see promptengine/apps/imagenet_val_layout.py).

    python tools/imagenet_val_layout.py --root $DATA/imagenet --labels LOC_val_solution.csv
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from promptengine.apps.imagenet_val_layout import entry  # noqa: E402

if __name__ == "__main__":
    sys.exit(entry())
