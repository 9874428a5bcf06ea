"""The one accuracy and the one per-sample worst case, per-class accuracy, macro-F1 and the Dassl ``=> result`` block.

Every number the toolbox reports (training meters, the result block, results.json, the validation check during
training, the robustness report) is an ``accuracy`` of a per-sample correctness vector, and every worst case is a
``worst_case`` of such vectors.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch


def accuracy(correct: torch.Tensor, *, dassl: bool = False) -> float:
    """Percent of ``True`` in a (N,) bool vector.

    The arithmetic is part of every recorded number, so it is kept as each number was first recorded: by default the
    float32 mean (robust, worst-case, report and training-meter numbers; NaN when empty); with ``dassl`` Dassl's
    ``100 * correct / max(1, total)`` in float64 (the clean accuracy of the ``=> result`` block and results.json).
    """
    if dassl:
        return 100.0 * int(correct.sum()) / max(1, correct.numel())
    return 100.0 * correct.float().mean().item() if correct.numel() else float("nan")


def worst_case(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N,) bool: correct under every one of ``vectors`` (give the clean vector first: the worst case over attacks
    starts from clean correctness)."""
    if not vectors:
        raise ValueError("worst_case needs at least one correctness vector")
    out = vectors[0].clone()
    for v in vectors[1:]:
        out &= v
    return out


def per_class(classnames: Sequence[str], labels: torch.Tensor, clean: torch.Tensor, robust: torch.Tensor
              ) -> List[Dict[str, Any]]:
    """One row per class present in ``labels``: its image count and clean and robust accuracy."""
    rows = []
    for label, name in enumerate(classnames):
        mask = labels == label
        if mask.any():
            rows.append({"class": name, "n": int(mask.sum()), "clean": accuracy(clean[mask]),
                         "robust": accuracy(robust[mask])})
    return rows


def macro_f1(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Macro F1 over the labels present in target or prediction (as sklearn's default)."""
    labels = torch.unique(torch.cat([pred, target]))
    f1s = []
    for c in labels:
        tp = ((pred == c) & (target == c)).sum().item()
        fp = ((pred == c) & (target != c)).sum().item()
        fn = ((pred != c) & (target == c)).sum().item()
        denom = 2 * tp + fp + fn
        f1s.append(0.0 if denom == 0 else 2 * tp / denom)
    return 100.0 * sum(f1s) / max(1, len(f1s))


def clean_summary(pred: torch.Tensor, target: torch.Tensor) -> Dict[str, float]:
    """Dassl's clean result: accuracy, correct, total, error and macro-F1."""
    correct = pred == target
    acc = accuracy(correct, dassl=True)
    return {"accuracy": acc, "correct": int(correct.sum().item()), "total": int(target.numel()), "error": 100.0 - acc,
            "macro_f1": macro_f1(pred, target)}


def print_result_block(clean: Dict[str, float], robust: List[Dict]) -> None:
    print("=> result")
    print(f"* total: {clean['total']:,}")
    print(f"* correct: {clean['correct']:,}")
    print(f"* accuracy: {clean['accuracy']:.2f}%")
    print(f"* error: {clean['error']:.2f}%")
    print(f"* macro_f1: {clean['macro_f1']:.2f}%")
    print_robust_lines(robust)


def print_robust_lines(robust: List[Dict]) -> None:
    """One ``* robust_accuracy (<attack label>): X%`` line per attack (parsed by the reporting tools)."""
    for r in robust:
        print(f"* robust_accuracy ({r['name']}): {r['accuracy']:.2f}%")
