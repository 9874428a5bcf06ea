"""Running one protocol script with its output in a log file: what the demo and the phenomena study share."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List


def run_logged(cmd: List[str], env: Dict[str, str], log: Path, cwd: Path) -> float:
    """Run ``cmd`` with stdout and stderr into ``log``; seconds taken. A failure prints the log's tail and stops with
    one line naming the command and the log."""
    start = time.time()
    with open(log, "w") as f:
        code = subprocess.call(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=cwd)
    if code != 0:
        tail = log.read_text().strip().splitlines()[-5:] if log.exists() else []
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"error: {' '.join(str(c) for c in cmd[1:])} failed (exit {code}); full log: {log}")
    return time.time() - start
