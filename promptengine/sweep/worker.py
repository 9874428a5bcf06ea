"""Running grid points: each is one protocol-script process whose output goes to the point's log.

A chain's points run one after another (they share run folders); the worker's thread count reaches train.py
through OMP_NUM_THREADS/MKL_NUM_THREADS. The launcher variables are removed from the script's environment so a
point never starts a sweep of its own.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from typing import Dict, Iterator, List

from .lifetime import bind_to_parent, parent_alive
from .state import SweepState, now

LAUNCH_VARS = ("LAUNCHER", "JOBS", "THREADS", "DEVICES")
_device = ""  # this worker's GPU (local launcher with --devices), set once when the pool starts it
_stop = None  # the local pool's stop event: set on Ctrl-C, no worker starts another point once it is set


def start_worker(slots, stop, sweep_pid: int) -> None:
    """Pool initializer: live no longer than the sweep process ``sweep_pid`` (lifetime.py); take one device from the
    queue for the life of this worker process; keep the stop event. An idle worker ignores Ctrl-C (the pool stays
    whole while the main process winds it down); a running point does not (``interruptible``)."""
    global _device, _stop
    bind_to_parent(sweep_pid)
    _device, _stop = slots.get(), stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt here, and the point's processes start with the default SIGINT action."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def point_environment(base: Dict[str, str], sweep_env: Dict[str, str], point_env: Dict[str, str],
                      threads: int) -> Dict[str, str]:
    env = {k: v for k, v in base.items() if k not in LAUNCH_VARS and k != "DRY_RUN"}
    env.update(sweep_env)
    env.update(point_env)
    # train.py runs with the interpreter running the sweep (an installed capt-sweep's venv needs no activating),
    # unless PYTHON names another
    if not env.get("PYTHON"):
        env["PYTHON"] = sys.executable
    if threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if _device:
        env["CUDA_VISIBLE_DEVICES"] = _device
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_point(state: SweepState, pid: str, threads: int) -> int:
    plan = state.load_plan()
    point = state.points()[pid]
    env = point_environment(dict(os.environ), plan["env"], point.env, threads)
    cmd = ["bash", str(point.script), *point.args]
    state.mark_running(pid, _device)
    code = 1
    try:
        with open(state.log_path(pid), "a", encoding="utf-8") as log:
            shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted({**plan["env"], **point.env}.items()))
            given = ", ".join(f"{k}={env[k]}" for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if k in env)
            log.write(f"### {now()} point {pid} ({given})\n### {shown} {shlex.join(cmd)}\n")
            log.flush()
            code = subprocess.call(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.write(f"### {now()} exit status {code}\n")
    finally:
        state.mark_finished(pid, code)
    return code


def run_chain(folder: str, ids: List[str], threads: int) -> List[int]:
    """Run a chain's points in order (a failed point does not stop the next: each rerun skips what finished).

    Ctrl-C (KeyboardInterrupt in this process) stops the chain and, in a local pool, sets the stop event so that
    no worker starts another point; chains that find it set run nothing."""
    state = SweepState(folder)
    codes = []
    for pid in ids:
        if _stop is not None and _stop.is_set():
            break
        if not parent_alive():  # the sweep was killed: leave the rest of the chain to its rerun
            break
        try:
            with interruptible():
                codes.append(run_point(state, pid, threads))
        except KeyboardInterrupt:
            if _stop is not None:
                _stop.set()
            raise
    return codes


class ChainTask:
    """A chain as a submitit job. ``checkpoint`` makes it requeue on preemption or timeout: the rerun skips the
    finished runs and resumes an interrupted training from its newest checkpoint."""

    def __init__(self, folder: str, ids: List[str], threads: int) -> None:
        self.folder, self.ids, self.threads = folder, list(ids), threads

    def __call__(self) -> List[int]:
        codes = run_chain(self.folder, self.ids, self.threads)
        failed = [pid for pid, code in zip(self.ids, codes) if code != 0]
        if failed:
            raise RuntimeError(f"failed point(s): {' '.join(failed)} (logs in {self.folder}/logs)")
        return codes

    def checkpoint(self, *args, **kwargs):
        import submitit  # optional dependency: the slurm launcher only

        return submitit.helpers.DelayedSubmission(ChainTask(self.folder, self.ids, self.threads))
