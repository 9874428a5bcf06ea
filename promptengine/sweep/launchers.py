"""Launchers: run the chains of a sweep one after another, in a local process pool, or as a Slurm job array."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from ..errors import UserError
from ..registry import CHECKOUT
from .grid import REPO
from .state import SweepState
from .worker import ChainTask, run_chain, start_worker

LAUNCHERS = ("local", "slurm", "sequential")
#: sweep.py flag / grid ``slurm:`` key -> submitit SlurmExecutor parameter
SLURM_KEYS = {"partition": "partition", "account": "account", "qos": "qos", "time": "time",
              "gpus": "gpus_per_node", "cpus": "cpus_per_task", "mem_gb": "mem", "constraint": "constraint",
              "job_name": "job_name", "nodes": "nodes", "exclude": "exclude"}


@dataclass
class Launch:
    launcher: str
    jobs: int  # parallel workers (local) or array tasks at once (slurm)
    threads: int  # threads per worker / CPUs per Slurm task
    slurm: Dict[str, Any] = field(default_factory=dict)
    wait: bool = False
    devices: List[str] = field(default_factory=list)  # local: GPU ids dealt to the workers, one each


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def cap_jobs(jobs: int, chains: int, launcher: str) -> Tuple[int, str]:
    """At most one worker (or array task) per chain, and locally at most one per core: more would sit idle, or
    start thousands of processes that oversubscribe the machine. Returns the jobs and a note when capped."""
    cores = os.cpu_count() or 1
    cap = max(1, min(chains, cores) if launcher == "local" else chains)
    if jobs <= cap:
        return jobs, ""
    limits = f"{chains} chain(s)" + (f", {cores} core(s)" if launcher == "local" else "")
    return cap, f" (capped from {jobs}: {limits})"


class SweepInterrupted(UserError):
    """Ctrl-C: the running points were stopped and no other point was started."""

    exit_code = 130


def interrupted_message(state: SweepState) -> str:
    return (f"interrupted: no further point was started; `sweep.py status` shows where each point stands "
            f"({state.folder}), and rerunning the same command continues (finished runs are skipped, interrupted "
            "trainings resume)")


def launch(state: SweepState, chains: List[List[str]], how: Launch) -> int:
    """Run (local, sequential) or submit (slurm) the chains; returns the number of failed chains (0 for a submission
    not waited for)."""
    if not chains:
        return 0
    if how.launcher == "sequential":
        try:
            return sum(any(run_chain(str(state.folder), ids, how.threads)) for ids in chains)
        except KeyboardInterrupt:
            raise SweepInterrupted(interrupted_message(state)) from None
    if how.launcher == "local":
        return launch_local(state, chains, how)
    if how.launcher == "slurm":
        return launch_slurm(state, chains, how)
    raise UserError(f"unknown launcher '{how.launcher}' (known: {' '.join(LAUNCHERS)})")


def launch_local(state: SweepState, chains: List[List[str]], how: Launch) -> int:
    """A pool of ``jobs`` worker processes; with ``devices``, worker i sees only GPU ``devices[i % len]``.

    Ctrl-C reaches the running points (the terminal signals the whole process group) and stops them; the pool then
    starts nothing more: queued chains are cancelled and workers check the stop event before each point."""
    failed = 0
    slots: Any = multiprocessing.Queue()
    stop: Any = multiprocessing.Event()
    for slot in range(max(1, how.jobs)):
        slots.put(how.devices[slot % len(how.devices)] if how.devices else "")
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, how.jobs), initializer=start_worker,
                                                initargs=(slots, stop, os.getpid())) as pool:
        futures = [pool.submit(run_chain, str(state.folder), ids, how.threads) for ids in chains]
        try:
            for future in concurrent.futures.as_completed(futures):
                failed += any(future.result())
        except KeyboardInterrupt:  # here, or a worker's (its future re-raises it)
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise SweepInterrupted(interrupted_message(state)) from None
    return failed


def slurm_parameters(how: Launch) -> Dict[str, Any]:
    params: Dict[str, Any] = {"job_name": "capt-sweep", "cpus_per_task": how.threads,
                              "array_parallelism": max(1, how.jobs)}
    for key, value in how.slurm.items():
        if value in (None, ""):
            continue
        if key not in SLURM_KEYS:
            raise UserError(f"unknown slurm setting '{key}' (known: {', '.join(sorted(SLURM_KEYS))})")
        params[SLURM_KEYS[key]] = f"{value}GB" if key == "mem_gb" else value
    # the job imports promptengine from this checkout wherever Slurm starts it
    if CHECKOUT:  # an installed package is importable as it is
        params["setup"] = [f"export PYTHONPATH={REPO}${{PYTHONPATH:+:$PYTHONPATH}}"]
    return params


def launch_slurm(state: SweepState, chains: List[List[str]], how: Launch) -> int:
    try:
        import submitit  # optional dependency: the slurm launcher only
    except ImportError:
        raise UserError("the slurm launcher needs submitit: pip install submitit") from None
    try:
        executor = submitit.SlurmExecutor(folder=str(state.folder / "slurm"), max_num_timeout=3,
                                          python=sys.executable)
    except RuntimeError as exc:
        raise UserError(f"the slurm launcher cannot submit from here: {exc} (use --launcher local)") from exc
    try:
        executor.update_parameters(**slurm_parameters(how))
    except ValueError as exc:
        raise UserError(f"bad slurm setting: {str(exc).splitlines()[0]}") from exc
    tasks = [ChainTask(str(state.folder), ids, how.threads) for ids in chains]
    try:
        jobs = executor.submit_array(tasks)
    except Exception as exc:  # sbatch refused the array (bad partition, account, ...)
        raise UserError(f"sbatch failed: {' '.join(str(exc).split())[:300]}") from exc
    for job, ids in zip(jobs, chains):
        for pid in ids:
            state.mark_submitted(pid, job.job_id)
    print(f"submitted {len(jobs)} Slurm job(s) as array {jobs[0].job_id.split('_')[0]} "
          f"({len(chains)} chain(s), {sum(map(len, chains))} point(s)); logs in {state.folder}/logs", flush=True)
    if not how.wait:
        return 0
    return sum(_job_failed(job) for job in jobs)


def _job_failed(job: Any) -> bool:
    """Waits for the job; a failed point makes its chain raise, so the job fails."""
    try:
        job.result()
    except Exception:
        return True
    return False
