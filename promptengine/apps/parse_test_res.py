"""``capt-parse-test-res``: mean +- std over seed folders from log.txt (the same as ``python tools/parse_test_res.py``)."""

import sys

from promptengine.reporting.cli import parse_test_res_main


def entry() -> int:
    return parse_test_res_main()


if __name__ == "__main__":
    sys.exit(entry())
