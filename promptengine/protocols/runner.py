"""Performing a protocol call's runs, one ``train.py`` process each, in order; DRY_RUN=1 prints them instead.

Each run prints ``[run]  <kind> <folder>`` first (the sweep and the tests read these lines). An evaluation of a trained
model loads the epoch its training run ended with, read from that run's ``config.yaml`` once it has finished.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

from ..errors import UserError
from .runs import LATEST_EPOCH, TRAIN_RUN, Step


class RunFailed(Exception):
    """A train.py run (or a protocol script) exited non-zero; ``code`` is the status to exit with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as the shell reports it


def dry_run(env: Mapping[str, str]) -> bool:
    return env.get("DRY_RUN", "") not in ("", "0")


def call(cmd: Sequence[str], env: Mapping[str, str]) -> int:
    """Run one command with the caller's environment and unbuffered output; its exit status."""
    try:
        return subprocess.call(list(cmd), env=dict(env, PYTHONUNBUFFERED="1"))
    except OSError as exc:
        raise UserError(f"cannot start {cmd[0]} ({exc}); set PYTHON to the interpreter to use") from exc


def trained_epoch(folder: Path) -> int:
    """OPTIM.MAX_EPOCH of a finished training run, read from its config.yaml (the epoch its evaluations load)."""
    path = folder / "config.yaml"
    match = re.search(r"^OPTIM:\n(?:[ ].*\n)*?  MAX_EPOCH: (\d+)$", path.read_text() if path.is_file() else "",
                      re.MULTILINE)
    if not match:
        raise RunFailed(1, f"{path} has no OPTIM.MAX_EPOCH (the training run did not start?)")
    return int(match.group(1))


def with_epoch(command: Sequence[str], epoch: int) -> List[str]:
    """The command with the ``--load-epoch`` placeholder replaced by the trained epoch."""
    out = list(command)
    for i, word in enumerate(out[:-1]):
        if word == "--load-epoch" and out[i + 1] == LATEST_EPOCH and epoch > 0:
            out[i + 1] = str(epoch)
    return out


def execute(steps: Sequence[Step], env: Mapping[str, str]) -> None:
    """Perform (or, with DRY_RUN, print) the runs in order; the first failure stops with RunFailed."""
    epochs: Dict[Path, int] = {}
    for step in steps:
        print(f"[run]  {step.kind} {step.folder}", flush=True)
        if dry_run(env):
            print("  " + shlex.join(step.command), flush=True)
            continue
        command = list(step.command)
        if step.model is not None:
            if step.model not in epochs:
                epochs[step.model] = trained_epoch(step.model)
            command = with_epoch(command, epochs[step.model])
        code = call(command, env)
        if code != 0:
            raise RunFailed(code, f"train.py failed (exit status {code}) for {step.folder}")
        if step.kind == TRAIN_RUN:
            epochs[step.folder] = trained_epoch(step.folder)
