"""Accuracy / macro-F1 and the Dassl ``=> result`` block (two decimals)."""

from __future__ import annotations

from typing import Dict, List

import torch


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
    total = int(target.numel())
    correct = int((pred == target).sum().item())
    acc = 100.0 * correct / max(1, total)
    return {"accuracy": acc, "correct": correct, "total": total, "error": 100.0 - acc,
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
