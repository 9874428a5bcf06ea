"""Optimizers and per-epoch LR schedules with Dassl's names and warm-up semantics."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from ..errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw", "amsgrad", "rmsprop")
SCHEDULERS = ("cosine", "single_step", "multi_step", "constant")


def build_optimizer(params: Iterable[torch.nn.Parameter], optim_cfg) -> torch.optim.Optimizer:
    name, lr, wd = optim_cfg.NAME, float(optim_cfg.LR), float(optim_cfg.WEIGHT_DECAY)
    params = [p for p in params if p.requires_grad]
    if not params:
        raise UserError("the model has no learnable parameters (is this a training-free trainer? use --eval-only)")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd,
                               dampening=optim_cfg.SGD_DAMPNING, nesterov=optim_cfg.SGD_NESTEROV)
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=(optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2),
                                amsgrad=name == "amsgrad")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=(optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd, momentum=optim_cfg.MOMENTUM,
                                   alpha=optim_cfg.RMSPROP_ALPHA)
    raise UserError(f"unknown OPTIM.NAME '{name}' (choose one of {', '.join(OPTIMIZERS)})")


def lr_at_epoch(epoch: int, optim_cfg) -> float:
    """The LR used during 0-based ``epoch``.

    Warm-up (WARMUP_EPOCH > 0): ``constant`` uses WARMUP_CONS_LR, ``linear`` ramps from WARMUP_MIN_LR; after it the
    successor restarts its count (WARMUP_RECOUNT), as Dassl does: with CoOp's settings epoch 1 trains at 1e-5 and
    epoch k >= 2 at cosine(k - 2, MAX_EPOCH), which never reaches 0.
    """
    base, max_epoch = float(optim_cfg.LR), int(optim_cfg.MAX_EPOCH)
    warm = int(optim_cfg.WARMUP_EPOCH)
    if warm > 0 and epoch < warm:
        if optim_cfg.WARMUP_TYPE == "constant":
            return float(optim_cfg.WARMUP_CONS_LR)
        if optim_cfg.WARMUP_TYPE == "linear":
            return float(optim_cfg.WARMUP_MIN_LR) if epoch == 0 else base * epoch / warm
        raise UserError(f"OPTIM.WARMUP_TYPE must be constant or linear, got '{optim_cfg.WARMUP_TYPE}'")
    t = epoch - warm if (warm > 0 and optim_cfg.WARMUP_RECOUNT) else epoch
    name = optim_cfg.LR_SCHEDULER
    if name == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * t / max_epoch))
    if name == "single_step":
        step = list(optim_cfg.STEPSIZE)[0] if isinstance(optim_cfg.STEPSIZE, (list, tuple)) else optim_cfg.STEPSIZE
        step = max_epoch if step <= 0 else step
        return base * optim_cfg.GAMMA ** (t // step)
    if name == "multi_step":
        return base * optim_cfg.GAMMA ** sum(t >= m for m in optim_cfg.STEPSIZE)
    if name == "constant":
        return base
    raise UserError(f"unknown OPTIM.LR_SCHEDULER '{name}' (choose one of {', '.join(SCHEDULERS)})")


class EpochLR:
    """Sets the optimizer's LR from ``lr_at_epoch``; ``step()`` once per epoch (the engine calls it)."""

    def __init__(self, optimizer: torch.optim.Optimizer, optim_cfg) -> None:
        self.optimizer, self.cfg = optimizer, optim_cfg
        self.last_epoch = 0
        self._apply()

    def _apply(self) -> None:
        lr = lr_at_epoch(self.last_epoch, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = int(state["last_epoch"])
        self._apply()


def build_lr_scheduler(optimizer: torch.optim.Optimizer, optim_cfg) -> EpochLR:
    lr_at_epoch(0, optim_cfg)  # validates names early
    return EpochLR(optimizer, optim_cfg)
