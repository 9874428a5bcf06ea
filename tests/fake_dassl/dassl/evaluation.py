"""``dassl.evaluation``: ``build_evaluator`` and the Classification evaluator (reset/process/evaluate)."""

from __future__ import annotations

from collections import OrderedDict

from .utils import Registry

EVALUATOR_REGISTRY = Registry("EVALUATOR")


def build_evaluator(cfg, **kwargs):
    return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, **kwargs)


@EVALUATOR_REGISTRY.register()
class Classification:
    def __init__(self, cfg, lab2cname=None, **kwargs):
        self.cfg = cfg
        self.reset()

    def reset(self):
        self._correct = self._total = 0

    def process(self, mo, gt):
        self._correct += int(mo.max(1)[1].eq(gt).sum().item())
        self._total += gt.shape[0]

    def evaluate(self):
        acc = 100.0 * self._correct / self._total
        print(f"=> result\n* total: {self._total:,}\n* correct: {self._correct:,}\n* accuracy: {acc:.1f}%\n"
              f"* error: {100.0 - acc:.1f}%")
        return OrderedDict(accuracy=acc, error_rate=100.0 - acc)
