"""Dassl's LR schedule for our trainers on Dassl's engine, with a warm-up that runs on current torch.

Dassl's warm-up wrappers (``ConstantWarmupScheduler``, ``LinearWarmupScheduler``) subclass torch's ``_LRScheduler``
and pass ``verbose`` to its ``__init__`` as a third positional argument, which torch 2.14 no longer accepts: with
``OPTIM.WARMUP_EPOCH > 0`` Dassl's ``build_lr_scheduler`` stops with "LRScheduler.__init__() takes from 2 to 3
positional arguments but 4 were given". Their ``state_dict`` also holds the successor scheduler object, which
Dassl's ``load_checkpoint`` (``torch.load``, weights only by default now) refuses on resume.

So the plug-in asks Dassl's ``build_lr_scheduler`` for the successor alone (warm-up off) and wraps it in
``DasslWarmup``, which steps exactly as Dassl's wrappers do (CoOp's constant 1e-5 epoch, then the successor, which
restarts its count unless ``WARMUP_RECOUNT`` is False) and keeps a plain ``state_dict``.
"""

from __future__ import annotations

from typing import Any, Dict, List

import torch

from ..errors import UserError

WARMUP_TYPES = ("constant", "linear")


class DasslWarmup:
    """Dassl's warm-up wrapper without torch's scheduler base class: ``step()`` once per epoch (``update_lr``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, successor, warmup_epoch: int, kind: str,
                 value: float) -> None:
        self.optimizer, self.successor = optimizer, successor
        self.warmup_epoch, self.kind, self.value = int(warmup_epoch), kind, float(value)
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]  # set by the successor
        self.last_epoch = 0
        self._set(self.warm_lrs())

    def warm_lrs(self) -> List[float]:
        """The LRs of warm-up epoch ``last_epoch`` (0-based), as Dassl's ``get_lr`` gives them."""
        if self.kind == "constant" or self.last_epoch == 0:
            return [self.value for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]

    def _set(self, lrs: List[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def step(self) -> None:
        if self.last_epoch >= self.warmup_epoch:  # warm-up over: the successor steps and sets the LRs
            self.successor.step()
            self._last_lr = list(self.successor.get_last_lr())
            return
        self.last_epoch += 1
        self._set(list(self.successor.get_last_lr()) if self.last_epoch >= self.warmup_epoch else self.warm_lrs())

    def get_last_lr(self) -> List[float]:
        return list(self._last_lr)

    def state_dict(self) -> Dict[str, Any]:
        return {"last_epoch": self.last_epoch, "last_lr": list(self._last_lr),
                "successor": self.successor.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.last_epoch, self._last_lr = int(state["last_epoch"]), list(state["last_lr"])
        self.successor.load_state_dict(state["successor"])


def build_lr_scheduler(optimizer: torch.optim.Optimizer, optim_cfg, dassl_builder):
    """Dassl's scheduler for ``optim_cfg``: ``dassl_builder`` (Dassl's ``build_lr_scheduler``) builds the successor,
    ``DasslWarmup`` the warm-up when ``OPTIM.WARMUP_EPOCH > 0``."""
    warm = int(optim_cfg.WARMUP_EPOCH)
    if warm <= 0:
        return dassl_builder(optimizer, optim_cfg)
    kind = str(optim_cfg.WARMUP_TYPE)
    if kind not in WARMUP_TYPES:
        raise UserError(f"OPTIM.WARMUP_TYPE must be one of {', '.join(WARMUP_TYPES)}, got '{kind}'")
    plain = optim_cfg.clone()
    plain.defrost()
    plain.WARMUP_EPOCH = 0
    successor = dassl_builder(optimizer, plain)
    if not bool(getattr(optim_cfg, "WARMUP_RECOUNT", True)):
        successor.last_epoch = warm  # Dassl's rule: the successor's count includes the warm-up epochs
    value = optim_cfg.WARMUP_CONS_LR if kind == "constant" else optim_cfg.WARMUP_MIN_LR
    return DasslWarmup(optimizer, successor, warm, kind, value)
