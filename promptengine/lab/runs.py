"""Running protocol scripts with their output in log files, and the options every study command shares (the demo, the
phenomena study, the defense study)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional


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


def add_study_options(ap: argparse.ArgumentParser) -> None:
    """--seeds, --analyse-only, --bootstrap and --jobs, the same in every study command."""
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--analyse-only", metavar="DIR", default="", help="no runs: the table from DIR's results")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws per interval")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (one thread each; default 2)")


def earlier_output(folder: str) -> Optional[Path]:
    """The output root of an earlier study (``--analyse-only``), or None after a one-line error."""
    out = Path(folder)
    if not out.is_dir():
        print(f"error: --analyse-only {out}: no such folder (pass the output root of an earlier study)", file=sys.stderr)
        return None
    return out


def study_environment(out: Path, extra: str, shots: str) -> Dict[str, str]:
    """The protocol scripts' environment: one thread per run, the study's output root, options and shots."""
    return dict(os.environ, OMP_NUM_THREADS="1", OUTPUT=str(out), EXTRA_OPTS=extra, SHOTS=shots, WORLD="synth",
                PYTHON=sys.executable, PYTHONUNBUFFERED="1")
