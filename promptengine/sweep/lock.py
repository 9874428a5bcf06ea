"""One ``sweep.py run`` per sweep state folder, and never beside the points of a killed one.

Two sweeps of one grid on one output would each run every point, meet at the run folders' locks and both report
failures they did not have. The sweep holds ``<state>/.lock`` (the run folders' lock: atomic, a dead owner's lock
is taken over) from writing its plan to its last status line; a second one stops at once with one line. Taking
over a killed sweep's lock also checks that none of its points still runs on this host (a worker that outlived it).
"""

from __future__ import annotations

import os
import socket

from ..engine.runlock import RunFolderBusy, RunLock, read_owner
from ..errors import UserError
from .lifetime import pid_alive
from .state import SweepState


class SweepBusy(UserError):
    """Another sweep runs on this state folder, or points of a killed one still run."""


def hold_sweep(state: SweepState) -> RunLock:
    """The sweep's lock, or SweepBusy naming the sweep process (or the points) in the way."""
    lock = RunLock(str(state.folder))
    try:
        lock.acquire()
    except RunFolderBusy:
        owner = read_owner(lock.path)
        who = (f"process {owner.get('pid')} on {owner.get('host')} since {owner.get('start')}" if owner
               else "a process that left an unreadable lock")
        raise SweepBusy(f"this sweep is already running ({who}; state {state.folder}): wait for it and follow it "
                        f"with `sweep.py status --state {state.folder}`, or delete {lock.path} if that process "
                        "is gone") from None
    try:
        _no_orphans(state)
    except SweepBusy:
        lock.release()
        raise
    return lock


def _no_orphans(state: SweepState) -> None:
    """Points still marked running by a live process on this host belong to a sweep that did not end cleanly."""
    here = socket.gethostname()
    points = state.folder / "points"
    busy = []
    for record_file in sorted(points.glob("*.json")) if points.is_dir() else []:
        record = read_owner(str(record_file))
        pid = record.get("pid")
        if record.get("status") == "running" and record.get("host") == here and isinstance(pid, int) \
                and pid != os.getpid() and pid_alive(pid):
            busy.append(f"{record_file.stem} (process {pid})")
    if busy:
        raise SweepBusy(f"point(s) of an earlier run of this sweep still run: {', '.join(busy[:3])}"
                        f"{' and more' if len(busy) > 3 else ''}; wait for them to end or stop those processes, "
                        "then run the sweep again")
