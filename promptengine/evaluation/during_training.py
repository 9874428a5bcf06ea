"""Robust accuracy on the validation split during training (``TEST.ROBUST_EVAL_FREQ``), logged to log.txt and
TensorBoard so a robustness collapse is seen while it happens rather than after the last epoch."""

from __future__ import annotations

from typing import Optional

from torch import nn
from torch.utils.data import DataLoader, Subset

from .. import distributed as dist
from .metrics import accuracy, worst_case
from .robust import attack_correct, clean_correct, evaluate


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
    clean_ok = clean_correct(per_sample)
    robust = attack_correct(per_sample, len(trainer.test_attacks))
    clean = accuracy(clean_ok)
    worst = worst_case([clean_ok, *robust])
    parts = [f"clean {clean:.2f}%"]
    step = trainer.epoch + 1
    for spec, correct in zip(trainer.test_attacks, robust):
        acc = accuracy(correct)
        parts.append(f"{spec.label()}: {acc:.2f}%")
        if trainer.writer is not None:
            trainer.writer.add_scalar(f"val/robust_accuracy/{spec.label()}", acc, step)
    worst_acc = accuracy(worst)
    print(f"epoch [{step}/{trainer.max_epoch}] val robust ({worst.numel()} images): {', '.join(parts)}; "
          f"worst case {worst_acc:.2f}%")
    if trainer.writer is not None:
        trainer.writer.add_scalar("val/accuracy", clean, step)
        trainer.writer.add_scalar("val/worst_case", worst_acc, step)
