"""The runs each grid point performs (from the protocol runner's own dry run) and the chains that must not overlap.

Two points that write the same run folder (xd and dg of one method and seed share ``transfer/train/...``; a
repeated point) would meet the folder's one-writer lock, so they are put in one chain: a chain runs its points one
after another in one worker or one job, and chains run in parallel.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Sequence, Tuple

from ..errors import UserError
from .grid import REPO, Point


def protocol_runner():
    """tools/run_protocol.py, the one implementation of the protocols (folder layout, options tag)."""
    tools = str(REPO / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import run_protocol  # deferred: a script under tools/, importable only once its folder is on the path

    return run_protocol


def resolve_methods(names: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """Script folder -> (trainer, default config) for each method named by folder or trainer name, in order."""
    runner = protocol_runner()
    table = runner.method_table()
    try:
        folders = [runner.resolve_method(name, table) for name in names]
    except runner.ProtocolError as exc:
        raise UserError(str(exc)) from exc
    return {folder: table[folder] for folder in folders}


@contextlib.contextmanager
def patched_environ(env: Dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class RunRef:
    """One train.py run of a point: ``kind`` is train, train+test or eval (the runner's ``[run]`` line); ``command``
    is its train.py command line from the dry run (used to check its config; not kept in the state folder)."""

    kind: str
    folder: str
    command: Tuple[str, ...] = field(default=(), compare=False)


def point_runs(point: Point, method: Tuple[str, str], env: Dict[str, str]) -> List[RunRef]:
    """The runs of a point, from ``run_protocol`` with DRY_RUN=1 (nothing is run); a bad point is a UserError."""
    runner = protocol_runner()
    out, err = io.StringIO(), io.StringIO()
    with patched_environ({**env, **point.env, "DRY_RUN": "1"}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = runner.main([point.protocol, method[0], method[1], *point.args])
    if code != 0:
        message = err.getvalue().strip().removeprefix("error: ")
        raise UserError(f"grid point {point.id}: {message}")
    runs: List[RunRef] = []
    for line in out.getvalue().splitlines():
        if line.startswith("[run]"):
            _, kind, folder = line.split(maxsplit=2)
            runs.append(RunRef(kind, folder))
        elif line.startswith("  ") and runs and not runs[-1].command:  # the dry run's command of that run
            runs[-1] = RunRef(runs[-1].kind, runs[-1].folder, tuple(shlex.split(line)))
    return runs


def chains(points: Sequence[Point], runs: Dict[str, List[RunRef]]) -> List[List[str]]:
    """Point ids grouped so that no two groups share a run folder (union of points through shared folders)."""
    parent = {p.id: p.id for p in points}

    def root(pid: str) -> str:
        while parent[pid] != pid:
            parent[pid] = parent[parent[pid]]
            pid = parent[pid]
        return pid

    owner: Dict[str, str] = {}
    for point in points:
        for run in runs[point.id]:
            first = owner.setdefault(run.folder, point.id)
            parent[root(point.id)] = root(first)
    groups: Dict[str, List[str]] = {}
    for point in points:  # points keep the grid's order inside and across chains
        groups.setdefault(root(point.id), []).append(point.id)
    return list(groups.values())
