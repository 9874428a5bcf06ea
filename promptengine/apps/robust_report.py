"""``capt-robust-report``: robustness report of a run or of zero-shot CLIP (the same as ``python tools/robust_report.py``)."""

import sys

from promptengine.cli import run_main
from promptengine.robustness.cli import main


def entry() -> int:
    return run_main(main)


if __name__ == "__main__":
    sys.exit(entry())
