"""done / running / failed / pending per grid point, decided from the run folders first, then the point's record.

A point is **done** when every run that produces a result has its ``results.json`` and, for an evaluation of a
trained model, that result was computed from the training folder's current run (its training fingerprint equals
``identity.json``'s). Exit statuses alone do not decide it: a point may have been finished by an earlier sweep or by
hand, and a zero exit without results (an interrupted script) is not done.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Dict, List, Optional

from ..engine.runfolder import IDENTITY_NAME, RESULTS_NAME, read_json
from .plan import RunRef
from .state import SweepState

STATES = ("done", "running", "failed", "pending")


@dataclass
class PointStatus:
    id: str
    state: str
    detail: str = ""
    log: str = ""


def missing_result(runs: List[RunRef]) -> Optional[str]:
    """The first run folder whose result is missing or stale, or None when the point's results are all there."""
    trained = next((r.folder for r in runs if r.kind == "train"), None)
    training = None
    if trained is not None:
        training = (read_json(os.path.join(trained, IDENTITY_NAME)) or {}).get("training")
        if training is None:
            return trained
    for run in runs:
        if run.kind == "train":
            continue
        result = read_json(os.path.join(run.folder, RESULTS_NAME))
        if result is None:
            return run.folder
        if training is not None and (result.get("identity") or {}).get("training") != training:
            return run.folder
    return None


def process_alive(record: Dict) -> bool:
    """Whether the worker that marked the point running still runs (unknowable on another host: assumed so)."""
    if record.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(record.get("pid", 0)), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def point_status(state: SweepState, pid: str, runs: List[RunRef]) -> PointStatus:
    record = state.record(pid) or {}
    log = str(state.log_path(pid))
    running = record.get("status") == "running" and process_alive(record)
    if running:
        where = f"pid {record.get('pid')} on {record.get('host')}" + (f", job {record['job']}" if record.get("job") else "")
        return PointStatus(pid, "running", where, log)
    missing = missing_result(runs)
    if missing is None:
        return PointStatus(pid, "done", log=log)
    if record.get("status") == "finished":
        code = record.get("exit")
        why = f"exit status {code}" if code else f"exited 0 but {missing} has no current result"
        return PointStatus(pid, "failed", why, log)
    if record.get("status") == "running":
        return PointStatus(pid, "failed", f"interrupted (process {record.get('pid')} is gone)", log)
    if record.get("status") == "submitted":
        return PointStatus(pid, "pending", f"job {record.get('job')}")
    return PointStatus(pid, "pending")


def sweep_status(state: SweepState) -> List[PointStatus]:
    runs = state.runs()
    return [point_status(state, pid, runs[pid]) for pid in state.points()]


def format_status(statuses: List[PointStatus], folder: str) -> str:
    counts = {s: sum(p.state == s for p in statuses) for s in STATES}
    width = max((len(p.id) for p in statuses), default=0)
    lines = [f"sweep {folder}: " + ", ".join(f"{counts[s]} {s}" for s in STATES)]
    for p in statuses:
        tail = p.detail + (f"; log {p.log}" if p.state == "failed" else "")
        lines.append(f"  {p.state:<8} {p.id:<{width}}  {tail}".rstrip())
    return "\n".join(lines)
