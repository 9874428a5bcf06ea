"""Check the benchmark datasets under a data root (see promptengine/apps/check_datasets.py; installed: capt-check-datasets).

    python tools/check_datasets.py --root $DATA [DATASET ...] [--check-images]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from promptengine.apps.check_datasets import *  # noqa: E402,F401,F403  (the tool's functions, for scripts and tests)
from promptengine.apps.check_datasets import entry  # noqa: E402

if __name__ == "__main__":
    sys.exit(entry())
