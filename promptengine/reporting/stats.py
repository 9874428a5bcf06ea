"""Summary statistics used by every report: mean, population std, CI95, harmonic mean.

Pure Python (no numpy), so the result tools start fast and run without the training stack.
"""

from __future__ import annotations

import math
from typing import Sequence


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def pstd(values: Sequence[float]) -> float:
    """Population standard deviation (ddof=0), as ``numpy.std`` and CoOp's ``parse_test_res.py``."""
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / len(values))


def ci95(values: Sequence[float]) -> float:
    """Half-width of the normal 95% interval of the mean: ``1.96 * pstd / sqrt(n)`` (CoOp's ``--ci95``)."""
    return 1.96 * pstd(values) / math.sqrt(len(values))


def harmonic_mean(base: float, new: float) -> float:
    """``2 * base * new / (base + new)``; 0 when both are 0."""
    total = base + new
    return 2.0 * base * new / total if total > 0 else 0.0
