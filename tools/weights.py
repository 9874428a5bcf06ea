"""The weights catalogue: list, check and pin public CLIP towers (see promptengine/apps/weights.py, docs/WEIGHTS.md).

    python tools/weights.py list | check [NAME ...] | pin NAME FILE
"""

import sys

from promptengine.apps.weights import entry

if __name__ == "__main__":
    sys.exit(entry())
