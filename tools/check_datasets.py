"""Check the benchmark datasets under a data root (see promptengine/apps/check_datasets.py; installed: capt-check-datasets).

    python tools/check_datasets.py --root $DATA [DATASET ...] [--check-images]
"""

import sys

from promptengine.apps.check_datasets import *  # noqa: F401,F403  (the tool's functions, for scripts and tests)
from promptengine.apps.check_datasets import entry

if __name__ == "__main__":
    sys.exit(entry())
