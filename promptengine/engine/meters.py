"""Running averages for training logs."""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict


class AverageMeter:
    def __init__(self) -> None:
        self.val = self.sum = 0.0
        self.count = 0

    def update(self, val: float, n: int = 1) -> None:
        self.val = float(val)
        self.sum += float(val) * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.sum / max(1, self.count)


class MetricMeter:
    def __init__(self) -> None:
        self.meters: Dict[str, AverageMeter] = OrderedDict()

    def update(self, values: Dict[str, float]) -> None:
        for k, v in values.items():
            self.meters.setdefault(k, AverageMeter()).update(float(v))

    def __str__(self) -> str:
        return " ".join(f"{k} {m.val:.4f} ({m.avg:.4f})" for k, m in self.meters.items())

    def averages(self) -> Dict[str, float]:
        return {k: m.avg for k, m in self.meters.items()}
