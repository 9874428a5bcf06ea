"""Dassl-style logging: stdout is tee'd into ``<output>/log.txt`` (a rerun gets ``log.txt-<timestamp>``).

Logging starts buffered in memory and the file is only created once the run is known to be valid
(config, data and model built), so a failing command leaves no partial output behind.
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import Optional, TextIO


class Tee:
    """Writes to the console and to a sink (memory first, then the log file); ``print`` is the logging API."""

    def __init__(self, console: TextIO) -> None:
        self.console = console
        self.sink: TextIO = io.StringIO()
        self.path: Optional[str] = None

    def write(self, msg: str) -> int:
        self.console.write(msg)
        self.sink.write(msg)
        return len(msg)

    def flush(self) -> None:
        self.console.flush()
        self.sink.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.console.fileno()

    def commit(self, path: str) -> None:
        buffered = self.sink.getvalue() if isinstance(self.sink, io.StringIO) else ""
        self.sink = open(path, "a", buffering=1)
        self.sink.write(buffered)
        self.path = path

    def close(self) -> None:
        if not isinstance(self.sink, io.StringIO):
            self.sink.close()


_ACTIVE: Optional[Tee] = None


def start_logging() -> None:
    """Capture stdout in memory until ``commit_log`` names the output dir."""
    global _ACTIVE
    close_logger()
    _ACTIVE = Tee(sys.stdout)
    sys.stdout = _ACTIVE


def commit_log(output_dir: str, enabled: bool = True) -> str:
    """Create the log file (``log.txt`` or ``log.txt-<timestamp>`` if one exists) and flush the buffer into it."""
    if _ACTIVE is None:
        start_logging()
    if not enabled:  # not the main process: keep nothing (the buffer would grow for the whole run)
        _ACTIVE.sink = open(os.devnull, "w")
        return ""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "log.txt")
    if os.path.exists(path):
        path = path + "-" + time.strftime("%Y-%m-%d-%H-%M-%S")
    _ACTIVE.commit(path)
    return path


def close_logger() -> None:
    global _ACTIVE
    if _ACTIVE is not None:
        sys.stdout = _ACTIVE.console
        _ACTIVE.close()
        _ACTIVE = None
