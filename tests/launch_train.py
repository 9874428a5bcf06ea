"""Run train.py in a subprocess with the test-only in-memory datasets registered (``ToyColors``)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tests.toy_data  # noqa: E402,F401
import train  # noqa: E402
from promptengine.cli import run_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_main(lambda: train.main(sys.argv[1:])))
