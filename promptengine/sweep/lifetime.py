"""Local workers live no longer than the sweep that started them.

A pool worker outlives a SIGKILLed parent: it would go on with the chains already queued to it, beside a rerun of the
sweep, then wait forever. So each worker asks the kernel for SIGTERM when its parent dies (Linux ``prctl``
``PR_SET_PDEATHSIG``); on SIGTERM it ends the processes of its running point (the protocol script and its
``train.py``, found through ``/proc``) and exits. Where the kernel cannot do that, the worker checks between points
that its parent still runs and stops when it does not.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Dict, List, Optional

PR_SET_PDEATHSIG = 1
_parent: Optional[int] = None  # the sweep process of this worker (None: not a pool worker)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: it answered the signal


def descendants(pid: int) -> List[int]:
    """Every process below ``pid`` (children first), from /proc; empty where there is no /proc."""
    children: Dict[int, List[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _end_point_and_exit(*_: object) -> None:
    """SIGTERM in a worker: the sweep is gone (or stopping it); take the running point's processes along."""
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    os._exit(128 + signal.SIGTERM)


def _parent_death_signal(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def bind_to_parent(sweep_pid: int) -> None:
    """Pool initializer: die with the sweep process ``sweep_pid`` (see the module docstring)."""
    global _parent
    _parent = sweep_pid
    signal.signal(signal.SIGTERM, _end_point_and_exit)
    _parent_death_signal(signal.SIGTERM)
    if not parent_alive():  # the sweep died before the death signal was armed
        _end_point_and_exit()


def parent_alive() -> bool:
    """False in a pool worker whose sweep process is gone (checked between points)."""
    return _parent is None or pid_alive(_parent)
