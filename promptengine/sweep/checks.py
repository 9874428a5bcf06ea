"""Every run of a sweep checked before any point starts: a bad option value is one line, not a failure per point.

Each run's ``train.py`` command line (from the protocol runner's dry run) goes through train.py's own parsing and
config merging, so the checks are exactly those of a real start: unknown keys, wrong value types and the declared
config domains (``promptengine/config/domains.py``). Nothing is built or written. Warnings are printed once each.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Dict, List, Sequence, Tuple

from ..apps.train_args import configure
from ..errors import UserError
from .grid import Point
from .plan import RunRef

#: flags whose values differ per run but never reach a config domain (the dry run cannot know the epoch yet)
PER_RUN_FLAGS = ("--output-dir", "--model-dir", "--load-epoch")


def train_arguments(command: Sequence[str]) -> List[str]:
    """The arguments after the interpreter and ``train.py`` (or ``-m promptengine.apps.train``), without the
    per-run flags."""
    args = list(command[3:] if len(command) > 1 and command[1] == "-m" else command[2:])
    out: List[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
        elif word in PER_RUN_FLAGS:
            skip = True
        else:
            out.append(word)
    return out


def check_run_configs(points: Sequence[Point], runs: Dict[str, List[RunRef]]) -> None:
    """Build the config of every distinct run of the plan; the first bad one raises, naming its grid point."""
    checked: Dict[Tuple[str, ...], None] = {}
    warnings: Dict[str, None] = {}
    for point in points:
        for run in runs[point.id]:
            argv = tuple(train_arguments(run.command))
            if not argv or argv in checked:
                continue
            checked[argv] = None
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    configure(list(argv))
            except UserError as exc:
                raise UserError(f"grid point {point.id}: {exc}") from exc
            for line in err.getvalue().splitlines():
                warnings.setdefault(line.strip(), None)
    for line in warnings:
        if line:
            print(line, file=sys.stderr)
