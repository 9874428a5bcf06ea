"""``dassl.optim``: ``build_optimizer`` (the names the tests use) and ``build_lr_scheduler`` as Dassl has it.

The scheduler part follows Dassl HEAD (v0.6.3) exactly, including what breaks on current torch: the warm-up
wrappers subclass ``_LRScheduler`` and hand ``verbose`` to its ``__init__`` as a third positional argument, so
with torch 2.14 any ``OPTIM.WARMUP_EPOCH > 0`` raises ``TypeError: LRScheduler.__init__() takes from 2 to 3
positional arguments but 4 were given``; their ``state_dict`` holds the successor scheduler object.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import _LRScheduler

SCHEDULERS = ("single_step", "multi_step", "cosine")


def build_optimizer(model, optim_cfg, param_groups=None):
    params = param_groups if param_groups is not None else (
        model.parameters() if isinstance(model, nn.Module) else model)
    if optim_cfg.NAME == "sgd":
        return torch.optim.SGD(params, lr=optim_cfg.LR, momentum=optim_cfg.MOMENTUM,
                               weight_decay=optim_cfg.WEIGHT_DECAY, dampening=optim_cfg.SGD_DAMPNING,
                               nesterov=optim_cfg.SGD_NESTEROV)
    if optim_cfg.NAME == "adam":
        return torch.optim.Adam(params, lr=optim_cfg.LR, weight_decay=optim_cfg.WEIGHT_DECAY,
                                betas=(optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2))
    raise ValueError(f"optim must be sgd or adam in the stand-in, got {optim_cfg.NAME}")


class _WarmupBase(_LRScheduler):
    """Dassl's ``_BaseWarmupScheduler``: its own count up to ``warmup_epoch``, then the successor steps."""

    def __init__(self, optimizer, successor, warmup_epoch, last_epoch=-1, verbose=False):
        self.successor, self.warmup_epoch = successor, warmup_epoch
        super().__init__(optimizer, last_epoch, verbose)  # Dassl's call: three positional arguments

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)


class ConstantWarmupScheduler(_WarmupBase):
    def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1, verbose=False):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch, verbose)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr] * len(self.base_lrs)


class LinearWarmupScheduler(_WarmupBase):
    def __init__(self, optimizer, successor, warmup_epoch, min_lr, last_epoch=-1, verbose=False):
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch, verbose)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        if self.last_epoch == 0:
            return [self.min_lr] * len(self.base_lrs)
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]


def _successor(optimizer, optim_cfg):
    name, stepsize, gamma = optim_cfg.LR_SCHEDULER, optim_cfg.STEPSIZE, optim_cfg.GAMMA
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {list(SCHEDULERS)}, but got {name}")
    if name == "single_step":
        step = stepsize[-1] if isinstance(stepsize, (list, tuple)) else stepsize
        if not isinstance(step, int):
            raise TypeError(f"For single_step lr_scheduler, stepsize must be an integer, but got {type(step)}")
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step if step > 0 else optim_cfg.MAX_EPOCH,
                                               gamma=gamma)
    if name == "multi_step":
        if not isinstance(stepsize, (list, tuple)):
            raise TypeError(f"For multi_step lr_scheduler, stepsize must be a list, but got {type(stepsize)}")
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=stepsize, gamma=gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(optim_cfg.MAX_EPOCH))


def build_lr_scheduler(optimizer, optim_cfg):
    scheduler = _successor(optimizer, optim_cfg)
    if optim_cfg.WARMUP_EPOCH > 0:
        if not optim_cfg.WARMUP_RECOUNT:
            scheduler.last_epoch = optim_cfg.WARMUP_EPOCH
        if optim_cfg.WARMUP_TYPE == "constant":
            return ConstantWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_CONS_LR)
        if optim_cfg.WARMUP_TYPE == "linear":
            return LinearWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_MIN_LR)
        raise ValueError
    return scheduler
