"""Turning UserError into one line on stderr and exit status 2 (no traceback)."""

from __future__ import annotations

import sys
from typing import Callable

from .engine.logging import close_logger
from .errors import UserError


def run_main(main: Callable[[], int]) -> int:
    try:
        return main()
    except UserError as exc:
        close_logger()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
