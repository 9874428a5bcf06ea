"""The per-sweep state folder: the expanded grid, one log and one small state record per point.

    <state>/sweep.json          the points, their runs, the chains and the scripts' environment
    <state>/logs/<point>.log    everything the point's script printed (one file per point, appended on reruns)
    <state>/points/<point>.json submitted / running / finished (exit status), pid, host, job id, times

The records say what the launcher did; whether a point is done is decided from its run folders (status.py).
"""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..engine.runfolder import read_json, write_json_atomic
from ..errors import UserError
from .grid import Point
from .plan import RunRef

SWEEP_FILE = "sweep.json"


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


#: sweep.json: key -> type; each point: key -> type
PLAN_KEYS = {"name": str, "env": dict, "methods": dict, "axes": dict, "chains": list, "points": list, "runs": dict}
POINT_KEYS = {"id": str, "method": str, "protocol": str, "args": list, "env": dict}


def plan_problem(plan: Dict[str, Any]) -> Optional[str]:
    """What makes ``plan`` unreadable as a sweep.json (a missing or mistyped key), or None."""
    for key, kind in PLAN_KEYS.items():
        if not isinstance(plan.get(key), kind):
            return f"'{key}' is missing or not a {kind.__name__}"
    for i, point in enumerate(plan["points"]):
        if not isinstance(point, dict):
            return f"point {i + 1} is not a mapping"
        for key, kind in POINT_KEYS.items():
            if not isinstance(point.get(key), kind):
                return f"point {i + 1} has no '{key}' {kind.__name__}"
        if not isinstance(plan["runs"].get(point["id"]), list) or \
                not all(isinstance(r, list) and len(r) == 2 for r in plan["runs"][point["id"]]):
            return f"'runs' has no [kind, folder] list for point {point['id']}"
    if not all(isinstance(c, list) and all(isinstance(p, str) for p in c) for c in plan["chains"]):
        return "'chains' is not a list of point-id lists"
    if not all(isinstance(m, list) and len(m) == 2 for m in plan["methods"].values()):
        return "'methods' does not map each method to its [trainer, config]"
    return None


class SweepState:
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder).resolve()

    # ---- the plan ------------------------------------------------------------------------------------------------
    def save_plan(self, name: str, env: Dict[str, str], points: List[Point], runs: Dict[str, List[RunRef]],
                  chains: List[List[str]], methods: Dict[str, Any], axes: Dict[str, Any]) -> None:
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        (self.folder / "points").mkdir(exist_ok=True)
        write_json_atomic({
            "name": name, "env": env, "methods": methods, "axes": axes, "chains": chains,
            "points": [p.to_dict() for p in points],
            "runs": {pid: [[r.kind, r.folder] for r in refs] for pid, refs in runs.items()},
        }, str(self.folder / SWEEP_FILE))

    def load_plan(self) -> Dict[str, Any]:
        plan = read_json(str(self.folder / SWEEP_FILE))
        if plan is None:
            raise UserError(f"no sweep in {self.folder} (no readable {SWEEP_FILE}): start it with `sweep.py run`, "
                            "or pass the --state folder it printed")
        problem = plan_problem(plan)
        if problem:
            raise UserError(f"{self.folder / SWEEP_FILE} is not a sweep record this version can read ({problem}); "
                            "run the grid again with `sweep.py run` (finished runs are kept and skipped)")
        return plan

    def points(self) -> Dict[str, Point]:
        return {d["id"]: Point.from_dict(d) for d in self.load_plan()["points"]}

    def runs(self) -> Dict[str, List[RunRef]]:
        return {pid: [RunRef(k, f) for k, f in refs] for pid, refs in self.load_plan()["runs"].items()}

    # ---- per-point records ---------------------------------------------------------------------------------------
    def log_path(self, pid: str) -> Path:
        return self.folder / "logs" / f"{pid}.log"

    def record_path(self, pid: str) -> Path:
        return self.folder / "points" / f"{pid}.json"

    def record(self, pid: str) -> Optional[Dict[str, Any]]:
        return read_json(str(self.record_path(pid)))

    def write_record(self, point: str, fields: Dict[str, Any]) -> None:
        write_json_atomic(fields, str(self.record_path(point)))

    def mark_submitted(self, pid: str, job: str) -> None:
        self.write_record(pid, {"status": "submitted", "job": job, "submitted": now()})

    def mark_running(self, pid: str, device: str = "") -> None:
        self.write_record(pid, {"status": "running", "pid": os.getpid(), "host": socket.gethostname(),
                                "started": now(), "job": os.environ.get("SLURM_JOB_ID", ""), "device": device})

    def mark_finished(self, pid: str, code: int) -> None:
        record = self.record(pid) or {}
        self.write_record(pid, {**record, "status": "finished", "exit": code, "ended": now()})
