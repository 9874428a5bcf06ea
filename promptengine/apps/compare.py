"""``capt-compare``: side-by-side tables of an output tree (the same as ``python tools/compare.py``)."""

import sys

from promptengine.reporting.cli import compare_main


def entry() -> int:
    return compare_main()


if __name__ == "__main__":
    sys.exit(entry())
