"""Timing and peak memory of benchmark cases, measured side by side.

Cases run interleaved (case A, B, C, then A, B, C again ...) after one warm-up each, so a change in machine
load during the run hits every case alike; the median is reported. CPU time is wall-clock ``perf_counter``;
on CUDA, events bracket the call and the device is synchronised. Peak memory is the peak resident set size on
the CPU (``VmHWM``, reset per call through ``/proc/self/clear_refs`` where Linux allows it) and
``torch.cuda.max_memory_allocated`` on a GPU.
"""

from __future__ import annotations

import re
import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

Case = Callable[[], object]


@dataclass
class CaseResult:
    """Seconds per call over the repeats, and the peak memory seen by any call (MiB)."""

    name: str
    times: List[float] = field(default_factory=list)
    peak_mib: Optional[float] = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the repeats disagree."""
        return (max(self.times) - min(self.times)) / self.median if len(self.times) > 1 and self.median else 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "median_s": self.median, "times_s": self.times, "peak_mib": self.peak_mib,
                "note": self.note}


def _vm_hwm_kib() -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            match = re.search(r"VmHWM:\s+(\d+)\s+kB", f.read())
        return int(match.group(1)) if match else None
    except OSError:
        return None


def _reset_vm_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Measurer:
    """Times one call on ``device`` and reports its peak memory."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.per_call_memory = self.cuda or (_reset_vm_hwm() and _vm_hwm_kib() is not None)

    @property
    def memory_kind(self) -> str:
        if self.cuda:
            return "max CUDA memory allocated"
        return "peak RSS per call" if self.per_call_memory else "process peak RSS (ru_maxrss)"

    def _reset_memory(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.per_call_memory:
            _reset_vm_hwm()

    def _peak_mib(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.per_call_memory:
            return (_vm_hwm_kib() or 0) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    def __call__(self, fn: Case) -> tuple:
        """(seconds, peak MiB) of one call of ``fn``."""
        self._reset_memory()
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1000.0
        else:
            t0 = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t0
        return seconds, self._peak_mib()


def run_cases(cases: Dict[str, Case], repeats: int, measurer: Measurer, warmup: int = 1,
              log: Optional[Callable[[str], None]] = None) -> Dict[str, CaseResult]:
    """Warm each case up, then time every case ``repeats`` times, interleaved."""
    results = {name: CaseResult(name) for name in cases}
    for _ in range(warmup):
        for name, fn in cases.items():
            seconds, _ = measurer(fn)
            if log:
                log(f"warm-up {name}: {seconds:.3f} s")
    for r in range(repeats):
        for name, fn in cases.items():
            seconds, peak = measurer(fn)
            res = results[name]
            res.times.append(seconds)
            res.peak_mib = peak if res.peak_mib is None else max(res.peak_mib, peak)
            if log:
                log(f"repeat {r + 1}/{repeats} {name}: {seconds:.3f} s")
    return results
