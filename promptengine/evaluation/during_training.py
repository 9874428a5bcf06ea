"""Robust accuracy on the validation split during training (``TEST.ROBUST_EVAL_FREQ``), logged to log.txt and
TensorBoard so a robustness collapse is seen while it happens rather than after the last epoch."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from .. import distributed as dist
from .robust import evaluate


def _val_subset(trainer) -> Optional[DataLoader]:
    loader = trainer.val_loader
    if loader is None:
        return None
    limit = int(trainer.cfg.TEST.ROBUST_EVAL_IMAGES)
    data = loader.dataset
    if 0 < limit < len(data):
        data = Subset(data, range(limit))  # the first N images: the same subset every epoch
    return DataLoader(data, batch_size=loader.batch_size, shuffle=False, num_workers=loader.num_workers)


def robust_val_check(trainer) -> None:
    """Every ``TEST.ROBUST_EVAL_FREQ`` epochs: clean and robust (each test attack, and their worst case) val accuracy."""
    freq = int(trainer.cfg.TEST.ROBUST_EVAL_FREQ)
    if freq <= 0 or (trainer.epoch + 1) % freq != 0:
        return
    loader = _val_subset(trainer)
    if loader is None or not trainer.test_attacks:
        if dist.is_main():
            why = "the dataset has no val split" if loader is None else "no test attack is configured (ATTACK.TEST)"
            print(f"Warning: TEST.ROBUST_EVAL_FREQ is set but {why}; skipping the robust val check")
        return
    trainer.set_model_mode("eval")
    module = trainer.model if isinstance(getattr(trainer, "model", None), nn.Module) else None
    per_sample = evaluate(trainer.attack_target(), loader, trainer.test_attacks, trainer.device, module=module,
                          autocast=trainer.autocast, desc="val robust", show_progress=False)
    per_sample = dist.gather_per_sample(per_sample)
    trainer.set_model_mode("train")
    if not dist.is_main():
        return
    clean = 100.0 * (per_sample["pred"] == per_sample["label"]).float().mean().item()
    worst = torch.ones_like(per_sample["label"], dtype=torch.bool)
    parts = [f"clean {clean:.2f}%"]
    step = trainer.epoch + 1
    for i, spec in enumerate(trainer.test_attacks):
        correct = per_sample[f"correct_{i}"]
        worst &= correct
        acc = 100.0 * correct.float().mean().item()
        parts.append(f"{spec.label()}: {acc:.2f}%")
        if trainer.writer is not None:
            trainer.writer.add_scalar(f"val/robust_accuracy/{spec.label()}", acc, step)
    worst_acc = 100.0 * worst.float().mean().item()
    print(f"epoch [{step}/{trainer.max_epoch}] val robust ({worst.numel()} images): {', '.join(parts)}; "
          f"worst case {worst_acc:.2f}%")
    if trainer.writer is not None:
        trainer.writer.add_scalar("val/accuracy", clean, step)
        trainer.writer.add_scalar("val/worst_case", worst_acc, step)
