"""Performance benchmark of the adversarial prompt-tuning step and of robust evaluation.

``tools/bench.py`` is the command line; the pieces live here so a test can run them at tiny size:
``setup`` builds the real CAPT trainer on random inputs, ``cases`` defines what is timed (the engine path,
its floor of separate primitives, a reference-style step, evaluation, text truncation), ``measure`` times
them side by side and records peak memory.
"""

from .measure import CaseResult, Measurer, run_cases
from .setup import BenchSetup, build_bench

__all__ = ["BenchSetup", "CaseResult", "Measurer", "build_bench", "run_cases"]
