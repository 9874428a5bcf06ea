"""The weights catalogue: list, check and pin public CLIP towers (see promptengine/weights/cli.py, docs/WEIGHTS.md).

    python tools/weights.py list | check [NAME ...] | pin NAME FILE
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from promptengine.weights.cli import entry  # noqa: E402

if __name__ == "__main__":
    sys.exit(entry())
