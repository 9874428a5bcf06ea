"""The runs each grid point performs (as the protocol runner plans them) and the chains that must not overlap.

Two points that write the same run folder (xd and dg of one method and seed share ``transfer/train/...``; a
repeated point) would meet the folder's one-writer lock, so they are put in one chain: a chain runs its points one
after another in one worker or one job, and chains run in parallel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from ..errors import UserError
from ..protocols.methods import check_offers, method_table, resolve_method
from ..protocols.runs import parse_call, plan_call
from ..registry import Method
from .grid import Point


def resolve_methods(names: Sequence[str]) -> Dict[str, Method]:
    """Script folder -> method for each method named by folder or trainer name, in order."""
    table = method_table()
    methods = [resolve_method(name, table) for name in names]
    return {m.script_folder: m for m in methods}


@dataclass(frozen=True)
class RunRef:
    """One train.py run of a point: ``kind`` is train, train+test or eval (the runner's ``[run]`` line); ``command``
    is its train.py command line as planned (used to check its config; not kept in the state folder)."""

    kind: str
    folder: str
    command: Tuple[str, ...] = field(default=(), compare=False)


def point_runs(point: Point, method: Method, env: Dict[str, str]) -> List[RunRef]:
    """The runs of a point, as the protocol runner plans them (nothing is run); a bad point is a UserError."""
    try:
        call_env = {**os.environ, **env, **point.env}
        check_offers(method, point.protocol)
        steps = plan_call(method, parse_call(point.protocol, point.args, call_env), call_env)
    except UserError as exc:
        raise UserError(f"grid point {point.id}: {exc}") from exc
    return [RunRef(step.kind, str(step.folder), step.command) for step in steps]


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
